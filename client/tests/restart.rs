//! A server restart (killed, started again on the same port with an empty registry): the
//! registry client registers its instances again (its heartbeats answered `data-not-found`),
//! and the discovery client reconnects, catches up (its version belongs to the earlier run, so
//! through a full fetch) and goes on receiving pushes.

mod common;

use std::time::Duration;

use artemis_client::{DiscoveryClient, RegistryClient};
use common::{config, eventually, free_port, instance, tells, wait_for, Server, SHORT_LEASES};

const WITHIN: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_client_registers_again_and_resumes() {
    let port = free_port();
    let server = Server::start_on(port, SHORT_LEASES);
    let registry = RegistryClient::new(config(&[server.url()])).unwrap();
    let discovery = DiscoveryClient::new(config(&[server.url()])).unwrap();
    let service_id = "sdk.restart";
    registry
        .register([instance(service_id, "mine")])
        .await
        .unwrap();
    assert_eq!(
        discovery
            .service(service_id)
            .await
            .unwrap()
            .instances()
            .len(),
        1
    );
    let mut changes = discovery.watch(service_id);
    assert!(eventually(WITHIN, || async { discovery.stats().full_fetches >= 1 }).await);

    server.kill();
    let server = Server::start_on(port, SHORT_LEASES);

    let registered_again = eventually(WITHIN, || async {
        server.instance_ids(service_id) == ["mine"]
    })
    .await;
    assert!(registered_again, "the instance was not registered again");
    let resumed = eventually(WITHIN, || async {
        let stats = discovery.stats();
        stats.sessions >= 2 && stats.full_fetches >= 2
    })
    .await;
    assert!(
        resumed,
        "no new push session caught up: {:?}",
        discovery.stats()
    );

    // The new session follows the service: a change on the new server reaches the listener.
    server.register(&instance(service_id, "other"));
    let seen = wait_for(&mut changes, WITHIN, |c| tells(c, "other", true)).await;
    assert!(seen.is_ok(), "{seen:?}");
    let mut ids: Vec<String> = discovery
        .service(service_id)
        .await
        .unwrap()
        .instances()
        .iter()
        .map(|i| i.instance_id.clone())
        .collect();
    ids.sort();
    assert_eq!(ids, ["mine", "other"]);

    registry.shutdown().await.unwrap();
    let seen = wait_for(&mut changes, WITHIN, |c| tells(c, "mine", false)).await;
    assert!(seen.is_ok(), "{seen:?}");
}
