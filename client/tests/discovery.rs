//! The discovery client against the real server: the whole life of an instance as a consumer
//! sees it (register, discover, kept past twice the lease TTL by heartbeats, unregister, the
//! change reaching the listener), and catching up after missed pushes, through
//! `services-delta.json` or, when the server's retention no longer covers the version, a full
//! fetch.

mod common;

use std::time::Duration;

use artemis_client::{DiscoveryClient, RegistryClient, ServiceChange};
use common::{
    config, eventually, free_port, instance, tells, wait_for, Proxy, Server, SHORT_LEASES,
};

const WITHIN: Duration = Duration::from_secs(15);

async fn ids(discovery: &DiscoveryClient, service_id: &str) -> Vec<String> {
    let service = discovery.service(service_id).await.unwrap();
    let mut ids: Vec<String> = service
        .instances()
        .iter()
        .map(|i| i.instance_id.clone())
        .collect();
    ids.sort();
    ids
}

/// A server that clients reach only through a proxy (its node URL is the proxy's).
fn behind_a_proxy(extra: &[&str]) -> (Server, Proxy) {
    let port = free_port();
    let proxy = Proxy::start(([127, 0, 0, 1], port).into());
    let node_url = format!("{}/", proxy.url());
    let mut args = vec!["--node-url", &node_url];
    args.extend_from_slice(extra);
    (Server::start_on(port, &args), proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_discover_heartbeat_unregister_reaches_the_listener() {
    let server = Server::start(SHORT_LEASES);
    let registry = RegistryClient::new(config(&[server.url()])).unwrap();
    let discovery = DiscoveryClient::new(config(&[server.url()])).unwrap();
    let service_id = "sdk.discovery.lifecycle";
    registry
        .register([instance(service_id, "i-1")])
        .await
        .unwrap();
    assert_eq!(ids(&discovery, service_id).await, ["i-1"]);
    let mut changes = discovery.watch(service_id);

    // 2.5 lease TTLs: still there, by the server and by the client's copy.
    tokio::time::sleep(Duration::from_millis(5000)).await;
    assert_eq!(server.instance_ids(service_id), ["i-1"]);
    assert_eq!(ids(&discovery, service_id).await, ["i-1"]);

    registry.shutdown().await.unwrap();
    let seen = wait_for(&mut changes, WITHIN, |c| tells(c, "i-1", false)).await;
    assert!(seen.is_ok(), "no removal reached the listener: {seen:?}");
    assert!(ids(&discovery, service_id).await.is_empty());
    assert!(discovery.stats().pushes >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_catches_up_through_the_delta() {
    let (server, proxy) = behind_a_proxy(&[]);
    let discovery = DiscoveryClient::new(config(&[proxy.url()])).unwrap();
    let service_id = "sdk.discovery.delta";
    let mut changes = discovery.watch(service_id);
    // The first session's catch-up is a full fetch: it gives the version to resume from.
    assert!(eventually(WITHIN, || async { discovery.stats().full_fetches == 1 }).await);

    proxy.cut();
    assert!(eventually(WITHIN, || async { server.sessions("discovery") == 0.0 }).await);
    for id in ["a", "b", "c"] {
        server.register(&instance(service_id, id));
    }
    proxy.restore();

    let seen = wait_for(&mut changes, WITHIN, |c| tells(c, "c", true)).await;
    assert!(
        seen.is_ok(),
        "the missed changes did not reach the listener: {seen:?}"
    );
    assert_eq!(ids(&discovery, service_id).await, ["a", "b", "c"]);
    let stats = discovery.stats();
    assert!(stats.sessions >= 2, "{stats:?}");
    assert!(stats.deltas >= 1, "{stats:?}");
    assert_eq!(stats.stale_deltas, 0, "{stats:?}");
    assert_eq!(
        stats.full_fetches, 1,
        "caught up without a full fetch: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_delta_version_falls_back_to_a_full_fetch() {
    let (server, proxy) = behind_a_proxy(&["--delta-retention", "10"]);
    let discovery = DiscoveryClient::new(config(&[proxy.url()])).unwrap();
    let service_id = "sdk.discovery.stale";
    let mut changes = discovery.watch(service_id);
    assert!(eventually(WITHIN, || async { discovery.stats().full_fetches == 1 }).await);

    proxy.cut();
    assert!(eventually(WITHIN, || async { server.sessions("discovery") == 0.0 }).await);
    // More changes than the server keeps: the client's version is no longer covered.
    let missed: Vec<String> = (0..30).map(|i| format!("i-{i:02}")).collect();
    for id in &missed {
        server.register(&instance(service_id, id));
    }
    proxy.restore();

    let seen = wait_for(
        &mut changes,
        WITHIN,
        |c| matches!(c, ServiceChange::Reloaded { service } if service.instances().len() == 30),
    )
    .await;
    assert!(seen.is_ok(), "no full fetch reached the listener: {seen:?}");
    assert_eq!(ids(&discovery, service_id).await, missed);
    let stats = discovery.stats();
    assert!(stats.stale_deltas >= 1, "{stats:?}");
    assert!(stats.full_fetches >= 2, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_service_is_empty_and_followed() {
    let server = Server::start(&[]);
    let discovery = DiscoveryClient::new(config(&[server.url()])).unwrap();
    let service_id = "sdk.discovery.later";
    assert!(discovery
        .service(service_id)
        .await
        .unwrap()
        .instances()
        .is_empty());
    let mut changes = discovery.watch(service_id);
    // Followed from the first call: an instance registered later is pushed.
    assert!(eventually(WITHIN, || async { server.sessions("discovery") == 1.0 }).await);
    server.register(&instance(service_id, "late"));
    let seen = wait_for(&mut changes, WITHIN, |c| tells(c, "late", true)).await;
    assert!(seen.is_ok(), "{seen:?}");
    assert_eq!(ids(&discovery, service_id).await, ["late"]);
}
