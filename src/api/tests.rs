//! The endpoints through their narrow context, on a node of one shard: no mesh, no executor, no
//! socket.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use artemis_shards::{Shard, VersionClock};
use clap::Parser;
use futures_lite::future::block_on;
use http::{Method, StatusCode};

use super::{respond, Context, Input, KeptReplies, Response};
use crate::cluster::Cluster;
use crate::config::{Cli, Command, ServerConfig};
use crate::management::Management;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::rate_limit::RateLimits;
use crate::replication::Replicator;
use crate::router::Endpoint;
use crate::shard_link::ShardLink;

/// One core's state, as the server would give an endpoint.
struct Core {
    link: std::rc::Rc<ShardLink>,
    node: Node,
    rate_limits: RateLimits,
    metrics: Metrics,
    kept: KeptReplies,
    management: Management,
    replicator: Replicator,
}

impl Core {
    fn new(flags: &[&str]) -> Core {
        let args = ["artemis", "server", "--region", "SHA", "--zone", "SHAJQ"];
        let Command::Server(config) = Cli::parse_from(args.iter().chain(flags)).command;
        let config: ServerConfig = config;
        let bound: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let cluster = Arc::new(Cluster::new(&config, config.node_url(bound)));
        let node = Node::new(config.clone(), bound, cluster);
        let shard = Shard::new(
            node.config.shard_config(1),
            Arc::new(VersionClock::starting_at(1)),
        );
        Core {
            link: ShardLink::alone(shard),
            rate_limits: config.rate_limits(1),
            node,
            metrics: Metrics::new(1),
            kept: KeptReplies::default(),
            management: Management::without_store(),
            replicator: Replicator::default(),
        }
    }

    fn context(&self) -> Context<'_> {
        Context {
            link: &self.link,
            node: &self.node,
            management: &self.management,
            rate_limits: &self.rate_limits,
            metrics: &self.metrics,
            kept: &self.kept,
            replicator: &self.replicator,
        }
    }

    /// The reply to `method` `endpoint` with `body`: status and body text.
    fn call(&self, method: Method, endpoint: Endpoint, body: &str) -> (StatusCode, String) {
        let mut body = body.as_bytes().to_vec();
        let input = Input {
            method: &method,
            query: None,
            body: &mut body,
            peer: Some(Ipv4Addr::LOCALHOST.into()),
            authorization: None,
        };
        let (Response { status, parts, .. }, _) =
            block_on(respond(&self.context(), endpoint, input));
        let text: Vec<u8> = parts.iter().flat_map(|p| p.as_ref().to_vec()).collect();
        (status, String::from_utf8(text).unwrap())
    }
}

const INSTANCE: &str = r#"{"regionId":"SHA","zoneId":"SHAJQ","serviceId":"svc.a","instanceId":"i1","ip":"10.0.0.1","port":8080,"url":"http://10.0.0.1:8080/"}"#;

#[test]
fn a_registered_instance_is_discovered() {
    let core = Core::new(&[]);
    let (status, reply) = core.call(
        Method::POST,
        Endpoint::Register,
        &format!(r#"{{"instances":[{INSTANCE}]}}"#),
    );
    assert_eq!(status, StatusCode::OK);
    assert!(reply.contains(r#""errorCode":"success""#), "{reply}");

    let (status, reply) = core.call(
        Method::POST,
        Endpoint::Service,
        r#"{"discoveryConfig":{"serviceId":"SVC.A"},"regionId":"SHA","zoneId":"SHAJQ"}"#,
    );
    assert_eq!(status, StatusCode::OK);
    assert!(reply.contains(r#""instanceId":"i1""#), "{reply}");
    assert!(reply.ends_with(r#""serviceId":"SVC.A"}}"#), "{reply}");

    let (_, services) = core.call(Method::GET, Endpoint::Services, "");
    assert!(services.contains(r#""serviceId":"svc.a""#), "{services}");
}

#[test]
fn a_heartbeat_for_an_unknown_instance_is_a_failed_entry() {
    let core = Core::new(&[]);
    let (status, reply) = core.call(
        Method::POST,
        Endpoint::Heartbeat,
        &format!(r#"{{"instances":[{INSTANCE}]}}"#),
    );
    assert_eq!(status, StatusCode::OK);
    assert!(reply.contains(r#""errorCode":"data-not-found""#), "{reply}");
    assert!(reply.contains(r#""status":"partial_fail""#), "{reply}");
}

#[test]
fn a_delta_from_before_any_change_is_not_found_and_from_a_known_version_is_found() {
    let core = Core::new(&[]);
    let (_, before) = core.call(Method::GET, Endpoint::Services, "");
    let version: u64 = before
        .rsplit(r#""version":"#)
        .next()
        .unwrap()
        .trim_end_matches('}')
        .parse()
        .unwrap();
    core.call(
        Method::POST,
        Endpoint::Register,
        &format!(r#"{{"instances":[{INSTANCE}]}}"#),
    );
    let (_, delta) = core.call(
        Method::POST,
        Endpoint::ServicesDelta,
        &format!(r#"{{"version":{version}}}"#),
    );
    assert!(delta.contains(r#""changeType":"new""#), "{delta}");
    let (_, gone) = core.call(Method::POST, Endpoint::ServicesDelta, r#"{"version":0}"#);
    assert!(gone.contains(r#""errorCode":"data-not-found""#), "{gone}");
}

#[test]
fn rate_limits_answer_rate_limited() {
    let core = Core::new(&["--status-rate-limit-map", "get-leases:1"]);
    let (first, _) = core.call(Method::GET, Endpoint::Leases, "");
    assert_eq!(first, StatusCode::OK);
    let limited = (0..5)
        .map(|_| core.call(Method::GET, Endpoint::Leases, "").1)
        .any(|reply| reply.contains("rate-limited"));
    assert!(limited, "a limit of one per second refuses a burst");
}

#[test]
fn metrics_count_shard_figures() {
    let core = Core::new(&[]);
    core.call(
        Method::POST,
        Endpoint::Register,
        &format!(r#"{{"instances":[{INSTANCE}]}}"#),
    );
    let (status, text) = core.call(Method::GET, Endpoint::Metrics, "");
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.lines().any(|l| l == "artemis_active_instances 1"),
        "{text}"
    );
}

#[test]
fn a_request_with_too_many_instances_is_refused_whole() {
    let core = Core::new(&["--max-instances-per-request", "2"]);
    let list = [INSTANCE; 3].join(",");
    let (status, reply) = core.call(
        Method::POST,
        Endpoint::Register,
        &format!(r#"{{"instances":[{list}]}}"#),
    );
    assert_eq!(status, StatusCode::OK);
    assert!(reply.contains(r#""errorCode":"bad-request""#), "{reply}");
    assert!(reply.contains("at most 2 per request"), "{reply}");
    let (_, services) = core.call(Method::GET, Endpoint::Services, "");
    assert!(
        !services.contains("svc.a"),
        "nothing registered: {services}"
    );
}

#[test]
fn a_delta_reply_is_built_once_per_pair_of_versions() {
    let core = Core::new(&[]);
    let version = core.link.version();
    let register = |id: &str| {
        let instance = INSTANCE.replace("\"i1\"", &format!("\"{id}\""));
        let body = format!(r#"{{"instances":[{instance}]}}"#);
        core.call(Method::POST, Endpoint::Register, &body);
    };
    register("i1");
    let kept = || {
        let mut body = format!(r#"{{"version":{version}}}"#).into_bytes();
        let input = Input {
            method: &Method::POST,
            query: None,
            body: &mut body,
            peer: Some(Ipv4Addr::LOCALHOST.into()),
            authorization: None,
        };
        let (response, _) = block_on(respond(&core.context(), Endpoint::ServicesDelta, input));
        match response.parts.as_slice() {
            [super::Part::Kept(kept)] => kept.clone(),
            _ => panic!("a delta reply is kept"),
        }
    };
    let first = kept();
    assert!(Arc::ptr_eq(&first, &kept()), "the same bytes again");
    register("i2");
    let after_a_change = kept();
    assert!(
        !Arc::ptr_eq(&first, &after_a_change),
        "built anew after a change"
    );
    assert!(crate::transport::SharedBytes::bytes(&*after_a_change)
        .windows(4)
        .any(|w| w == b"\"i2\""));
}

#[test]
fn the_anti_entropy_endpoints_answer_what_a_peer_reads() {
    use artemis_shards::Removal;

    use crate::decode::{digest_reply, service_states_reply};

    let core = Core::new(&[]);
    let other = INSTANCE.replace(r#""instanceId":"i1""#, r#""instanceId":"I2""#);
    let both = format!(r#"{{"instances":[{INSTANCE},{other}]}}"#);
    core.call(Method::POST, Endpoint::Register, &both);
    core.call(
        Method::POST,
        Endpoint::Unregister,
        &format!(r#"{{"instances":[{other}]}}"#),
    );

    let (status, reply) = core.call(Method::GET, Endpoint::ReplicationDigest, "");
    assert_eq!(status, StatusCode::OK);
    let digest = digest_reply(&mut reply.into_bytes()).unwrap().unwrap();
    assert_eq!(digest.error_code.as_deref(), Some("success"));
    assert_eq!(digest.services.len(), 1);
    assert_eq!(
        (&*digest.services[0].0, digest.services[0].1.count),
        ("svc.a", 1)
    );

    let (status, reply) = core.call(
        Method::POST,
        Endpoint::ReplicationServiceStates,
        r#"{"serviceIds":["SVC.A","none"]}"#,
    );
    assert_eq!(status, StatusCode::OK);
    let states = service_states_reply(&mut reply.into_bytes())
        .unwrap()
        .unwrap();
    let ids: Vec<&str> = states.services.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["none", "svc.a"]);
    let state = &states.services[1].1;
    assert_eq!(state.instances.len(), 1);
    let held = &state.instances[0];
    assert_eq!(held.instance.instance_id.as_deref(), Some("i1"));
    assert!(held.registration_ms > 0 && held.renewal_ms >= held.registration_ms);
    let (key, removal) = &state.removals[0];
    assert_eq!(&*key.instance_id, "i2");
    assert!(matches!(removal, Removal { expired: false, .. }));
}

#[test]
fn prometheus_targets_wait_for_the_node_to_serve_discovery() {
    let nodes = "http://127.0.0.1:8080/,http://127.0.0.1:8081/";
    let joining = Core::new(&["--cluster-nodes", nodes]);
    let (status, reply) = joining.call(Method::GET, Endpoint::PrometheusSd, "");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{reply}");
    assert!(reply.contains("service-unavailable"), "{reply}");
    let up = Core::new(&[]);
    assert_eq!(
        up.call(Method::GET, Endpoint::PrometheusSd, ""),
        (StatusCode::OK, "[]".to_string())
    );
}
