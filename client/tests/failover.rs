//! Failover between the nodes of a two-node cluster: the clients know one seed, learn both
//! nodes from `cluster/up-*-nodes.json`, and when the node holding their heartbeat session is
//! killed they go on with the other: the instance outlives twice the lease TTL there, changes
//! still reach the listener, and shutdown unregisters there.

mod common;

use std::time::Duration;

use artemis_client::{DiscoveryClient, RegistryClient};
use common::{config, eventually, instance, poll, tells, wait_for, Cluster, SHORT_LEASES};

const WITHIN: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_go_on_with_the_surviving_node() {
    let mut cluster = Cluster::start(SHORT_LEASES);
    let seeds = [cluster.node(0).url()];
    let registry = RegistryClient::new(config(&seeds)).unwrap();
    let discovery = DiscoveryClient::new(config(&seeds)).unwrap();
    let service_id = "sdk.failover";
    registry
        .register([instance(service_id, "mine")])
        .await
        .unwrap();
    let mut changes = discovery.watch(service_id);
    // The two clients may use different nodes: replication brings the instance to the other.
    assert!(
        eventually(WITHIN, || async {
            discovery
                .service(service_id)
                .await
                .unwrap()
                .instances()
                .len()
                == 1
        })
        .await
    );

    // Kill the node that holds the heartbeat session (the seed or the node learnt from it).
    let victim = poll(WITHIN, || {
        (0..2).find(|&i| cluster.node(i).sessions("registry") >= 1.0)
    })
    .expect("a heartbeat session");
    assert!(
        eventually(WITHIN, || async {
            (0..2).any(|i| cluster.node(i).sessions("discovery") >= 1.0)
        })
        .await
    );
    let survivor = 1 - victim;
    cluster.nodes[victim].take().unwrap().kill();

    // 2.5 lease TTLs on the survivor: only the client's heartbeats keep the instance there.
    tokio::time::sleep(Duration::from_millis(5000)).await;
    assert_eq!(cluster.node(survivor).instance_ids(service_id), ["mine"]);
    assert!(
        eventually(WITHIN, || async {
            cluster.node(survivor).sessions("registry") >= 1.0
        })
        .await
    );

    cluster
        .node(survivor)
        .register(&instance(service_id, "other"));
    let seen = wait_for(&mut changes, WITHIN, |c| tells(c, "other", true)).await;
    assert!(seen.is_ok(), "{seen:?}");

    registry.shutdown().await.unwrap();
    assert!(cluster.node(survivor).instance_ids(service_id) == ["other"]);
}
