//! Where a request goes: every path the server answers (HTTP and WebSocket), the methods each
//! takes, and the CORS preflight. This is the one table a new endpoint is added to.
//!
//! Paths are matched as bytes (a `match`, no allocation, no regex): the Java controllers' paths
//! relative to the context root (see `docs/api.md`), `/health`, `/metrics`, and the three
//! WebSocket paths of Java's `WebSocketConfig`. The management paths (`/api/management/...`,
//! rarely called) are one table of their own, searched only under their prefix. A path is
//! first taken as Java's container takes it: `;` parameters dropped, runs of `/` read as one, a
//! trailing `/` ignored (a base URL ending in `/` plus `/api/...` is the commonest hand-written
//! client mistake).

use std::borrow::Cow;
use std::ops::Range;

use http::{Method, StatusCode};

use crate::http::{write_preflight, Request};

/// What a request asks for, once its path and method are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// An HTTP endpoint that takes the request's method.
    Endpoint(Endpoint),
    /// A WebSocket path: the request must be an upgrade.
    WebSocket(WsEndpoint),
    /// A CORS preflight (`OPTIONS`, on any path, as Java's filter answers it before any
    /// endpoint); see [`write_preflight_reply`].
    Preflight,
    /// No endpoint at the path (404), not with this method (405), or a POST body that is not
    /// JSON (415): the status and why.
    Refused(StatusCode, Refusal),
}

/// Why the router refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    NoEndpoint,
    /// The endpoint takes only these methods.
    Method(&'static str),
    /// A POST without `Content-Type: application/json`.
    MediaType,
}

impl Refusal {
    /// The `Allow` header of a 405.
    pub(crate) fn allowed(self) -> Option<&'static str> {
        match self {
            Refusal::Method(allowed) => Some(allowed),
            _ => None,
        }
    }

    pub(crate) fn message(self) -> String {
        match self {
            Refusal::NoEndpoint => "No endpoint at this path".into(),
            Refusal::Method(allowed) => {
                format!("Method not allowed; this endpoint takes {allowed}")
            }
            Refusal::MediaType => {
                "Unsupported media type; send the body with Content-Type: application/json".into()
            }
        }
    }
}

/// Routes a request by its path and method. As Java's POST handlers, which consume only
/// `application/json`, a POST without that media type is refused before its body is read: this
/// is also what keeps a web page from POSTing `text/plain` cross-site without a preflight.
pub(crate) fn route(request: &Request, path: &[u8]) -> Route {
    let method = &request.method;
    if method == Method::OPTIONS {
        return Route::Preflight;
    }
    let path = normalized(path);
    if let Some(ws) = WsEndpoint::from_path(&path) {
        return Route::WebSocket(ws);
    }
    match Endpoint::from_path(&path) {
        None => Route::Refused(StatusCode::NOT_FOUND, Refusal::NoEndpoint),
        Some(endpoint) if !endpoint.allows(method) => Route::Refused(
            StatusCode::METHOD_NOT_ALLOWED,
            Refusal::Method(endpoint.allowed_methods()),
        ),
        Some(_) if method == Method::POST && !request.content_type_json => {
            Route::Refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, Refusal::MediaType)
        }
        Some(endpoint) => Route::Endpoint(endpoint),
    }
}

/// The path as Java's container matches it: `;` parameters dropped from each segment, runs of
/// `/` read as one, and a trailing `/` ignored. Borrowed as it is in the common case.
fn normalized(path: &[u8]) -> Cow<'_, [u8]> {
    let plain = !path.contains(&b';')
        && !path.windows(2).any(|pair| pair == b"//")
        && (path.len() == 1 || !path.ends_with(b"/"));
    if plain {
        return Cow::Borrowed(path);
    }
    let mut clean = Vec::with_capacity(path.len());
    for segment in path.split(|&b| b == b'/') {
        let segment = segment.split(|&b| b == b';').next().unwrap_or_default();
        if !segment.is_empty() {
            clean.push(b'/');
            clean.extend_from_slice(segment);
        }
    }
    if clean.is_empty() {
        clean.push(b'/');
    }
    Cow::Owned(clean)
}

/// Appends the answer to a CORS preflight: the method and headers the request asked for.
pub(crate) fn write_preflight_reply(request: &Request, buf: &[u8], output: &mut Vec<u8>) {
    let echo = |range: &Option<Range<usize>>| range.clone().map_or(&[][..], |r| &buf[r]);
    write_preflight(
        output,
        echo(&request.cors_request_method),
        echo(&request.cors_request_headers),
        request.keep_alive,
    );
}

/// Every HTTP endpoint the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Register,
    Heartbeat,
    Unregister,
    Service,
    Lookup,
    Services,
    ServicesDelta,
    /// Our own: the services' instances as Prometheus `http_sd` target groups.
    PrometheusSd,
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
    /// A peer's replicated writes and its copy of the registry (`/api/replication/registry/`).
    ReplicationRegister,
    ReplicationHeartbeat,
    ReplicationUnregister,
    ReplicationServices,
    /// Our own anti-entropy endpoints beside them (paths Java never uses).
    ReplicationDigest,
    ReplicationServiceStates,
    /// One of Java's management endpoints (operations, zones, groups, canary, logs).
    Management(ManagementEndpoint),
}

/// The endpoints other than management, in metric-index order (the busiest first: an
/// endpoint's index is its position here).
const CORE: [Endpoint; 25] = [
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
    Endpoint::ReplicationRegister,
    Endpoint::ReplicationHeartbeat,
    Endpoint::ReplicationUnregister,
    Endpoint::ReplicationServices,
    Endpoint::ReplicationDigest,
    Endpoint::ReplicationServiceStates,
    Endpoint::PrometheusSd,
];

impl Endpoint {
    /// One endpoint per metric slot, in metric-index order: every core endpoint, then one
    /// endpoint of each management family (a family's endpoints share its slot).
    pub(crate) const ALL: [Endpoint; CORE.len() + MetricFamily::ALL.len()] = {
        let mut all = [Endpoint::Health; CORE.len() + MetricFamily::ALL.len()];
        let mut i = 0;
        while i < all.len() {
            all[i] = if i < CORE.len() {
                CORE[i]
            } else {
                Endpoint::Management(MetricFamily::ALL[i - CORE.len()].first())
            };
            i += 1;
        }
        all
    };

    pub(crate) fn from_path(path: &[u8]) -> Option<Endpoint> {
        Some(match path {
            b"/api/registry/register.json" => Endpoint::Register,
            b"/api/registry/heartbeat.json" => Endpoint::Heartbeat,
            b"/api/registry/unregister.json" => Endpoint::Unregister,
            b"/api/discovery/service.json" => Endpoint::Service,
            b"/api/discovery/lookup.json" => Endpoint::Lookup,
            b"/api/discovery/services.json" => Endpoint::Services,
            b"/api/discovery/services-delta.json" => Endpoint::ServicesDelta,
            b"/api/discovery/prometheus-sd.json" => Endpoint::PrometheusSd,
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
            b"/api/replication/registry/register.json" => Endpoint::ReplicationRegister,
            b"/api/replication/registry/heartbeat.json" => Endpoint::ReplicationHeartbeat,
            b"/api/replication/registry/unregister.json" => Endpoint::ReplicationUnregister,
            b"/api/replication/registry/services.json" => Endpoint::ReplicationServices,
            b"/api/replication/registry/digest.json" => Endpoint::ReplicationDigest,
            b"/api/replication/registry/service-states.json" => Endpoint::ReplicationServiceStates,
            _ => return ManagementEndpoint::from_path(path).map(Endpoint::Management),
        })
    }

    /// Position in `ALL` (for a management endpoint, its family's), for per-endpoint metrics.
    pub(crate) fn index(self) -> usize {
        match self {
            Endpoint::Management(endpoint) => CORE.len() + endpoint.family() as usize,
            core => CORE
                .iter()
                .position(|&e| e == core)
                .expect("every other endpoint is in CORE"),
        }
    }

    /// The metric label.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Endpoint::Register => "register",
            Endpoint::Heartbeat => "heartbeat",
            Endpoint::Unregister => "unregister",
            Endpoint::Service => "service",
            Endpoint::Lookup => "lookup",
            Endpoint::Services => "services",
            Endpoint::ServicesDelta => "services_delta",
            Endpoint::PrometheusSd => "prometheus_sd",
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
            Endpoint::ReplicationRegister => "replication_register",
            Endpoint::ReplicationHeartbeat => "replication_heartbeat",
            Endpoint::ReplicationUnregister => "replication_unregister",
            Endpoint::ReplicationServices => "replication_services",
            Endpoint::ReplicationDigest => "replication_digest",
            Endpoint::ReplicationServiceStates => "replication_service_states",
            Endpoint::Management(endpoint) => endpoint.family().name(),
        }
    }

    /// The methods the endpoint takes, as an `Allow` / preflight list.
    pub(crate) fn allowed_methods(self) -> &'static str {
        match self.takes() {
            (false, _) => "POST",
            (true, false) => "GET, HEAD",
            (true, true) => "GET, HEAD, POST",
        }
    }

    /// Whether the endpoint takes GET (and so HEAD, answered as GET without the body), and
    /// POST.
    fn takes(self) -> (bool, bool) {
        match self {
            Endpoint::Register
            | Endpoint::Heartbeat
            | Endpoint::Unregister
            | Endpoint::Lookup
            | Endpoint::ServicesDelta
            | Endpoint::ReplicationRegister
            | Endpoint::ReplicationHeartbeat
            | Endpoint::ReplicationUnregister
            | Endpoint::ReplicationServiceStates => (false, true),
            Endpoint::WebSocketSessions
            | Endpoint::Health
            | Endpoint::Metrics
            | Endpoint::PrometheusSd => (true, false),
            Endpoint::Management(endpoint) => (endpoint.takes_get(), true),
            _ => (true, true),
        }
    }

    pub(crate) fn allows(self, method: &Method) -> bool {
        let (get, post) = self.takes();
        match *method {
            Method::GET | Method::HEAD => get,
            Method::POST => post,
            _ => false,
        }
    }
}

/// Declares [`ManagementEndpoint`] from one table: each variant with its path under
/// `/api/management/`, its metric family, and whether it also takes GET (all take POST).
macro_rules! management_endpoints {
    ($($variant:ident = $path:literal, $family:ident, $get:literal;)*) => {
        /// Java's management endpoints (`ManagementController`, `ManagementZoneController`,
        /// `ManagementGroupController`, `CanaryController`, `ManagementLogController`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum ManagementEndpoint {
            $($variant,)*
        }

        impl ManagementEndpoint {
            pub(crate) const ALL: [ManagementEndpoint; [$(stringify!($variant)),*].len()] =
                [$(ManagementEndpoint::$variant,)*];

            /// `(path under /api/management/, family, takes GET)`, in `ALL`'s order.
            const TABLE: [(&'static [u8], MetricFamily, bool); Self::ALL.len()] =
                [$(($path.as_slice(), MetricFamily::$family, $get),)*];
        }
    };
}

management_endpoints! {
    OperateInstance = b"operate-instance.json", Operations, false;
    OperateServer = b"operate-server.json", Operations, false;
    InstanceOperations = b"instance-operations.json", Operations, false;
    ServerOperations = b"server-operations.json", Operations, false;
    AllInstanceOperations = b"all-instance-operations.json", Operations, true;
    AllServerOperations = b"all-server-operations.json", Operations, true;
    InstanceDown = b"instance-down.json", Operations, false;
    ServerDown = b"server-down.json", Operations, false;
    Services = b"services.json", Views, true;
    Service = b"service.json", Views, false;
    OperateZoneOperations = b"zone/operate-zone-operations.json", Zones, false;
    GetAllZoneOperations = b"zone/get-all-zone-operations.json", Zones, false;
    GetZoneOperations = b"zone/get-zone-operations.json", Zones, false;
    GetZoneOperationsList = b"zone/get-zone-operations-list.json", Zones, false;
    IsZoneDown = b"zone/is-zone-down.json", Zones, false;
    InsertRouteRules = b"group/insert-route-rules.json", RouteRules, false;
    UpdateRouteRules = b"group/update-route-rules.json", RouteRules, false;
    DeleteRouteRules = b"group/delete-route-rules.json", RouteRules, false;
    GetAllRouteRules = b"group/get-all-route-rules.json", RouteRules, false;
    GetRouteRules = b"group/get-route-rules.json", RouteRules, false;
    CreateRouteRule = b"group/create-route-rule.json", RouteRules, false;
    InsertRouteRuleGroups = b"group/insert-route-rule-groups.json", RouteRules, false;
    UpdateRouteRuleGroups = b"group/update-route-rule-groups.json", RouteRules, false;
    ReleaseRouteRuleGroups = b"group/release-route-rule-groups.json", RouteRules, false;
    DeleteRouteRuleGroups = b"group/delete-route-rule-groups.json", RouteRules, false;
    GetAllRouteRuleGroups = b"group/get-all-route-rule-groups.json", RouteRules, false;
    GetRouteRuleGroups = b"group/get-route-rule-groups.json", RouteRules, false;
    InsertGroups = b"group/insert-groups.json", Groups, false;
    UpdateGroups = b"group/update-groups.json", Groups, false;
    DeleteGroups = b"group/delete-groups.json", Groups, false;
    GetAllGroups = b"group/get-all-groups.json", Groups, false;
    GetGroups = b"group/get-groups.json", Groups, false;
    InsertGroupTags = b"group/insert-group-tags.json", Groups, false;
    UpdateGroupTags = b"group/update-group-tags.json", Groups, false;
    DeleteGroupTags = b"group/delete-group-tags.json", Groups, false;
    GetAllGroupTags = b"group/get-all-group-tags.json", Groups, false;
    GetGroupTags = b"group/get-group-tags.json", Groups, false;
    OperateGroupOperations = b"group/operate-group-operations.json", Groups, false;
    OperateGroupOperation = b"group/operate-group-operation.json", Groups, false;
    GetAllGroupOperations = b"group/get-all-group-operations.json", Groups, false;
    GetGroupOperations = b"group/get-group-operations.json", Groups, false;
    InsertGroupInstances = b"group/insert-group-instances.json", Groups, false;
    DeleteGroupInstances = b"group/delete-group-instances.json", Groups, false;
    GetGroupInstances = b"group/get-group-instances.json", Groups, false;
    InsertServiceInstances = b"group/insert-service-instances.json", ServiceInstances, false;
    DeleteServiceInstances = b"group/delete-service-instances.json", ServiceInstances, false;
    GetServiceInstances = b"group/get-service-instances.json", ServiceInstances, false;
    UpdateCanaryIps = b"canary/update-canary-ips.json", Canary, false;
    InstanceOperationLogs = b"log/instance-operation-logs.json", Logs, false;
    ServerOperationLogs = b"log/server-operation-logs.json", Logs, false;
    GroupOperationLogs = b"log/group-operation-logs.json", Logs, false;
    GroupLogs = b"log/group-logs.json", Logs, false;
    RouteRuleLogs = b"log/route-rule-logs.json", Logs, false;
    RouteRuleGroupLogs = b"log/route-rule-group-logs.json", Logs, false;
    ZoneOperationLogs = b"log/zone-operation-logs.json", Logs, false;
    GroupInstanceLogs = b"log/group-instance-logs.json", Logs, false;
    ServiceInstanceLogs = b"log/service-instance-logs.json", Logs, false;
}

/// The management endpoints' shares of the per-endpoint metrics: one per family. Fifty-seven
/// rarely called endpoints would each add a latency histogram (and outcome counters) to every
/// scrape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MetricFamily {
    Operations,
    Views,
    Zones,
    RouteRules,
    Groups,
    ServiceInstances,
    Canary,
    Logs,
}

impl MetricFamily {
    const ALL: [MetricFamily; 8] = [
        MetricFamily::Operations,
        MetricFamily::Views,
        MetricFamily::Zones,
        MetricFamily::RouteRules,
        MetricFamily::Groups,
        MetricFamily::ServiceInstances,
        MetricFamily::Canary,
        MetricFamily::Logs,
    ];

    /// The metric label.
    fn name(self) -> &'static str {
        match self {
            MetricFamily::Operations => "management_operations",
            MetricFamily::Views => "management_services",
            MetricFamily::Zones => "management_zones",
            MetricFamily::RouteRules => "management_route_rules",
            MetricFamily::Groups => "management_groups",
            MetricFamily::ServiceInstances => "management_service_instances",
            MetricFamily::Canary => "management_canary",
            MetricFamily::Logs => "management_logs",
        }
    }

    /// The first endpoint of the family, which stands for it in [`Endpoint::ALL`].
    const fn first(self) -> ManagementEndpoint {
        let mut i = 0;
        while ManagementEndpoint::TABLE[i].1 as usize != self as usize {
            i += 1;
        }
        ManagementEndpoint::ALL[i]
    }
}

impl ManagementEndpoint {
    fn from_path(path: &[u8]) -> Option<ManagementEndpoint> {
        let path = path.strip_prefix(b"/api/management/")?;
        let i = Self::TABLE.iter().position(|(p, _, _)| *p == path)?;
        Some(Self::ALL[i])
    }

    fn family(self) -> MetricFamily {
        Self::TABLE[self as usize].1
    }

    /// Whether Java also answers GET here (query parameters in place of the body).
    fn takes_get(self) -> bool {
        Self::TABLE[self as usize].2
    }
}

/// The three WebSocket endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsEndpoint {
    Heartbeat,
    InstanceChange,
    AllInstanceChange,
}

impl WsEndpoint {
    pub const ALL: [WsEndpoint; 3] = [
        WsEndpoint::Heartbeat,
        WsEndpoint::InstanceChange,
        WsEndpoint::AllInstanceChange,
    ];

    pub fn from_path(path: &[u8]) -> Option<WsEndpoint> {
        match path {
            b"/ws/registry/heartbeat" => Some(WsEndpoint::Heartbeat),
            b"/ws/discovery/instance-change" => Some(WsEndpoint::InstanceChange),
            b"/ws/discovery/all-instance-change" => Some(WsEndpoint::AllInstanceChange),
            _ => None,
        }
    }

    /// Position in `ALL`, for per-endpoint counts.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Java's handler name, which `status/message/connections.json` and the metrics use.
    pub fn name(self) -> &'static str {
        match self {
            WsEndpoint::Heartbeat => "registry",
            WsEndpoint::InstanceChange => "discovery",
            WsEndpoint::AllInstanceChange => "discoveries",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_request, Limits, Parse};

    #[test]
    fn every_endpoint_routes_back_to_itself() {
        let paths: [&[u8]; 25] = [
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
            b"/api/replication/registry/register.json",
            b"/api/replication/registry/heartbeat.json",
            b"/api/replication/registry/unregister.json",
            b"/api/replication/registry/services.json",
            b"/api/replication/registry/digest.json",
            b"/api/replication/registry/service-states.json",
            b"/api/discovery/prometheus-sd.json",
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
    fn management_endpoints_route_back_and_share_their_familys_metric_slot() {
        for (i, &endpoint) in ManagementEndpoint::ALL.iter().enumerate() {
            let (path, family, get) = ManagementEndpoint::TABLE[i];
            let full = [b"/api/management/".as_slice(), path].concat();
            let routed = Endpoint::from_path(&full);
            assert_eq!(routed, Some(Endpoint::Management(endpoint)), "{full:?}");
            let e = Endpoint::Management(endpoint);
            assert_eq!(
                Endpoint::ALL[e.index()],
                Endpoint::Management(family.first())
            );
            assert_eq!(e.name(), family.name());
            assert_eq!(
                (e.allows(&Method::GET), e.allows(&Method::POST)),
                (get, true)
            );
        }
        for (i, endpoint) in Endpoint::ALL.iter().enumerate() {
            assert_eq!(endpoint.index(), i, "{endpoint:?}");
        }
        assert_eq!(Endpoint::from_path(b"/api/management/nothing.json"), None);
        assert_eq!(Endpoint::from_path(b"/api/management/group/"), None);
        assert_eq!(
            routed("POST", "/api/management//group/get-groups.json/", None),
            Route::Endpoint(Endpoint::Management(ManagementEndpoint::GetGroups))
        );
        assert_eq!(
            routed("GET", "/api/management/operate-instance.json", None),
            Route::Refused(StatusCode::METHOD_NOT_ALLOWED, Refusal::Method("POST"))
        );
        assert_eq!(
            Endpoint::Management(ManagementEndpoint::Services).allowed_methods(),
            "GET, HEAD, POST"
        );
    }

    #[test]
    fn methods() {
        assert!(Endpoint::Register.allows(&Method::POST));
        assert!(!Endpoint::Register.allows(&Method::GET));
        assert!(Endpoint::Service.allows(&Method::GET));
        assert!(Endpoint::Metrics.allows(&Method::GET));
        assert!(!Endpoint::Metrics.allows(&Method::POST));
    }

    /// Routes `method path` with a JSON body, or with `content_type` when given.
    fn routed(method: &str, path: &str, content_type: Option<&str>) -> Route {
        let content_type = content_type.unwrap_or("application/json");
        let raw = format!("{method} {path} HTTP/1.1\r\nContent-Type: {content_type}\r\n\r\n");
        let Ok(Parse::Complete(request)) = parse_request(raw.as_bytes(), &Limits::default()) else {
            panic!("{raw}");
        };
        route(&request, path.as_bytes())
    }

    #[test]
    fn a_post_must_be_json() {
        assert_eq!(
            routed("POST", "/api/registry/register.json", Some("text/plain")),
            Route::Refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, Refusal::MediaType)
        );
        assert_eq!(
            routed(
                "POST",
                "/api/discovery/service.json",
                Some("application/json; charset=utf-8")
            ),
            Route::Endpoint(Endpoint::Service)
        );
        assert_eq!(
            routed("GET", "/api/discovery/service.json", Some("text/plain")),
            Route::Endpoint(Endpoint::Service)
        );
    }

    #[test]
    fn routes_by_path_then_method() {
        let route = |method: Method, path: &str| routed(method.as_str(), path, None);
        assert_eq!(
            route(Method::POST, "/api/registry/register.json"),
            Route::Endpoint(Endpoint::Register)
        );
        assert_eq!(
            route(Method::GET, "/api/registry/register.json"),
            Route::Refused(StatusCode::METHOD_NOT_ALLOWED, Refusal::Method("POST"))
        );
        assert_eq!(
            route(Method::OPTIONS, "/api/registry/register.json"),
            Route::Preflight
        );
        assert_eq!(
            route(Method::GET, "/api/nothing.json"),
            Route::Refused(StatusCode::NOT_FOUND, Refusal::NoEndpoint)
        );
        assert_eq!(
            route(Method::GET, "/ws/discovery/all-instance-change"),
            Route::WebSocket(WsEndpoint::AllInstanceChange)
        );
        assert_eq!(WsEndpoint::from_path(b"/ws/other"), None);
        assert_eq!(
            Refusal::Method("GET, POST").message(),
            "Method not allowed; this endpoint takes GET, POST"
        );
    }

    #[test]
    fn head_goes_where_get_goes_and_options_anywhere_is_a_preflight() {
        let route = |method: Method, path: &str| routed(method.as_str(), path, None);
        assert_eq!(
            route(Method::HEAD, "/api/status/node.json"),
            Route::Endpoint(Endpoint::NodeStatus)
        );
        assert_eq!(
            route(Method::HEAD, "/api/registry/register.json"),
            Route::Refused(StatusCode::METHOD_NOT_ALLOWED, Refusal::Method("POST"))
        );
        assert_eq!(route(Method::OPTIONS, "/no/such/path"), Route::Preflight);
        assert_eq!(
            Refusal::Method("GET, HEAD").allowed(),
            Some("GET, HEAD"),
            "a 405 says what is allowed"
        );
        assert_eq!(Endpoint::Service.allowed_methods(), "GET, HEAD, POST");
    }

    #[test]
    fn paths_are_taken_as_java_takes_them() {
        for path in [
            "/api/status/node.json",
            "//api/status/node.json",
            "/api//status/node.json",
            "/api/status/node.json/",
            "/api/status/node.json;jsessionid=abc",
            "/api;x=1/status/node.json",
        ] {
            assert_eq!(
                routed("GET", path, None),
                Route::Endpoint(Endpoint::NodeStatus),
                "{path}"
            );
        }
        assert_eq!(&*normalized(b"/"), b"/");
        assert_eq!(&*normalized(b"//"), b"/");
        assert!(matches!(normalized(b"/health"), Cow::Borrowed(_)));
    }
}
