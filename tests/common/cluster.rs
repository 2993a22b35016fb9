//! A cluster of test servers on loopback. Every node lists every other, so their ports are
//! chosen before any starts; each keeps its own management directory, so a node killed with
//! SIGKILL restarts on its own data. Nodes alternate between the machine's two cores.

use std::time::Duration;

use super::{free_port, poll, Server, TempDir};

/// How long a node may take to join its cluster and report `up`.
pub(crate) const TO_JOIN: Duration = Duration::from_secs(30);

/// How long a change may take to reach every node (replication is batched within milliseconds,
/// anti-entropy repairs within a digest interval or two after a request lost to a fault times
/// out; this only bounds a failing test).
pub(crate) const TO_SPREAD: Duration = Duration::from_secs(20);

pub(crate) struct TestCluster {
    nodes: Vec<Option<Server>>,
    ports: Vec<u16>,
    dirs: Vec<TempDir>,
    /// How each node reaches each other (`peers[i][j]`: node `j`'s URL in node `i`'s list).
    peers: Vec<Vec<String>>,
    extra: Vec<String>,
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/")
}

impl TestCluster {
    /// `n` nodes, each with `extra` flags, every link direct.
    pub(crate) fn start(n: usize, extra: &[&str]) -> TestCluster {
        TestCluster::start_with(n, extra, |_, _, port| url(port))
    }

    /// `n` nodes, node `i` reaching node `j` at `via(i, j, port of j)` (a proxy, say).
    pub(crate) fn start_with(
        n: usize,
        extra: &[&str],
        via: impl Fn(usize, usize, u16) -> String,
    ) -> TestCluster {
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let peers = (0..n)
            .map(|i| {
                let via = &via;
                let ports = &ports;
                (0..n)
                    .map(move |j| {
                        if i == j {
                            url(ports[j])
                        } else {
                            via(i, j, ports[j])
                        }
                    })
                    .collect()
            })
            .collect();
        let mut cluster = TestCluster {
            nodes: (0..n).map(|_| None).collect(),
            dirs: (0..n)
                .map(|_| TempDir::new("artemis-cluster-node"))
                .collect(),
            ports,
            peers,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        for i in 0..n {
            cluster.restart(i);
        }
        cluster
    }

    /// The ports chosen for the nodes.
    pub(crate) fn port(&self, i: usize) -> u16 {
        self.ports[i]
    }

    /// Node `i`, which must be running.
    pub(crate) fn node(&self, i: usize) -> &Server {
        self.nodes[i].as_ref().expect("the node runs")
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Kills node `i` with SIGKILL.
    pub(crate) fn kill(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    /// Starts node `i` (again), on its port and its data.
    pub(crate) fn restart(&mut self, i: usize) {
        let addr = format!("127.0.0.1:{}", self.ports[i]);
        let me = url(self.ports[i]);
        let list = self.peers[i].join(",");
        let dir = self.dirs[i].path().to_string_lossy().into_owned();
        let core = (i % 2).to_string();
        let mut args = vec![
            "--addr",
            &addr,
            "--node-url",
            &me,
            "--cluster-nodes",
            &list,
            "--data-dir",
            &dir,
            "--cores",
            &core,
            "--peer-status-interval",
            "200ms",
            "--join-timeout",
            "5s",
        ];
        args.extend(self.extra.iter().map(String::as_str));
        self.nodes[i] = Some(Server::start(&args));
    }

    /// Waits until node `i` reports `up`.
    pub(crate) fn await_up(&self, i: usize) {
        let up = poll(TO_JOIN, || {
            let reply = self.node(i).post("/api/status/node.json", "{}");
            (reply.json()["nodeStatus"]["status"] == "up").then_some(())
        });
        assert!(up.is_some(), "node {i} is not up after {TO_JOIN:?}");
    }

    /// Waits until every running node reports `up`.
    pub(crate) fn await_all_up(&self) {
        for i in (0..self.len()).filter(|&i| self.nodes[i].is_some()) {
            self.await_up(i);
        }
    }
}
