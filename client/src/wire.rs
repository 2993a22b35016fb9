//! The envelopes of the endpoints this client calls: paths, requests as Java's SDK writes them,
//! replies with their `responseStatus`. docs/api.md of the server describes each.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::model::{FailedInstance, Instance, Service};

pub(crate) const REGISTER: &str = "/api/registry/register.json";
pub(crate) const HEARTBEAT: &str = "/api/registry/heartbeat.json";
pub(crate) const UNREGISTER: &str = "/api/registry/unregister.json";
pub(crate) const LOOKUP: &str = "/api/discovery/lookup.json";
pub(crate) const SERVICES: &str = "/api/discovery/services.json";
pub(crate) const SERVICES_DELTA: &str = "/api/discovery/services-delta.json";
pub(crate) const UP_REGISTRY_NODES: &str = "/api/cluster/up-registry-nodes.json";
pub(crate) const UP_DISCOVERY_NODES: &str = "/api/cluster/up-discovery-nodes.json";
pub(crate) const WS_HEARTBEAT: &str = "/ws/registry/heartbeat";
pub(crate) const WS_INSTANCE_CHANGE: &str = "/ws/discovery/instance-change";

/// `{"errorCode","message","status"}`, in every reply.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ResponseStatus {
    error_code: Option<String>,
    message: Option<String>,
    status: Option<String>,
}

/// What a `responseStatus` says about the whole request.
pub(crate) enum Outcome {
    /// `success`, or `partial_fail` (the reply lists the failed instances).
    Done,
    /// `fail`, with its code and message.
    Failed(ErrorCode, String),
}

impl ResponseStatus {
    pub(crate) fn outcome(&self) -> Outcome {
        match self.status.as_deref() {
            Some("success") | Some("partial_fail") => Outcome::Done,
            _ => Outcome::Failed(
                ErrorCode::parse(self.error_code.as_deref().unwrap_or("unknown")),
                self.message.clone().unwrap_or_default(),
            ),
        }
    }
}

/// A reply: any JSON object with a `responseStatus`.
pub(crate) trait Reply: DeserializeOwned {
    fn response_status(&self) -> Option<&ResponseStatus>;
}

macro_rules! reply {
    ($name:ident { $($field:ident: $ty:ty),* $(,)? }) => {
        #[derive(Debug, Default, Deserialize)]
        #[serde(rename_all = "camelCase", default)]
        pub(crate) struct $name {
            $(pub(crate) $field: $ty,)*
            response_status: Option<ResponseStatus>,
        }

        impl Reply for $name {
            fn response_status(&self) -> Option<&ResponseStatus> {
                self.response_status.as_ref()
            }
        }
    };
}

reply!(RegistryReply {
    failed_instances: Option<Vec<FailedInstance>>,
});
reply!(LookupReply {
    services: Option<Vec<Service>>,
});
reply!(ServicesReply {
    services: Option<Vec<Service>>,
    version: i64,
});
reply!(DeltaReply {
    delta: Option<BTreeMap<String, Vec<InstanceChange>>>,
    version: i64,
});
reply!(NodesReply {
    nodes: Option<Vec<ServiceNode>>,
});

/// A node of `up-registry-nodes.json` / `up-discovery-nodes.json` (its zone is not used).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ServiceNode {
    pub(crate) url: Option<String>,
}

/// One change of an instance, pushed or listed by `services-delta.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct InstanceChange {
    pub(crate) change_type: Option<String>,
    pub(crate) instance: Option<Instance>,
}

/// `register.json`, `heartbeat.json` (and heartbeat frames), `unregister.json`.
#[derive(Serialize)]
pub(crate) struct InstancesRequest<'a> {
    pub(crate) instances: &'a [Instance],
}

/// `lookup.json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LookupRequest<'a> {
    pub(crate) discovery_configs: Vec<DiscoveryConfig<'a>>,
    pub(crate) region_id: &'a str,
    pub(crate) zone_id: &'a str,
}

/// A service to look up, or to follow on `/ws/discovery/instance-change`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DiscoveryConfig<'a> {
    pub(crate) service_id: &'a str,
}

/// `services.json` and the cluster node lists.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ZoneRequest<'a> {
    pub(crate) region_id: &'a str,
    pub(crate) zone_id: &'a str,
}

/// `services-delta.json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeltaRequest<'a> {
    pub(crate) region_id: &'a str,
    pub(crate) version: i64,
    pub(crate) zone_id: &'a str,
}
