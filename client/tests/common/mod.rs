//! The SDK's test harness: the real `artemis` server binary on loopback, started and stopped by
//! the workspace's `artemis-testkit` as the server's own tests start it: region `SHA`, zone
//! `SHAJQ`, a fresh `--data-dir`, killed on drop. The binary is the workspace's
//! `target/<profile>/artemis` (built by `cargo build -p artemis`, or by `cargo test
//! --workspace`), or `$ARTEMIS_BIN`.

#![allow(dead_code)] // each test binary uses its own part of the harness

use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use artemis_client::{ClientConfig, Instance, ServiceChange};
#[allow(unused_imports)] // each test binary uses its own part
pub(crate) use artemis_testkit::{free_port, poll, Proxy, SHORT_LEASES};
use artemis_testkit::{ServerProcess, TempDir};
use futures_util::{Stream, StreamExt};
use serde_json::Value;

pub(crate) const REGION: &str = "SHA";
pub(crate) const ZONE: &str = "SHAJQ";

/// A running `artemis server`, killed on drop.
pub(crate) struct Server {
    process: ServerProcess,
    pub(crate) port: u16,
    _dir: TempDir,
}

/// The server binary of this build (`target/<profile>/artemis`, beside `deps/` where the test
/// runs from).
fn artemis_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ARTEMIS_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test knows its path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps");
    let binary = profile_dir.join("artemis");
    assert!(
        binary.exists(),
        "{} is missing: build the server first (`cargo build -p artemis`) or set ARTEMIS_BIN",
        binary.display()
    );
    binary
}

impl Server {
    /// `artemis server` on a free port, core 0, with `extra` flags.
    pub(crate) fn start(extra: &[&str]) -> Server {
        Server::start_on(free_port(), extra)
    }

    /// `artemis server` on `port` (a restart reuses its port), with `extra` flags; `--cores`
    /// and `--data-dir` in `extra` replace the defaults.
    pub(crate) fn start_on(port: u16, extra: &[&str]) -> Server {
        let dir = TempDir::new("artemis-client-test");
        let addr = format!("127.0.0.1:{port}");
        let data_dir = dir.path().to_string_lossy().into_owned();
        let mut args = vec![
            "server", "--addr", &addr, "--region", REGION, "--zone", ZONE,
        ];
        if !extra.contains(&"--cores") {
            args.extend(["--cores", "0"]);
        }
        if !extra.contains(&"--data-dir") {
            args.extend(["--data-dir", &data_dir]);
        }
        args.extend_from_slice(extra);
        let process = ServerProcess::spawn(artemis_testkit::command(artemis_binary(), &args));
        Server {
            process,
            port,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT`, as a client's seed.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn log(&self) -> String {
        self.process.log()
    }

    /// `POST path` with a JSON body; the reply's JSON.
    pub(crate) fn post(&self, path: &str, body: &str) -> Value {
        let reply = exchange(self.port, "POST", path, body);
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{path}: {e}: {reply}"))
    }

    /// `GET path`; the reply's body.
    pub(crate) fn get(&self, path: &str) -> String {
        exchange(self.port, "GET", path, "")
    }

    /// The instance ids of `service_id` as `service.json` answers now.
    pub(crate) fn instance_ids(&self, service_id: &str) -> Vec<String> {
        let reply = self.post(
            "/api/discovery/service.json",
            &format!(
                r#"{{"discoveryConfig":{{"serviceId":"{service_id}"}},"regionId":"{REGION}","zoneId":"{ZONE}"}}"#
            ),
        );
        let mut ids: Vec<String> = reply["service"]["instances"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|i| i["instanceId"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// Registers `instance` directly (not through the SDK).
    pub(crate) fn register(&self, instance: &Instance) {
        let body = format!(
            r#"{{"instances":[{}]}}"#,
            serde_json::to_string(instance).unwrap()
        );
        let reply = self.post("/api/registry/register.json", &body);
        assert_eq!(reply["responseStatus"]["status"], "success", "{reply}");
    }

    /// Unregisters `instance` directly (not through the SDK).
    pub(crate) fn unregister(&self, instance: &Instance) {
        let body = format!(
            r#"{{"instances":[{}]}}"#,
            serde_json::to_string(instance).unwrap()
        );
        let reply = self.post("/api/registry/unregister.json", &body);
        assert_eq!(reply["responseStatus"]["status"], "success", "{reply}");
    }

    /// The sum of a metric's samples (`name` or `name{labels}` exactly), 0 when absent.
    pub(crate) fn metric(&self, series: &str) -> f64 {
        self.get("/metrics")
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.rsplit_once(' '))
            .filter(|(name, _)| {
                *name == series
                    || (!series.contains('{')
                        && name
                            .strip_prefix(series)
                            .is_some_and(|l| l.starts_with('{')))
            })
            .filter_map(|(_, value)| value.parse::<f64>().ok())
            .sum()
    }

    /// Open WebSocket sessions of `endpoint` (`registry`, `discovery`).
    pub(crate) fn sessions(&self, endpoint: &str) -> f64 {
        self.metric(&format!(
            "artemis_websocket_sessions{{endpoint=\"{endpoint}\"}}"
        ))
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub(crate) fn kill(mut self) {
        self.process.kill();
    }
}

/// One request on a connection of its own (`Connection: close`); the reply's body.
fn exchange(port: u16, method: &str, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the server listens");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("a reply");
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let (head, body) = reply.split_once("\r\n\r\n").expect("an HTTP reply");
    assert!(head.starts_with("HTTP/1.1 200"), "{method} {path}: {head}");
    body.to_string()
}

/// Two nodes that list each other, each on its own core and data, started and `up`.
pub(crate) struct Cluster {
    pub(crate) nodes: Vec<Option<Server>>,
}

impl Cluster {
    pub(crate) fn start(extra: &[&str]) -> Cluster {
        let ports = [free_port(), free_port()];
        let urls: Vec<String> = ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}/"))
            .collect();
        let list = urls.join(",");
        let nodes: Vec<Option<Server>> = (0..2)
            .map(|i| {
                let core = i.to_string();
                let mut args = vec![
                    "--node-url",
                    &urls[i],
                    "--cluster-nodes",
                    &list,
                    "--cores",
                    &core,
                    "--peer-status-interval",
                    "200ms",
                    "--join-timeout",
                    "5s",
                ];
                args.extend_from_slice(extra);
                Some(Server::start_on(ports[i], &args))
            })
            .collect();
        let cluster = Cluster { nodes };
        // Up, and each listing both as up: what a client learns from its seed is then the whole
        // cluster (a node lists a peer only once its status poll has seen it up).
        let zone = format!(r#"{{"regionId":"{REGION}","zoneId":"{ZONE}"}}"#);
        for node in cluster.nodes.iter().flatten() {
            let up = poll(Duration::from_secs(30), || {
                let status = node.post("/api/status/node.json", "{}");
                let listed = node.post("/api/cluster/up-registry-nodes.json", &zone);
                let both = listed["nodes"].as_array().is_some_and(|n| n.len() == 2);
                (status["nodeStatus"]["status"] == "up" && both).then_some(())
            });
            assert!(up.is_some(), "node {} is not up with its peer", node.url());
        }
        cluster
    }

    pub(crate) fn node(&self, i: usize) -> &Server {
        self.nodes[i].as_ref().expect("the node runs")
    }
}

/// A client configuration for `seeds` in the test servers' region and zone, heartbeating every
/// 500 ms (leases of 2 s).
pub(crate) fn config(seeds: &[String]) -> ClientConfig {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut config = ClientConfig::new(seeds.iter().cloned());
    config.region_id = REGION.to_string();
    config.zone_id = ZONE.to_string();
    config.heartbeat_interval = Duration::from_millis(500);
    config.ping_interval = Duration::from_millis(500);
    config.request_timeout = Duration::from_secs(2);
    config.connect_timeout = Duration::from_secs(1);
    config.node_down_time = Duration::from_secs(2);
    config
}

/// An instance of `service_id` in the test region and zone.
pub(crate) fn instance(service_id: &str, instance_id: &str) -> Instance {
    let mut instance = Instance::new(
        service_id,
        instance_id,
        format!("http://{instance_id}.test:8080/"),
    );
    instance.region_id = Some(REGION.to_string());
    instance.zone_id = Some(ZONE.to_string());
    instance.ip = Some("10.0.0.1".to_string());
    instance.port = 8080;
    instance
}

/// Awaits `probe` every 100 ms until it is true, for at most `within`.
pub(crate) async fn eventually<F, Fut>(within: Duration, mut probe: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if probe().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads `changes` until one satisfies `wanted`, for at most `within`; the changes read.
pub(crate) async fn wait_for(
    changes: &mut (impl Stream<Item = ServiceChange> + Unpin),
    within: Duration,
    mut wanted: impl FnMut(&ServiceChange) -> bool,
) -> Result<Vec<ServiceChange>, Vec<String>> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, changes.next()).await {
            Ok(Some(change)) => {
                let done = wanted(&change);
                seen.push(change);
                if done {
                    return Ok(seen);
                }
            }
            Ok(None) | Err(_) => return Err(seen.iter().map(summary).collect()),
        }
    }
}

/// A change in a few words, for a failing test's message.
pub(crate) fn summary(change: &ServiceChange) -> String {
    match change {
        ServiceChange::Updated { instance, .. } => format!("updated {}", instance.instance_id),
        ServiceChange::Removed { instance, .. } => format!("removed {}", instance.instance_id),
        ServiceChange::Reloaded { service } => {
            format!("reloaded with {} instance(s)", service.instances().len())
        }
        ServiceChange::Lagged { missed } => format!("lagged {missed}"),
        _ => "another change".to_string(),
    }
}

/// Whether `change` tells of instance `instance_id` as updated (`true`) or removed (`false`).
pub(crate) fn tells(change: &ServiceChange, instance_id: &str, updated: bool) -> bool {
    match change {
        ServiceChange::Updated { instance, .. } => updated && instance.instance_id == instance_id,
        ServiceChange::Removed { instance, .. } => !updated && instance.instance_id == instance_id,
        _ => false,
    }
}
