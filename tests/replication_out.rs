//! Replication out, end to end on two loopback nodes: a client's register and heartbeat on one
//! node go to the other over `/api/replication/registry/*.json`, the sender's metrics count them
//! by peer and kind, and what a node receives by replication it never sends back.

mod common;

use common::artemis::instance;
use common::cluster::{TestCluster, TO_SPREAD};
use common::poll;

#[test]
fn client_writes_on_one_node_reach_its_peer_and_are_counted() {
    let cluster = TestCluster::start(2, &[]);
    cluster.await_all_up();
    let (a, b) = (cluster.node(0), cluster.node(1));
    let service = "replication.out";
    let one = instance(service, "a:1");
    a.register_ok(&[&one]);
    let seen = poll(TO_SPREAD, || {
        (b.instance_ids(service) == ["a:1"]).then_some(())
    });
    assert!(
        seen.is_some(),
        "node 1 discovers {:?}",
        b.instance_ids(service)
    );

    let reply = a.heartbeat(&[&one]);
    assert_eq!(reply.json()["responseStatus"]["status"], "success");
    let to_b = format!("peer=\"http://127.0.0.1:{}/\"", cluster.port(1));
    for kind in ["register", "heartbeat"] {
        let sent = format!("artemis_replication_sent_total{{{to_b},kind=\"{kind}\"}}");
        let counted = poll(TO_SPREAD, || (a.metric(&sent) == 1.0).then_some(()));
        assert!(counted.is_some(), "{sent} is {}", a.metric(&sent));
    }
    assert_eq!(
        a.metric(&format!("artemis_replication_queue_instances{{{to_b}}}")),
        0.0
    );
    assert_eq!(a.metric("artemis_replication_dropped_total"), 0.0);
    // Node 1 took both by replication and sent nothing on.
    assert_eq!(b.metric("artemis_replication_sent_total"), 0.0);
}
