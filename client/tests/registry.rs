//! The registry client against the real server: instances registered at once, kept past twice
//! the lease TTL by WebSocket heartbeats, registered again when the server forgets them,
//! refused ones reported, and unregistered on shutdown or on drop.

mod common;

use std::time::Duration;

use artemis_client::{Error, ErrorCode, RegistryClient};
use common::{config, instance, poll, Server, SHORT_LEASES};

const WITHIN: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_instances_past_twice_the_lease_and_shutdown_unregisters() {
    let server = Server::start(SHORT_LEASES);
    let registry = RegistryClient::new(config(&[server.url()])).unwrap();
    let mine = instance("sdk.registry.lifecycle", "i-1");
    registry.register([mine.clone()]).await.unwrap();
    assert_eq!(server.instance_ids(&mine.service_id), ["i-1"]);

    // 2.5 lease TTLs: only heartbeats keep the lease, and they go over the WebSocket.
    tokio::time::sleep(Duration::from_millis(5000)).await;
    assert_eq!(server.instance_ids(&mine.service_id), ["i-1"]);
    assert_eq!(
        server.sessions("registry"),
        1.0,
        "heartbeats use the WebSocket"
    );

    registry.shutdown().await.unwrap();
    assert!(server.instance_ids(&mine.service_id).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_the_server_forgot_is_registered_again() {
    let server = Server::start(SHORT_LEASES);
    let registry = RegistryClient::new(config(&[server.url()])).unwrap();
    let mine = instance("sdk.registry.again", "i-1");
    registry.register([mine.clone()]).await.unwrap();
    // Removed behind the client's back: the next heartbeat answers `data-not-found`.
    server.unregister(&mine);
    assert!(server.instance_ids(&mine.service_id).is_empty());
    let back = poll(WITHIN, || {
        (server.instance_ids(&mine.service_id) == ["i-1"]).then_some(())
    });
    assert!(back.is_some(), "the instance was not registered again");
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_invalid_instances_are_reported_and_not_kept() {
    let server = Server::start(&[]);
    let registry = RegistryClient::new(config(&[server.url()])).unwrap();
    let mut elsewhere = instance("sdk.registry.refused", "far");
    elsewhere.region_id = Some("FRA".into());
    let good = instance("sdk.registry.refused", "near");
    match registry.register([elsewhere, good.clone()]).await {
        Err(Error::Rejected(failed)) => {
            assert_eq!(failed.len(), 1);
            assert_eq!(failed[0].code(), ErrorCode::NoPermission);
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(registry.instances(), std::slice::from_ref(&good));
    assert_eq!(server.instance_ids(&good.service_id), ["near"]);

    let blank = instance("sdk.registry.refused", " ");
    assert!(matches!(
        registry.register([blank]).await,
        Err(Error::InvalidInstance(_))
    ));
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_client_unregisters_its_instances() {
    let server = Server::start(&[]);
    let registry = RegistryClient::new(config(&[server.url()])).unwrap();
    let mine = instance("sdk.registry.drop", "i-1");
    registry.register([mine.clone()]).await.unwrap();
    drop(registry);
    let gone = poll(WITHIN, || {
        server
            .instance_ids(&mine.service_id)
            .is_empty()
            .then_some(())
    });
    assert!(
        gone.is_some(),
        "the dropped client's instance is still registered"
    );
}

#[test]
fn a_client_needs_a_runtime_and_a_usable_configuration() {
    let config = config(&["http://127.0.0.1:1".to_string()]);
    assert!(matches!(RegistryClient::new(config), Err(Error::NoRuntime)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    assert!(matches!(
        RegistryClient::new(artemis_client::ClientConfig::new(["https://x"])),
        Err(Error::Config(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_go_over_http_when_the_websocket_fails() {
    // Every heartbeat frame is over the server's WebSocket limit: it closes the session (1009).
    let mut extra = SHORT_LEASES.to_vec();
    extra.extend(["--ws-max-frame", "64"]);
    let server = Server::start(&extra);
    let registry = RegistryClient::new(config(&[server.url()])).unwrap();
    let mine = instance("sdk.registry.fallback", "i-1");
    registry.register([mine.clone()]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5000)).await;
    assert_eq!(server.instance_ids(&mine.service_id), ["i-1"]);
    assert!(
        server.metric("artemis_websocket_refusals_total") >= 1.0,
        "the WebSocket was tried"
    );
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_register_is_retried_later() {
    // One register per 10 s: the second is refused until the window moves on.
    let server = Server::start(&["--registry-rate-limit-map", "register:1"]);
    let registry = RegistryClient::new(config(&[server.url()])).unwrap();
    let first = instance("sdk.registry.limited", "first");
    let second = instance("sdk.registry.limited", "second");
    registry.register([first]).await.unwrap();
    let started = std::time::Instant::now();
    match registry.register([second]).await {
        Err(e @ Error::Unavailable { .. }) => {
            assert!(e.to_string().contains("rate-limited"), "{e}");
        }
        other => panic!("expected rate limiting to outlast the retries, got {other:?}"),
    }
    // Retried with back-off (100, 200, 400, 800 ms), not given up at once.
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(server.metric("artemis_rate_limited_total") >= 5.0);
    // Kept: the heartbeats register it once the limiter lets them.
    let registered = poll(Duration::from_secs(20), || {
        (server.instance_ids("sdk.registry.limited") == ["first", "second"]).then_some(())
    });
    assert!(
        registered.is_some(),
        "the refused instance was never registered"
    );
    registry.shutdown().await.unwrap();
}
