//! A client of the Artemis service registry for applications on tokio, behaving as Java
//! Artemis' SDK does: a [`RegistryClient`] registers instances and keeps them alive with
//! WebSocket heartbeats; a [`DiscoveryClient`] answers from a local copy that pushes keep
//! current, and streams each service's changes; both fail over between the cluster's nodes.
//! A [`ManagementClient`] operates the registry: pull-outs, groups, route rules, canaries, the
//! operation logs and the nodes' status (the `artemis` binary's management commands use it).
//!
//! ```no_run
//! # async fn demo() -> Result<(), artemis_client::Error> {
//! use artemis_client::{ClientConfig, DiscoveryClient, Instance, RegistryClient};
//! use futures_util::StreamExt;
//!
//! let config = ClientConfig::new(["http://127.0.0.1:8080"]);
//! let registry = RegistryClient::new(config.clone())?;
//! registry
//!     .register([Instance::new("demo.service", "10.0.0.1:8080", "http://10.0.0.1:8080/")])
//!     .await?;
//!
//! let discovery = DiscoveryClient::new(config)?;
//! let service = discovery.service("demo.service").await?;
//! println!("{} instance(s)", service.instances().len());
//! let mut changes = discovery.watch("demo.service");
//! while let Some(change) = changes.next().await {
//!     println!("{change:?}");
//!     # break;
//! }
//!
//! registry.shutdown().await?;
//! # Ok(())
//! # }
//! ```

mod config;
mod discovery;
mod error;
mod failover;
mod http;
mod management;
mod model;
mod nodes;
mod registry;
mod wire;
mod ws;

pub use config::ClientConfig;
pub use discovery::{DiscoveryClient, DiscoveryStats, ServiceChange};
pub use error::{Error, ErrorCode};
pub use management::{
    Canary, Group, LogFilter, LogKind, ManagementClient, OperationKind, OperationTarget, Record,
    RouteRuleGroup, ServiceRouteRule,
};
pub use model::{FailedInstance, Instance, InstanceKey, RouteRule, Service, ServiceGroup};
pub use registry::RegistryClient;
