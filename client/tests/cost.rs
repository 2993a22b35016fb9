//! What one SDK instance costs, measured on the real server and printed (`--nocapture`; run in
//! release for figures worth quoting): the CPU and memory of heartbeating 100 instances, and
//! the time from a register sent to the server until a `watch` stream yields it, on that
//! node and on a peer it replicates to. The bounds
//! asserted are loose, to catch a regression by an order of magnitude, not to time a machine.

mod common;

use std::time::{Duration, Instant};

use artemis_client::{DiscoveryClient, RegistryClient, ServiceChange};
use common::{config, instance, Cluster, Server};
use futures_util::StreamExt;

/// CPU time of this process's threads so far, in nanoseconds (the first field of each
/// thread's `/proc/self/task/*/schedstat`; `/proc/self/stat` counts in 10 ms ticks, too coarse).
fn process_cpu() -> Duration {
    let nanos: u64 = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

/// Resident memory of this process in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_an_sdk_instance_costs() {
    let server = Server::start(&[]);

    // Heartbeats: 100 instances, one round every 200 ms for 10 s.
    let rss_before = rss_kib();
    let mut heartbeating = config(&[server.url()]);
    heartbeating.heartbeat_interval = Duration::from_millis(200);
    let registry = RegistryClient::new(heartbeating).unwrap();
    let instances: Vec<_> = (0..100)
        .map(|i| instance("sdk.cost.heartbeat", &format!("i-{i:03}")))
        .collect();
    registry.register(instances).await.unwrap();
    let (cpu, started) = (process_cpu(), Instant::now());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rounds = started.elapsed().as_secs_f64() / 0.2;
    let per_round = (process_cpu() - cpu).as_secs_f64() / rounds;
    let rss_after = rss_kib();
    println!(
        "heartbeating 100 instances: {:.0} us of CPU per round ({:.4} % of a core at the default 5 s interval); resident memory +{} KiB with the client",
        per_round * 1e6,
        per_round / 5.0 * 100.0,
        rss_after.saturating_sub(rss_before)
    );
    assert!(per_round < 0.05, "{per_round} s of CPU per heartbeat round");
    registry.shutdown().await.unwrap();

    // Register -> listener: on the node the listener watches, then on its peer.
    let latencies = register_to_watch(&server, &server, "sdk.cost.push").await;
    report("register sent -> watch stream", &latencies);
    drop(server);
    let cluster = Cluster::start(&[]);
    let across = register_to_watch(cluster.node(0), cluster.node(1), "sdk.cost.peer").await;
    report(
        "register sent to node A -> watch stream on node B (replicated, then pushed)",
        &across,
    );
}

/// 200 registers sent to `registering`, each timed until a watch stream of a discovery client
/// of `watching` (and of it alone) yields it; sorted.
async fn register_to_watch(
    registering: &Server,
    watching: &Server,
    service_id: &str,
) -> Vec<Duration> {
    let mut own = config(&[watching.url()]);
    own.follow_cluster = false;
    let discovery = DiscoveryClient::new(own).unwrap();
    let mut changes = discovery.watch(service_id);
    // The first fetch arrives first.
    let first = tokio::time::timeout(Duration::from_secs(10), changes.next()).await;
    assert!(matches!(first, Ok(Some(ServiceChange::Reloaded { .. }))));
    let mut latencies = Vec::new();
    for i in 0..200 {
        let id = format!("p-{i:03}");
        let sent = Instant::now();
        registering.register(&instance(service_id, &id));
        loop {
            match tokio::time::timeout(Duration::from_secs(10), changes.next()).await {
                Ok(Some(ServiceChange::Updated { instance, .. })) if instance.instance_id == id => {
                    break
                }
                Ok(Some(_)) => continue,
                other => panic!("no push for {id}: {other:?}"),
            }
        }
        latencies.push(sent.elapsed());
    }
    latencies.sort();
    latencies
}

fn report(what: &str, latencies: &[Duration]) {
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "{what}: p50 {:?}, p99 {:?}, max {:?} ({} registers)",
        at(0.5),
        at(0.99),
        at(1.0),
        latencies.len()
    );
    assert!(at(0.99) < Duration::from_secs(1));
}
