//! A client of the Artemis service registry for applications on tokio, behaving as Java
//! Artemis' SDK does: a [`RegistryClient`] registers instances and keeps them alive with
//! WebSocket heartbeats, and fails over between the cluster's nodes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), artemis_client::Error> {
//! use artemis_client::{ClientConfig, Instance, RegistryClient};
//!
//! let config = ClientConfig::new(["http://127.0.0.1:8080"]);
//! let registry = RegistryClient::new(config)?;
//! registry
//!     .register([Instance::new("demo.service", "10.0.0.1:8080", "http://10.0.0.1:8080/")])
//!     .await?;
//! // ... serve ...
//! registry.shutdown().await?;
//! # Ok(())
//! # }
//! ```

mod config;
mod error;
mod failover;
mod http;
mod model;
mod nodes;
mod registry;
mod wire;
mod ws;

pub use config::ClientConfig;
pub use error::{Error, ErrorCode};
pub use model::{FailedInstance, Instance, InstanceKey, RouteRule, Service, ServiceGroup};
pub use registry::RegistryClient;
