//! The deployment kit (`deploy/`) against the real server: every metric the Grafana dashboard
//! and the Prometheus alert rules query is in a node's `/metrics` (a node of a two-node cluster,
//! so that the replication and anti-entropy families have series), every JSON file parses, the
//! seccomp profile allows io_uring in a form every runtime reads, and the systemd unit pins the
//! cores it serves on.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::cluster::TestCluster;
use serde_json::Value;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(path: &str) -> String {
    let path = deploy().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The metric names a PromQL expression (or any text) mentions: the words starting `artemis_` or
/// `process_`, outside quoted label values.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut word = String::new();
    let mut quote = None;
    for c in text.chars().chain([' ']) {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
            continue;
        }
        if word.starts_with("artemis_") || word.starts_with("process_") {
            names.insert(std::mem::take(&mut word));
        }
        word.clear();
        if c == '"' || c == '\'' || c == '`' {
            quote = Some(c);
        }
    }
    names
}

/// Every query string of the dashboard: panels' `expr`, and the variables' queries.
fn dashboard_queries(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "query" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => dashboard_queries(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| dashboard_queries(v, out)),
        _ => {}
    }
}

/// The `expr:` of every rule in a rules file: the rest of its line, or the block below it (a
/// YAML block scalar, `>-` or `|`, more indented than the key).
fn rule_exprs(rules: &str) -> Vec<String> {
    let lines: Vec<&str> = rules.lines().collect();
    let mut exprs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(value) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if !value.starts_with(['>', '|']) {
            exprs.push(value.to_owned());
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let block: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
            .map(|l| l.trim())
            .collect();
        exprs.push(block.join(" "));
    }
    exprs
}

/// The names `/metrics` exposes: every sample's (histograms' `_bucket`, `_sum` and `_count`
/// included) and every family's `# TYPE` name (a histogram's base name).
fn exposed_names(metrics: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            names.extend(rest.split_whitespace().next().map(str::to_owned));
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

#[test]
fn every_metric_the_dashboard_and_the_alerts_query_is_exposed() {
    let cluster = TestCluster::start(2, &[]);
    cluster.await_all_up();
    let reply = cluster.node(0).get("/metrics");
    assert_eq!(reply.status, 200);
    let exposed = exposed_names(reply.text());
    assert!(
        exposed.contains("artemis_peer_up") && exposed.contains("artemis_anti_entropy_last_result"),
        "a node with a peer shows the cluster families:\n{}",
        reply.text()
    );

    let dashboard: Value = serde_json::from_str(&read("grafana/artemis.json")).unwrap();
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, &mut queries);
    let from_dashboard: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(q)).collect();
    // Every area the dashboard covers is queried.
    for family in [
        "artemis_requests_total",
        "artemis_request_duration_seconds_bucket",
        "artemis_shard_instances",
        "artemis_connections_open",
        "artemis_self_preservation_safe",
        "artemis_rate_limited_total",
        "artemis_push_messages_total",
        "artemis_replication_lag_seconds",
        "artemis_replication_dropped_total",
        "artemis_peer_up",
        "artemis_anti_entropy_last_result",
        "artemis_build_info",
        "process_resident_memory_bytes",
    ] {
        assert!(
            from_dashboard.contains(family),
            "the dashboard shows {family}"
        );
    }

    let alerts = read("prometheus/alerts.yml");
    let exprs = rule_exprs(&alerts);
    let rule_count = alerts
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    assert!(rule_count >= 5, "alerts.yml has its rules");
    assert_eq!(exprs.len(), rule_count, "every rule has an expr: {exprs:?}");
    let from_alerts: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    assert!(from_alerts.contains("artemis_replication_lag_seconds"));
    assert!(from_alerts.contains("process_open_fds"));

    let missing: Vec<String> = from_dashboard
        .iter()
        .map(|n| ("grafana/artemis.json", n))
        .chain(from_alerts.iter().map(|n| ("prometheus/alerts.yml", n)))
        .filter(|(_, name)| !exposed.contains(name.as_str()))
        .map(|(file, name)| format!("{name} ({file})"))
        .collect();
    assert!(
        missing.is_empty(),
        "queried but not in /metrics: {missing:?}\nexposed: {exposed:?}"
    );
}

#[test]
fn the_tokenizer_finds_metric_names_outside_label_values() {
    let names = metric_names(
        r#"sum by (op) (rate(artemis_rate_limited_total{limiter="artemis.service.registry",x="artemis_not_a_metric"}[5m])) / on (op) histogram_quantile(0.99, process_open_fds)"#,
    );
    let expected: BTreeSet<String> = ["artemis_rate_limited_total", "process_open_fds"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(names, expected);
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

#[test]
fn every_json_file_of_the_kit_parses() {
    let mut files = Vec::new();
    json_files(&deploy(), &mut files);
    assert!(
        files.len() >= 2,
        "the dashboard and the seccomp profile: {files:?}"
    );
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        if let Err(e) = serde_json::from_str::<Value>(&text) {
            panic!("{}: {e}", file.display());
        }
    }
}

#[test]
fn the_dashboard_takes_its_prometheus_as_an_input() {
    let dashboard: Value = serde_json::from_str(&read("grafana/artemis.json")).unwrap();
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(dashboard["__inputs"][0]["pluginId"], "prometheus");
    let panels = dashboard["panels"].as_array().unwrap();
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(
            panel["datasource"]["uid"], "${DS_PROMETHEUS}",
            "panel {}",
            panel["title"]
        );
        for target in panel["targets"].as_array().unwrap() {
            assert_eq!(target["datasource"]["uid"], "${DS_PROMETHEUS}");
        }
    }
}

#[test]
fn the_seccomp_profile_allows_io_uring_in_plain_oci_form() {
    let profile: Value = serde_json::from_str(&read("seccomp/artemis-io-uring.json")).unwrap();
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
    assert!(profile["architectures"]
        .as_array()
        .unwrap()
        .contains(&Value::from("SCMP_ARCH_X86_64")));
    let rules = profile["syscalls"].as_array().unwrap();
    let allowed: BTreeSet<&str> = rules
        .iter()
        .filter(|r| r["action"] == "SCMP_ACT_ALLOW" && r.get("args").is_none())
        .flat_map(|r| r["names"].as_array().unwrap())
        .map(|n| n.as_str().unwrap())
        .collect();
    for call in [
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        // What the server itself needs besides: pinning, sockets, its threads.
        "sched_setaffinity",
        "socket",
        "accept4",
        "eventfd2",
        "mmap",
        "futex",
    ] {
        assert!(allowed.contains(call), "{call} is allowed");
    }
    // containerd reads a Localhost profile as the OCI spec's LinuxSeccomp and would ignore
    // Docker's conditional fields: none may be left.
    for key in ["archMap", "includes", "excludes", "comment"] {
        assert!(
            !serde_json::to_string(&profile)
                .unwrap()
                .contains(&format!("\"{key}\"")),
            "no `{key}` in the profile"
        );
    }
    for rule in rules {
        assert!(!rule["names"].as_array().unwrap().is_empty());
    }
}

/// `KEY=value` of a unit file's line, the first one with that key.
fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("the unit sets {key}="))
}

#[test]
fn the_systemd_unit_pins_the_cores_it_serves_on() {
    let unit = read("systemd/artemis.service");
    let affinity = unit_value(&unit, "CPUAffinity");
    let exec = unit_value(&unit, "ExecStart");
    let cores = exec
        .split_whitespace()
        .skip_while(|w| *w != "--cores")
        .nth(1)
        .expect("ExecStart names --cores");
    assert_eq!(
        affinity, cores,
        "CPUAffinity= and --cores name the same cores"
    );
    assert!(exec.starts_with("/usr/local/bin/artemis server "));
    assert!(exec.contains("--data-dir /var/lib/artemis"));
    assert_eq!(unit_value(&unit, "StateDirectory"), "artemis");
    assert_eq!(unit_value(&unit, "LimitMEMLOCK"), "infinity");
    assert_eq!(
        unit_value(&unit, "EnvironmentFile"),
        "-/etc/artemis/artemis.env"
    );
    // Every variable of the example environment file is one the server reads (or the log level).
    let help = common::artemis(&["server", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for line in read("systemd/artemis.env").lines() {
        let line = line.trim_start_matches('#');
        let Some((name, _)) = line.split_once('=') else {
            continue;
        };
        let assignment = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !assignment {
            continue;
        }
        if name.starts_with("ARTEMIS_") {
            assert!(
                help.contains(&format!("[env: {name}="))
                    || help.contains(&format!("[env: {name}]")),
                "{name} is a variable of `artemis server`"
            );
        } else {
            assert_eq!(name, "RUST_LOG");
        }
    }
}
