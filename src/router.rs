//! Which endpoint a request path names, and which methods it takes.
//!
//! A `match` on the path bytes: no allocation, no regex. Paths are the Java controllers' paths
//! relative to the context root (contract §4), plus `/health` and `/metrics`.

use http::Method;

/// Every endpoint the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Register,
    Heartbeat,
    Unregister,
    Service,
    Lookup,
    Services,
    ServicesDelta,
    NodeStatus,
    ClusterStatus,
    Leases,
    LegacyLeases,
    ConfigStatus,
    DeploymentStatus,
    UpRegistryNodes,
    UpDiscoveryNodes,
    WebSocketSessions,
    Health,
    Metrics,
}

impl Endpoint {
    /// All endpoints, in metric-index order.
    pub const ALL: [Endpoint; 18] = [
        Endpoint::Register,
        Endpoint::Heartbeat,
        Endpoint::Unregister,
        Endpoint::Service,
        Endpoint::Lookup,
        Endpoint::Services,
        Endpoint::ServicesDelta,
        Endpoint::NodeStatus,
        Endpoint::ClusterStatus,
        Endpoint::Leases,
        Endpoint::LegacyLeases,
        Endpoint::ConfigStatus,
        Endpoint::DeploymentStatus,
        Endpoint::UpRegistryNodes,
        Endpoint::UpDiscoveryNodes,
        Endpoint::WebSocketSessions,
        Endpoint::Health,
        Endpoint::Metrics,
    ];

    pub fn from_path(path: &[u8]) -> Option<Endpoint> {
        Some(match path {
            b"/api/registry/register.json" => Endpoint::Register,
            b"/api/registry/heartbeat.json" => Endpoint::Heartbeat,
            b"/api/registry/unregister.json" => Endpoint::Unregister,
            b"/api/discovery/service.json" => Endpoint::Service,
            b"/api/discovery/lookup.json" => Endpoint::Lookup,
            b"/api/discovery/services.json" => Endpoint::Services,
            b"/api/discovery/services-delta.json" => Endpoint::ServicesDelta,
            b"/api/status/node.json" => Endpoint::NodeStatus,
            b"/api/status/cluster.json" => Endpoint::ClusterStatus,
            b"/api/status/leases.json" => Endpoint::Leases,
            b"/api/status/legacy-leases.json" => Endpoint::LegacyLeases,
            b"/api/status/config.json" => Endpoint::ConfigStatus,
            b"/api/status/deployment.json" => Endpoint::DeploymentStatus,
            b"/api/cluster/up-registry-nodes.json" => Endpoint::UpRegistryNodes,
            b"/api/cluster/up-discovery-nodes.json" => Endpoint::UpDiscoveryNodes,
            b"/api/status/message/connections.json" => Endpoint::WebSocketSessions,
            b"/health" => Endpoint::Health,
            b"/metrics" => Endpoint::Metrics,
            _ => return None,
        })
    }

    /// Position in `ALL`, for per-endpoint metrics.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The metric label.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Register => "register",
            Endpoint::Heartbeat => "heartbeat",
            Endpoint::Unregister => "unregister",
            Endpoint::Service => "service",
            Endpoint::Lookup => "lookup",
            Endpoint::Services => "services",
            Endpoint::ServicesDelta => "services_delta",
            Endpoint::NodeStatus => "status_node",
            Endpoint::ClusterStatus => "status_cluster",
            Endpoint::Leases => "status_leases",
            Endpoint::LegacyLeases => "status_legacy_leases",
            Endpoint::ConfigStatus => "status_config",
            Endpoint::DeploymentStatus => "status_deployment",
            Endpoint::UpRegistryNodes => "cluster_up_registry_nodes",
            Endpoint::UpDiscoveryNodes => "cluster_up_discovery_nodes",
            Endpoint::WebSocketSessions => "status_message_connections",
            Endpoint::Health => "health",
            Endpoint::Metrics => "metrics",
        }
    }

    /// The methods the endpoint takes, as an `Allow` / preflight list.
    pub fn allowed_methods(self) -> &'static str {
        match self {
            Endpoint::Register
            | Endpoint::Heartbeat
            | Endpoint::Unregister
            | Endpoint::Lookup
            | Endpoint::ServicesDelta => "POST",
            Endpoint::WebSocketSessions | Endpoint::Health | Endpoint::Metrics => "GET",
            _ => "GET, POST",
        }
    }

    pub fn allows(self, method: &Method) -> bool {
        match self.allowed_methods() {
            "POST" => method == Method::POST,
            "GET" => method == Method::GET,
            _ => method == Method::GET || method == Method::POST,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_routes_back_to_itself() {
        let paths: [&[u8]; 18] = [
            b"/api/registry/register.json",
            b"/api/registry/heartbeat.json",
            b"/api/registry/unregister.json",
            b"/api/discovery/service.json",
            b"/api/discovery/lookup.json",
            b"/api/discovery/services.json",
            b"/api/discovery/services-delta.json",
            b"/api/status/node.json",
            b"/api/status/cluster.json",
            b"/api/status/leases.json",
            b"/api/status/legacy-leases.json",
            b"/api/status/config.json",
            b"/api/status/deployment.json",
            b"/api/cluster/up-registry-nodes.json",
            b"/api/cluster/up-discovery-nodes.json",
            b"/api/status/message/connections.json",
            b"/health",
            b"/metrics",
        ];
        for (i, path) in paths.iter().enumerate() {
            let endpoint = Endpoint::from_path(path).unwrap();
            assert_eq!(endpoint, Endpoint::ALL[i]);
            assert_eq!(endpoint.index(), i);
        }
        assert_eq!(Endpoint::from_path(b"/api/registry/register"), None);
        assert_eq!(Endpoint::from_path(b"/"), None);
    }

    #[test]
    fn methods() {
        assert!(Endpoint::Register.allows(&Method::POST));
        assert!(!Endpoint::Register.allows(&Method::GET));
        assert!(Endpoint::Service.allows(&Method::GET));
        assert!(Endpoint::Metrics.allows(&Method::GET));
        assert!(!Endpoint::Metrics.allows(&Method::POST));
    }
}
