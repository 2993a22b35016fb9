//! Runs the load generator in-process against a small fake registry that checks what it is
//! sent the way the Artemis server would: `Content-Type: application/json`, well-formed
//! bodies, heartbeats only for registered instances, a `Host` that names it. The real server's
//! own integration test does the same against the real thing. Several fakes sharing one
//! registry stand for the nodes of a cluster.

use artemis_loadgen::{
    prefill, run, Config, DiscoveryApi, Error, Kind, Pacing, Popularity, Share, Slo,
};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the fake holds (with its fellow nodes, when it is one of a cluster).
#[derive(Default)]
struct Registry {
    instances: HashSet<String>,
}

/// Requests by path that one fake has answered.
type Requests = Arc<Mutex<HashMap<String, u64>>>;

struct Fake {
    url: String,
    registry: Arc<Mutex<Registry>>,
    requests: Requests,
}

/// How the fake answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// As the registry would.
    Registry,
    /// Every request with a Java `fail` status.
    Failing,
    /// Every request with the one fixed success reply of `artemis-noop` (bench/src/noop.rs),
    /// which holds no instance and checks nothing.
    Noop,
}

impl Fake {
    /// `failing`: answer every request with a Java `fail` status instead.
    fn start(failing: bool) -> Fake {
        Fake::serving(match failing {
            true => Mode::Failing,
            false => Mode::Registry,
        })
    }

    fn serving(mode: Mode) -> Fake {
        Fake::holding(Arc::default(), mode)
    }

    /// A node of a cluster whose nodes all hold `registry`, as replication makes them.
    fn node_of(registry: &Arc<Mutex<Registry>>) -> Fake {
        Fake::holding(registry.clone(), Mode::Registry)
    }

    fn holding(registry: Arc<Mutex<Registry>>, mode: Mode) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let url = format!("http://{host}");
        let requests = Requests::default();
        let (shared, counts) = (registry.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let (registry, requests, host) = (shared.clone(), counts.clone(), host.clone());
                std::thread::spawn(move || {
                    serve(stream.unwrap(), &host, &registry, &requests, mode)
                });
            }
        });
        Fake {
            url,
            registry,
            requests,
        }
    }

    fn requests(&self, path: &str) -> u64 {
        let r = self.requests.lock().unwrap();
        r.get(path).copied().unwrap_or(0)
    }
}

/// `artemis-noop`'s reply to every request: the registry's success reply to a heartbeat.
const NOOP_REPLY: &str = r#"{"failedInstances":null,"responseStatus":{"errorCode":"success","message":"","status":"success"}}"#;

const SUCCESS: &str = r#"{"errorCode":"success","message":"","status":"success"}"#;

/// Answers the requests of one connection to the fake at `host`; a request whose `Host` is
/// another is answered 421 (misdirected).
fn serve(
    stream: TcpStream,
    host: &str,
    registry: &Mutex<Registry>,
    requests: &Mutex<HashMap<String, u64>>,
    mode: Mode,
) {
    stream.set_nodelay(true).unwrap();
    let mut out = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let (mut length, mut json, mut named) = (0, false, false);
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end().to_ascii_lowercase();
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            json |= line == "content-type: application/json";
            named |= line.strip_prefix("host:").is_some_and(|h| h.trim() == host);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let target = request_line.split(' ').nth(1).unwrap().to_owned();
        let path = target.split('?').next().unwrap().to_owned();
        let (status, reply) = if !named {
            (421, String::new())
        } else if mode == Mode::Failing {
            (200, r#"{"responseStatus":{"errorCode":"service-unavailable","message":"down","status":"fail"},"service":null}"#.to_owned())
        } else if mode == Mode::Noop {
            (200, NOOP_REPLY.to_owned())
        } else if request_line.starts_with("POST") && !json {
            (415, String::new())
        } else {
            answer(&path, &target, &body, &mut registry.lock().unwrap())
        };
        *requests.lock().unwrap().entry(path).or_insert(0) += 1;
        write!(
            out,
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{reply}",
            reply.len()
        )
        .unwrap();
    }
}

fn answer(path: &str, target: &str, body: &[u8], registry: &mut Registry) -> (u16, String) {
    let key = |i: &serde_json::Value| {
        assert_eq!(i["regionId"], "default");
        assert!(i["url"].as_str().unwrap().starts_with("http://"));
        format!(
            "{}/{}",
            i["serviceId"].as_str().unwrap(),
            i["instanceId"].as_str().unwrap()
        )
    };
    let body: serde_json::Value = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(body).expect("a JSON body")
    };
    let instances = || {
        body["instances"]
            .as_array()
            .expect("instances")
            .iter()
            .map(key)
    };
    let write_reply = |failed: Option<&str>| match failed {
        None => format!(r#"{{"failedInstances":null,"responseStatus":{SUCCESS}}}"#),
        Some(code) => format!(
            r#"{{"failedInstances":[{{"errorCode":"{code}","errorMessage":"x","instance":{{}}}}],"responseStatus":{{"errorCode":"partial_fail","message":"","status":"partial_fail"}}}}"#
        ),
    };
    let reply = match path {
        "/api/registry/register.json" => {
            registry.instances.extend(instances());
            write_reply(None)
        }
        "/api/registry/unregister.json" => {
            for k in instances() {
                registry.instances.remove(&k);
            }
            write_reply(None)
        }
        "/api/registry/heartbeat.json" => {
            let missing = instances().any(|k| !registry.instances.contains(&k));
            write_reply(missing.then_some("data-not-found"))
        }
        "/api/discovery/service.json" => {
            let service = match body["discoveryConfig"]["serviceId"].as_str() {
                Some(s) => s.to_owned(),
                None => target
                    .split("serviceId=")
                    .nth(1)
                    .unwrap()
                    .split('&')
                    .next()
                    .unwrap()
                    .to_owned(),
            };
            format!(
                r#"{{"responseStatus":{SUCCESS},"service":{{"instances":[],"serviceId":"{service}"}}}}"#
            )
        }
        "/api/discovery/lookup.json" => {
            assert!(!body["discoveryConfigs"].as_array().unwrap().is_empty());
            format!(r#"{{"responseStatus":{SUCCESS},"services":[]}}"#)
        }
        _ => return (404, String::new()),
    };
    (200, reply)
}

fn config(fake: &Fake) -> Config {
    Config {
        target: fake.url.clone(),
        pacing: Pacing::Rate(400.0),
        duration: Duration::from_millis(1000),
        warmup: Duration::from_millis(200),
        connections: 4,
        cores: vec![core_zero()],
        quiet: true,
        ..Config::default()
    }
}

fn core_zero() -> usize {
    artemis_loadgen::cli::available_cores()[0]
}

fn shares(pairs: &[(Kind, u32)]) -> Vec<Share> {
    pairs
        .iter()
        .map(|&(kind, weight)| Share { kind, weight })
        .collect()
}

#[test]
fn discover_after_prefill_counts_every_request() {
    let fake = Fake::start(false);
    let report = run(Config {
        prefill: 250,
        services: 10,
        popularity: Popularity::Zipf { exponent: 1.0 },
        slo: Slo {
            latency: Slo::parse_latency("p99=2s").unwrap(),
            max_error_rate: Some(0.0),
        },
        ..config(&fake)
    })
    .unwrap();
    let d = report.op("discover").unwrap();
    assert_eq!(d.failed, 0);
    // The schedule allows 400 in the measured second; a loaded machine may send fewer.
    assert!((100..=401).contains(&d.ok), "{} discoveries", d.ok);
    // Warm-up requests were sent but are not in the figures.
    assert!(fake.requests("/api/discovery/service.json") > d.ok);
    assert_eq!(fake.requests("/api/registry/register.json"), 3);
    assert_eq!(fake.registry.lock().unwrap().instances.len(), 250);
    assert_eq!(report.prefill.as_ref().unwrap().instances, 250);
    assert_eq!(report.exit_code(), 0);
}

#[test]
fn targets_share_out_the_connections_each_request_naming_its_own() {
    let registry = Arc::default();
    let nodes: Vec<Fake> = (0..3).map(|_| Fake::node_of(&registry)).collect();
    let report = run(Config {
        scenario: shares(&[(Kind::Heartbeat, 1)]),
        prefill: 300,
        batch: 7,
        connections: 6,
        more_targets: vec![nodes[1].url.clone(), nodes[2].url.clone()],
        ..config(&nodes[0])
    })
    .unwrap();
    let h = report.op("heartbeat").unwrap();
    assert_eq!(h.failed, 0, "{:?}", h.failures);
    assert!((100..=401).contains(&h.ok), "{}", h.ok);
    assert_eq!(registry.lock().unwrap().instances.len(), 300);
    // The prefill's three requests and the heartbeats went to every node.
    for node in &nodes {
        assert_eq!(node.requests("/api/registry/register.json"), 1);
        assert!(node.requests("/api/registry/heartbeat.json") > h.ok / 4);
    }
    assert!(report.table().starts_with(&format!(
        "targets {}, {}, {}  scenario heartbeat=1",
        nodes[0].url, nodes[1].url, nodes[2].url
    )));
}

#[test]
fn impossible_slo_exits_1() {
    let fake = Fake::start(false);
    let report = run(Config {
        slo: Slo {
            latency: Slo::parse_latency("p50=1ns").unwrap(),
            max_error_rate: None,
        },
        ..config(&fake)
    })
    .unwrap();
    assert_eq!(report.exit_code(), 1);
    assert!(report
        .verdict_lines()
        .last()
        .unwrap()
        .starts_with("SLO violated: discover p50"));
}

#[test]
fn heartbeats_of_prefilled_instances_succeed() {
    let fake = Fake::start(false);
    let report = run(Config {
        scenario: shares(&[(Kind::Heartbeat, 1)]),
        prefill: 300,
        batch: 7,
        ..config(&fake)
    })
    .unwrap();
    let h = report.op("heartbeat").unwrap();
    assert_eq!(h.failed, 0, "{:?}", h.failures);
    assert!((100..=401).contains(&h.ok), "{}", h.ok);
}

#[test]
fn runs_share_a_population_prefilled_once() {
    let fake = Fake::start(false);
    let population = Config {
        prefill: 100,
        ..config(&fake)
    };
    assert_eq!(prefill(&population).unwrap().unwrap().instances, 100);
    assert_eq!(fake.requests("/api/registry/register.json"), 1);
    // Grow the population by 50, then heartbeat all of it: none of them is unknown.
    let heartbeats = run(Config {
        scenario: shares(&[(Kind::Heartbeat, 1)]),
        prefill: 150,
        prefilled: 100,
        ..config(&fake)
    })
    .unwrap();
    assert_eq!(heartbeats.prefill.as_ref().unwrap().instances, 50);
    let h = heartbeats.op("heartbeat").unwrap();
    assert_eq!(h.failed, 0, "{:?}", h.failures);
    assert_eq!(fake.registry.lock().unwrap().instances.len(), 150);
    // Re-register what is there: no prefill, and no new instance.
    let registers = fake.requests("/api/registry/register.json");
    let again = run(Config {
        scenario: shares(&[(Kind::Reregister, 1)]),
        prefill: 150,
        prefilled: 150,
        ..config(&fake)
    })
    .unwrap();
    assert!(again.prefill.is_none());
    let r = again.op("register").unwrap();
    assert_eq!(r.failed, 0, "{:?}", r.failures);
    assert!(fake.requests("/api/registry/register.json") > registers + r.ok);
    assert_eq!(fake.registry.lock().unwrap().instances.len(), 150);
}

#[test]
fn mix_speaks_every_endpoint() {
    let fake = Fake::start(false);
    let report = run(Config {
        scenario: shares(&[
            (Kind::Heartbeat, 4),
            (Kind::Discover, 3),
            (Kind::Register, 1),
            (Kind::Churn, 2),
        ]),
        prefill: 100,
        instances: 50,
        discovery_api: DiscoveryApi::Get,
        pacing: Pacing::Max,
        connections: 2,
        ..config(&fake)
    })
    .unwrap();
    assert_eq!(report.total.failed, 0, "{:?}", report.total.failures);
    for op in ["heartbeat", "discover", "register", "unregister"] {
        assert!(report.op(op).is_some_and(|o| o.ok > 0), "no {op}");
    }
    let lookups = run(Config {
        discovery_api: DiscoveryApi::Lookup,
        batch: 3,
        ..config(&fake)
    })
    .unwrap();
    assert!(lookups.op("discover").unwrap().ok > 0);
    assert!(fake.requests("/api/discovery/lookup.json") > 0);
}

#[test]
fn failures_are_counted_by_kind_and_never_as_latency() {
    let fake = Fake::start(true);
    let report = run(Config {
        slo: Slo {
            latency: Slo::parse_latency("p99=10s").unwrap(),
            max_error_rate: Some(0.001),
        },
        ..config(&fake)
    })
    .unwrap();
    let d = report.op("discover").unwrap();
    assert_eq!(d.ok, 0);
    assert!(d.latency_us.is_none());
    assert_eq!(d.failures["fail: service-unavailable"], d.failed);
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn unreachable_target_is_an_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = run(Config {
        target: format!("http://127.0.0.1:{port}"),
        cores: vec![core_zero()],
        ..Config::default()
    })
    .unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
}

#[test]
fn the_binary_exits_1_on_violation_and_2_on_bad_arguments() {
    let fake = Fake::start(false);
    let bin = env!("CARGO_BIN_EXE_artemis-loadgen");
    let json = std::env::temp_dir().join(format!("loadgen-{}.json", std::process::id()));
    let hgrm = json.with_extension("hgrm");
    let out = std::process::Command::new(bin)
        .args([
            "--target",
            &fake.url,
            "--scenario",
            "discover",
            "--prefill",
            "1000",
        ])
        .args([
            "--rate",
            "120000/m",
            "--duration",
            "1s",
            "--slo",
            "p99=1ns",
            "--json",
        ])
        .arg(&json)
        .arg("--hgrm")
        .arg(&hgrm)
        .args(["--cores", &core_zero().to_string(), "--quiet"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .starts_with("SLO violated"));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    assert_eq!(report["config"]["prefill"], 1000);
    assert_eq!(report["config"]["pacing"]["rate"], 2000.0);
    assert!(report["ops"][0]["latency_us"]["p99"].as_f64().unwrap() > 0.0);
    // The .hgrm: Java's header, ticks up to 100 %, the trailer counting every successful reply.
    let hgrm = {
        let text = std::fs::read_to_string(&hgrm).unwrap();
        std::fs::remove_file(&hgrm).unwrap();
        text
    };
    assert!(hgrm.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
    let ok = report["total"]["ok"].as_u64().unwrap();
    let last = hgrm.lines().rfind(|l| !l.starts_with('#')).unwrap();
    let last: Vec<&str> = last.split_whitespace().collect();
    assert_eq!(last[1..], ["1.000000000000".to_owned(), ok.to_string()]);
    assert!(
        hgrm.contains(&format!("Total count    = {ok:>12}]")),
        "{hgrm}"
    );
    // Latencies in milliseconds, as the report's microseconds say.
    let max_ms: f64 = last[0].parse().unwrap();
    let max_us = report["total"]["latency_us"]["max"].as_f64().unwrap();
    assert!(
        (max_ms * 1e3 - max_us).abs() <= 1.0,
        "{max_ms} ms, {max_us} µs"
    );
    // Clap's refusals and the run's own are one line in one style, and exit 2.
    for (args, what) in [
        (
            &["--rate", "fast"][..],
            "invalid value 'fast' for '--rate <RATE>'",
        ),
        (&["--scenario", "mix"][..], "--scenario mix needs --mix"),
    ] {
        let bad = std::process::Command::new(bin).args(args).output().unwrap();
        assert_eq!(bad.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with(&format!("artemis-loadgen: {what}")),
            "{stderr}"
        );
        assert!(stderr.ends_with(" (see --help)\n"), "{stderr}");
    }
    let refused = std::process::Command::new(bin)
        .args(["--target", "http://127.0.0.1:1", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn the_per_second_series_adds_up_to_the_report() {
    let fake = Fake::start(false);
    let report = run(Config {
        duration: Duration::from_millis(2500),
        ..config(&fake)
    })
    .unwrap();
    let seconds: Vec<_> = report
        .per_second
        .iter()
        .map(|s| (s.second, s.seconds))
        .collect();
    assert_eq!(seconds, vec![(1, 1.0), (2, 1.0), (3, 0.5)]);
    let sum = |f: fn(&artemis_loadgen::Second) -> u64| report.per_second.iter().map(f).sum::<u64>();
    assert_eq!(sum(|s| s.requests), report.total.ok + report.total.failed);
    assert_eq!(sum(|s| s.errors), report.total.failed);
    assert!(report.per_second.iter().all(|s| s.p50_us <= s.p99_us));
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["per_second"][0]["p99_us"].as_f64().unwrap() > 0.0);
    assert!(json["per_second"][2]["requests"].as_u64().unwrap() > 0);
}

#[test]
fn the_binary_prints_each_line_once() {
    let fake = Fake::start(false);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_artemis-loadgen"))
        .args(["--target", &fake.url, "--prefill", "100", "--rate", "200"])
        .args(["--duration", "2s", "--warmup", "1s", "--connections", "2"])
        .args(["--cores", &core_zero().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let progress: Vec<_> = stderr
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.contains('/') && w.ends_with('s'))
        })
        .collect();
    assert_eq!(progress, ["1s/1s", "1s/2s", "2s/2s"], "{stderr}");
    assert!(
        stderr.lines().next().unwrap().starts_with("warm-up") || stderr.contains("registering")
    );
    let mut seen = HashSet::new();
    for line in stdout.lines().chain(stderr.lines()) {
        assert!(
            line.trim().is_empty() || seen.insert(line),
            "printed twice: {line:?}\n{stdout}\n{stderr}"
        );
    }
    assert_eq!(
        stdout.matches("prefilled 100 instances").count(),
        1,
        "{stdout}"
    );
    assert!(!stderr.contains("prefilled"), "{stderr}");
}

#[test]
fn prefilled_alone_heartbeats_a_population_registered_earlier_without_registering() {
    // Against the no-op, which needs no prefill: nothing is registered, every heartbeat passes.
    let noop = Fake::serving(Mode::Noop);
    let report = run(Config {
        scenario: shares(&[(Kind::Heartbeat, 1)]),
        prefilled: 2000,
        batch: 10,
        ..config(&noop)
    })
    .unwrap();
    assert!(report.prefill.is_none());
    assert_eq!(noop.requests("/api/registry/register.json"), 0);
    let h = report.op("heartbeat").unwrap();
    assert_eq!(h.failed, 0, "{:?}", h.failures);
    assert!((100..=401).contains(&h.ok), "{}", h.ok);
    assert_eq!(report.exit_code(), 0);
    // Against a registry, the population a first run registered: a second heartbeats all of
    // it (none unknown) and registers nothing more.
    let fake = Fake::start(false);
    prefill(&Config {
        prefill: 300,
        ..config(&fake)
    })
    .unwrap();
    let registers = fake.requests("/api/registry/register.json");
    let report = run(Config {
        scenario: shares(&[(Kind::Heartbeat, 1)]),
        prefilled: 300,
        batch: 7,
        ..config(&fake)
    })
    .unwrap();
    let h = report.op("heartbeat").unwrap();
    assert_eq!(h.failed, 0, "{:?}", h.failures);
    assert!(h.ok > 0);
    assert_eq!(fake.requests("/api/registry/register.json"), registers);
}

#[test]
fn busy_polling_workers_keep_the_schedule_and_say_so() {
    let fake = Fake::start(false);
    let report = run(Config {
        scenario: shares(&[(Kind::Heartbeat, 1)]),
        prefill: 300,
        busy_poll: true,
        cores: vec![core_zero()],
        ..config(&fake)
    })
    .unwrap();
    let h = report.op("heartbeat").unwrap();
    assert_eq!(h.failed, 0, "{:?}", h.failures);
    assert!((100..=401).contains(&h.ok), "{}", h.ok);
    assert!(report
        .table()
        .contains("the workers polled without sleeping (--busy-poll)"));
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert_eq!(json["config"]["busy_poll"], true);
}
