//! The registry's objects as an application handles them: [`Instance`], [`Service`] and what a
//! service carries. They read and write Java Artemis' JSON (lowerCamelCase, `null` for a missing
//! value), and read leniently: a field the server leaves out or sends as `null` becomes its
//! default rather than failing the whole reply.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::ErrorCode;

/// One instance of a service, as registered and as discovery returns it. Fields are in Java's
/// (alphabetical) order, so an instance serializes as Java's SDK writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Instance {
    pub group_id: Option<String>,
    pub health_check_url: Option<String>,
    /// The instance's name within its service, often `ip:port`. Required.
    #[serde(deserialize_with = "null_as_empty")]
    pub instance_id: String,
    pub ip: Option<String>,
    pub machine_name: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub port: u16,
    pub protocol: Option<String>,
    /// The instance's region; the registry client fills in its own when left `None`.
    pub region_id: Option<String>,
    /// Required.
    #[serde(deserialize_with = "null_as_empty")]
    pub service_id: String,
    /// `starting`, `up`, `down`, `unhealthy` or `unknown` by convention; the registry stores it
    /// as sent.
    pub status: Option<String>,
    /// Where consumers reach the instance. Required.
    #[serde(deserialize_with = "null_as_empty")]
    pub url: String,
    /// The instance's zone; the registry client fills in its own when left `None`.
    pub zone_id: Option<String>,
}

impl Instance {
    /// An instance with the three required fields; set the others on the value.
    pub fn new(
        service_id: impl Into<String>,
        instance_id: impl Into<String>,
        url: impl Into<String>,
    ) -> Instance {
        Instance {
            service_id: service_id.into(),
            instance_id: instance_id.into(),
            url: url.into(),
            ..Instance::default()
        }
    }

    /// The registry's identity of an instance: region, service and instance id, ignoring case.
    pub fn key(&self) -> InstanceKey {
        InstanceKey(format!(
            "{}.{}.{}",
            self.region_id.as_deref().unwrap_or("").to_lowercase(),
            self.service_id.to_lowercase(),
            self.instance_id.to_lowercase()
        ))
    }
}

/// [`Instance::key`]: two instances with equal keys are the same instance to the registry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceKey(String);

/// A service as discovery returns it. The lists are `None` where the server sends `null` (a
/// service it does not know, asked by `service.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Service {
    pub instances: Option<Vec<Instance>>,
    /// Management-defined instances (Java's "service instances").
    pub logic_instances: Option<Vec<Instance>>,
    pub metadata: Option<BTreeMap<String, String>>,
    /// The service's active route rules, unexpanded.
    pub route_rules: Option<Vec<RouteRule>>,
    #[serde(deserialize_with = "null_as_empty")]
    pub service_id: String,
}

impl Service {
    /// A service with no instance, as `lookup.json` answers for one nobody registered.
    pub(crate) fn empty(service_id: &str) -> Service {
        Service {
            instances: Some(Vec::new()),
            logic_instances: Some(Vec::new()),
            route_rules: Some(Vec::new()),
            service_id: service_id.to_string(),
            ..Service::default()
        }
    }

    /// The instances, none when the server sent `null`.
    pub fn instances(&self) -> &[Instance] {
        self.instances.as_deref().unwrap_or(&[])
    }
}

/// A route rule of a service (`weighted-round-robin` or `close-by-visit`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RouteRule {
    pub groups: Option<Vec<ServiceGroup>>,
    pub route_id: Option<String>,
    pub strategy: Option<String>,
}

/// A group of a route rule, with its weight.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceGroup {
    pub group_key: Option<String>,
    pub instance_ids: Option<Vec<String>>,
    pub instances: Option<Vec<Instance>>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub weight: Option<i32>,
}

/// An instance a registry request failed for, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FailedInstance {
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// The instance as the request sent it.
    pub instance: Option<Instance>,
}

impl FailedInstance {
    /// The `errorCode`, typed.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::parse(self.error_code.as_deref().unwrap_or(""))
    }
}

/// A string field that Java may send as `null` (or leave out) reads as empty.
fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::{Instance, Service};

    #[test]
    fn an_instance_writes_javas_shape_and_reads_nulls() {
        let mut instance = Instance::new("demo", "i-1", "http://10.0.0.1:80/");
        instance.region_id = Some("SHA".into());
        assert_eq!(
            serde_json::to_string(&instance).unwrap(),
            r#"{"groupId":null,"healthCheckUrl":null,"instanceId":"i-1","ip":null,"machineName":null,"metadata":null,"port":0,"protocol":null,"regionId":"SHA","serviceId":"demo","status":null,"url":"http://10.0.0.1:80/","zoneId":null}"#
        );
        // Java's reload placeholder: most fields null.
        let reload: Instance = serde_json::from_str(
            r#"{"instanceId":"reload","ip":"0.0.0.0","url":"http://demo/reload","serviceId":"demo","regionId":null,"port":0}"#,
        )
        .unwrap();
        assert_eq!(reload.instance_id, "reload");
        assert_eq!(reload.region_id, None);
        let unknown: Service = serde_json::from_str(
            r#"{"instances":null,"logicInstances":null,"metadata":null,"routeRules":null,"serviceId":null}"#,
        )
        .unwrap();
        assert!(unknown.instances().is_empty());
    }

    #[test]
    fn keys_ignore_case() {
        let mut a = Instance::new("Demo", "I-1", "u");
        a.region_id = Some("SHA".into());
        let mut b = Instance::new("demo", "i-1", "other");
        b.region_id = Some("sha".into());
        assert_eq!(a.key(), b.key());
    }
}
