//! `./cluster.sh` as an operator uses it, on this build's server binary (`CLUSTER_BIN`), in a
//! folder of the test's own (`CLUSTER_DIR`) and on free ports: start, status, logs, the
//! refusals, stop and clean, with the load generator's `replication` scenario run through the
//! cluster it started, on one node and across two. Exit codes are asserted: 0 done, 1 failed,
//! 2 bad usage.

use artemis_loadgen::{run, Config, Kind, Pacing, Share};
use artemis_testkit::free_ports;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// A cluster folder of the test's own; the cluster in it is cleaned away on drop, even when the
/// test fails.
struct Cluster {
    dir: PathBuf,
}

impl Cluster {
    fn new(name: &str) -> Cluster {
        let dir = std::env::temp_dir().join(format!("cluster-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Cluster { dir }
    }

    /// Runs `./cluster.sh args` on this cluster, its nodes polling each other's status every
    /// 200 ms (a start waits until every node has seen the others up).
    fn run(&self, args: &[&str]) -> Output {
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster.sh"))
            .args(args)
            .env("CLUSTER_DIR", &self.dir)
            .env("CLUSTER_BIN", env!("CARGO_BIN_EXE_artemis"))
            .env_remove("ARTEMIS_CORES")
            .env("ARTEMIS_EXTRA_ARGS", "--peer-status-interval 200ms")
            .output()
            .expect("cluster.sh runs")
    }

    /// Runs `./cluster.sh args` and checks its exit code; its stdout and stderr together.
    fn expect(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "cluster.sh {args:?}:\n{text}"
        );
        text
    }

    /// The pids of the nodes, as the script keeps them.
    fn pids(&self, nodes: usize) -> Vec<u32> {
        (1..=nodes)
            .map(|k| {
                let file = self.dir.join(format!("node{k}/pid"));
                std::fs::read_to_string(file)
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap()
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.dir.join("cluster.env").exists() {
            self.run(&["clean"]);
        }
    }
}

/// The columns of node `k`'s row in the output of `./cluster.sh status`: node, url, pid,
/// process, status, instances.
fn columns(status: &str, k: usize) -> Vec<&str> {
    status
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|columns| columns.first() == Some(&k.to_string().as_str()))
        .unwrap_or_else(|| panic!("no node {k} in\n{status}"))
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn bad_usage_exits_2_and_no_cluster_exits_1() {
    let cluster = Cluster::new("usage");
    assert!(cluster
        .expect(&[], 2)
        .contains("Usage: ./cluster.sh COMMAND"));
    assert!(cluster.expect(&["help"], 0).contains("ARTEMIS_EXTRA_ARGS"));
    for args in [
        &["launch"][..],
        &["start", "three"],
        &["start", "0"],
        &["start", "3", "65534"],
        &["start", "3", "8080", "extra"],
        &["stop", "now"],
    ] {
        let text = cluster.expect(args, 2);
        assert!(text.contains("(see ./cluster.sh help)"), "{args:?}: {text}");
    }
    assert!(cluster
        .expect(&["status"], 1)
        .contains("no cluster here (./cluster.sh start)"));
    cluster.expect(&["restart"], 1);
    cluster.expect(&["stop"], 0);
    assert!(!cluster.dir.exists(), "nothing was started");
}

#[test]
fn a_cluster_starts_serves_the_load_generator_and_stops() {
    let cluster = Cluster::new("life");
    let base = free_ports(2);
    let urls = [
        format!("http://127.0.0.1:{base}"),
        format!("http://127.0.0.1:{}", base + 1),
    ];
    let started = cluster.expect(&["start", "2", &base.to_string()], 0);
    assert!(started.contains("all 2 nodes are up"), "{started}");
    assert!(started.contains(&format!("--targets {},{}", urls[0], urls[1])));
    let pids = cluster.pids(2);
    assert!(pids.iter().all(|&pid| alive(pid)));

    let refused = cluster.expect(&["start", "2", &base.to_string()], 1);
    assert!(refused.contains("is running"), "{refused}");
    let status = cluster.expect(&["status"], 0);
    for (k, pid) in pids.iter().enumerate() {
        let row = [
            &(k + 1).to_string(),
            &format!("{}/", urls[k]),
            &pid.to_string(),
        ];
        assert_eq!(
            &columns(&status, k + 1)[..],
            [row[0], row[1], row[2], "alive", "up", "0"],
            "{status}"
        );
    }
    let log = cluster.expect(&["logs", "2"], 0);
    assert!(log.contains(&format!("serving on 127.0.0.1:{}", base + 1)));
    cluster.expect(&["logs", "3"], 2);

    // Registers on the first node reach a subscriber of the same node (the scenario given the
    // node twice), then one of the second node, through replication: none is missing.
    for subscribed in [&urls[0], &urls[1]] {
        let report = run(Config {
            target: urls[0].clone(),
            more_targets: vec![subscribed.clone()],
            scenario: vec![Share {
                kind: Kind::Replication,
                weight: 1,
            }],
            instances: 100,
            services: 10,
            pacing: Pacing::Rate(200.0),
            duration: Duration::from_millis(500),
            warmup: Duration::from_millis(200),
            connections: 4,
            quiet: true,
            ..Config::default()
        })
        .expect("the load runs");
        let (register, push) = (report.op("register").unwrap(), report.op("push").unwrap());
        assert_eq!(register.failed, 0, "{:?}", register.failures);
        assert_eq!(
            push.failed, 0,
            "pushes from {subscribed}: {:?}",
            push.failures
        );
        assert_eq!(push.ok, register.ok);
    }
    let status = cluster.expect(&["status"], 0);
    assert_eq!(columns(&status, 1)[5], "100", "{status}");
    assert_eq!(columns(&status, 2)[5], "100", "{status}");

    let stopped = cluster.expect(&["stop"], 0);
    assert!(stopped.contains("stopped 2 node(s): 1 2"), "{stopped}");
    assert!(pids.iter().all(|&pid| !alive(pid)));
    let status = cluster.expect(&["status"], 1);
    assert_eq!(status.matches(" down ").count(), 2, "{status}");

    let restarted = cluster.expect(&["restart"], 0);
    assert!(restarted.contains("all 2 nodes are up"), "{restarted}");
    let pids = cluster.pids(2);
    cluster.expect(&["clean"], 0);
    assert!(pids.iter().all(|&pid| !alive(pid)));
    assert!(!cluster.dir.exists());
}
