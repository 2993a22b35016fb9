//! The management commands of the `artemis` binary: `services`, `service`, `pull-out`,
//! `pull-in`, `group`, `route-rule`, `canary`, `logs` and `cluster`, each one call to a node's
//! management or status endpoints (docs/management.md, docs/cluster.md).
//!
//! Human tables by default, the server's JSON reply as it is with `--json`. Exit codes: 0 on
//! success, 1 when the server refused (its error code and message on stderr), 2 for usage errors
//! and a server that cannot be reached.

mod http;
mod table;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};

use http::{CallError, Endpoint};
use table::Table;

/// The management commands, flattened beside `server`.
#[derive(Subcommand, Debug)]
pub(crate) enum Manage {
    /// List every service's instances as the management view shows them (up or down).
    Services(Global),
    /// Show one service's instances (up or down) and its groups.
    Service {
        /// The service id.
        id: String,
        #[command(flatten)]
        global: Global,
    },
    /// Pull an instance, a server (every instance on an IP) or a zone out of discovery.
    #[command(subcommand_required = true)]
    PullOut {
        #[command(subcommand)]
        target: Target,
        #[command(flatten)]
        global: Global,
    },
    /// Put back what `pull-out` took out.
    #[command(subcommand_required = true)]
    PullIn {
        #[command(subcommand)]
        target: Target,
        #[command(flatten)]
        global: Global,
    },
    /// Service groups.
    Group {
        #[command(subcommand)]
        action: GroupAction,
        #[command(flatten)]
        global: Global,
    },
    /// Route rules.
    RouteRule {
        #[command(subcommand)]
        action: RouteRuleAction,
        #[command(flatten)]
        global: Global,
    },
    /// Canary routing.
    Canary {
        #[command(subcommand)]
        action: CanaryAction,
        #[command(flatten)]
        global: Global,
    },
    /// Operation logs, newest first (at most 1000 rows); `--operator` filters them by who wrote.
    Logs {
        /// Which log.
        #[arg(value_enum)]
        kind: LogKind,
        #[command(flatten)]
        filters: LogFilters,
        #[command(flatten)]
        global: Global,
    },
    /// The cluster's nodes (status/cluster.json): URL, region, zone, status.
    Cluster(Global),
}

/// Flags every management command takes, before or after its subcommand.
#[derive(Args, Debug, Clone)]
pub(crate) struct Global {
    /// The node to ask.
    #[arg(
        long,
        global = true,
        env = "ARTEMIS_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// Who makes a write (the operation logs name them); default: the login name ($USER, $LOGNAME).
    #[arg(long, global = true)]
    operator: Option<String>,
    /// The management token, sent as `Authorization: Bearer`.
    #[arg(
        long,
        global = true,
        env = "ARTEMIS_MANAGEMENT_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// The region of instance, server and zone operations; default: the node's own region (from its status/node.json).
    #[arg(long, global = true)]
    region: Option<String>,
    /// Print the server's JSON reply as it is.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Target {
    /// One instance of a service.
    Instance {
        #[arg(long)]
        service: String,
        #[arg(long)]
        instance: String,
    },
    /// Every instance on a server.
    Server {
        #[arg(long)]
        ip: String,
    },
    /// A service's instances in one zone.
    Zone {
        #[arg(long)]
        service: String,
        #[arg(long)]
        zone: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum GroupAction {
    /// Every group.
    List,
    /// One group: its fields, instances, tags and operations.
    Show {
        /// The group id.
        id: i64,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum RouteRuleAction {
    /// Every route rule.
    List,
}

#[derive(Subcommand, Debug)]
pub(crate) enum CanaryAction {
    /// Set the IPs of an app's instances that take a service's canary traffic (exactly these).
    Set {
        #[arg(long)]
        service: String,
        #[arg(long)]
        app: String,
        /// Comma-separated IPs; empty clears them.
        #[arg(long, value_delimiter = ',', num_args = 0..)]
        ips: Vec<String>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum LogKind {
    Instance,
    Server,
    Group,
    Zone,
    RouteRule,
}

#[derive(Args, Debug)]
pub(crate) struct LogFilters {
    /// Only this service (instance, zone, route-rule logs).
    #[arg(long)]
    service: Option<String>,
    /// Only this instance (instance logs).
    #[arg(long)]
    instance: Option<String>,
    /// Only this server IP (server logs).
    #[arg(long)]
    ip: Option<String>,
    /// Only this zone (zone logs).
    #[arg(long)]
    zone: Option<String>,
    /// Only this group (group logs).
    #[arg(long)]
    group: Option<i64>,
}

/// Why a command failed, and so its exit code.
pub(crate) enum Failure {
    /// Exit 2: bad arguments, or no answer from the server.
    Usage(String),
    /// Exit 1: the server answered with a failure.
    Refused(String),
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Failure {
        match e {
            CallError::Unreachable(why) => Failure::Usage(format!("cannot reach {why}")),
            CallError::Garbled(why) => Failure::Refused(format!("unexpected answer from {why}")),
        }
    }
}

/// Runs one management command, printing what it shows on stdout.
pub(crate) fn run(command: Manage) -> Result<(), Failure> {
    match command {
        Manage::Services(g) => {
            let reply = Session::new(&g)?.call("/api/management/services.json", json!({}))?;
            show(&g, &reply, |r| {
                let mut t = instances_table();
                for service in array(&r["services"]) {
                    add_instances(&mut t, service);
                }
                t.print();
            })
        }
        Manage::Service { id, global: g } => {
            let body = json!({ "serviceId": id });
            let reply = Session::new(&g)?.call("/api/management/service.json", body)?;
            show(&g, &reply, |r| {
                let mut t = instances_table();
                add_instances(&mut t, &r["service"]);
                t.print();
                let groups = array(&r["groups"]);
                if !groups.is_empty() {
                    println!();
                    let mut t = Table::new(&["GROUP", "INSTANCES"]);
                    for group in groups {
                        let ids: Vec<String> =
                            array(&group["instanceIds"]).into_iter().map(text).collect();
                        t.row(vec![text(&group["groupKey"]), ids.join(",")]);
                    }
                    t.print();
                }
            })
        }
        Manage::PullOut { target, global } => operate(&global, target, false),
        Manage::PullIn { target, global } => operate(&global, target, true),
        Manage::Group { action, global: g } => group(&g, action),
        Manage::RouteRule {
            action: RouteRuleAction::List,
            global: g,
        } => {
            let path = "/api/management/group/get-all-route-rules.json";
            let reply = Session::new(&g)?.call(path, json!({}))?;
            show(&g, &reply, |r| {
                let mut t = Table::new(&["ID", "SERVICE", "NAME", "STATUS", "STRATEGY"]);
                for rule in array(&r["routeRules"]) {
                    t.row(fields(
                        rule,
                        &["routeRuleId", "serviceId", "name", "status", "strategy"],
                    ));
                }
                t.print();
            })
        }
        Manage::Canary {
            action: CanaryAction::Set { service, app, ips },
            global: g,
        } => {
            let session = Session::new(&g)?;
            let mut body = json!({ "serviceId": service, "appId": app, "canaryIps": ips });
            session.sign(&mut body)?;
            let reply = session.call("/api/management/canary/update-canary-ips.json", body)?;
            show(&g, &reply, |_| {
                println!("canary ips of {app} for {service}: {}", ips.join(","))
            })
        }
        Manage::Logs {
            kind,
            filters,
            global: g,
        } => logs(&g, kind, filters),
        Manage::Cluster(g) => {
            let reply = Session::new(&g)?.call("/api/status/cluster.json", json!({}))?;
            show(&g, &reply, |r| {
                let mut t =
                    Table::new(&["URL", "REGION", "ZONE", "STATUS", "REGISTRY", "DISCOVERY"]);
                for node in array(&r["nodesStatus"]) {
                    let zone = &node["node"]["zone"];
                    t.row(vec![
                        text(&node["node"]["url"]),
                        text(&zone["regionId"]),
                        text(&zone["zoneId"]),
                        text(&node["status"]),
                        text(&node["canServiceRegistry"]),
                        text(&node["canServiceDiscovery"]),
                    ]);
                }
                t.print();
            })
        }
    }
}

/// The server, the token and the operator of one command.
struct Session<'a> {
    endpoint: Endpoint,
    global: &'a Global,
}

impl<'a> Session<'a> {
    fn new(global: &'a Global) -> Result<Session<'a>, Failure> {
        let endpoint = Endpoint::parse(&global.server).map_err(Failure::Usage)?;
        Ok(Session { endpoint, global })
    }

    /// POSTs `body` to `path`; the reply when the server answered `success`.
    fn call(&self, path: &str, body: Value) -> Result<Value, Failure> {
        let token = self.global.token.as_deref().filter(|t| !t.is_empty());
        let reply = http::post(&self.endpoint, path, &body.to_string(), token)?;
        let url = self.endpoint.url(path);
        let parsed: Result<Value, _> = serde_json::from_slice(&reply.body);
        let Ok(value) = parsed else {
            let text = String::from_utf8_lossy(&reply.body);
            let text = text
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect::<String>();
            return Err(Failure::Refused(format!(
                "{url} answered HTTP {} without JSON: {text}",
                reply.status
            )));
        };
        let status = &value["responseStatus"];
        if status["status"].as_str() == Some("success") && reply.status == 200 {
            return Ok(value);
        }
        if self.global.json {
            println!("{value}");
        }
        Err(Failure::Refused(format!(
            "refused ({}): {}",
            status["errorCode"].as_str().unwrap_or("HTTP error"),
            status["message"]
                .as_str()
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| format!("HTTP {}", reply.status))
        )))
    }

    /// Adds the operator to a write.
    fn sign(&self, body: &mut Value) -> Result<(), Failure> {
        let operator = self
            .global
            .operator
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("LOGNAME").ok())
            .or_else(login_name)
            .filter(|o| !o.trim().is_empty())
            .ok_or_else(|| Failure::Usage("no operator: pass --operator NAME".into()))?;
        body["operatorId"] = Value::String(operator);
        // Java's checked writes (canary, groups) also want an operation and a token in the body;
        // the token recorded in the logs is the management token when one is given.
        if body.get("operation").is_none() {
            body["operation"] = Value::String("update".into());
        }
        let token = self.global.token.as_deref().filter(|t| !t.is_empty());
        body["token"] = Value::String(token.unwrap_or("artemis-cli").to_string());
        Ok(())
    }

    /// `--region`, or the node's own region.
    fn region(&self) -> Result<String, Failure> {
        if let Some(region) = &self.global.region {
            return Ok(region.clone());
        }
        let node = self.call("/api/status/node.json", json!({}))?;
        node["nodeStatus"]["node"]["zone"]["regionId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                Failure::Refused("the node's status names no region; pass --region".into())
            })
    }
}

/// The name of the effective user, from the password database.
fn login_name() -> Option<String> {
    // SAFETY: getpwuid returns null or a pointer to a static entry, read at once here before any
    // other call could overwrite it; pw_name is a NUL-terminated string in that entry.
    unsafe {
        let entry = libc::getpwuid(libc::geteuid());
        if entry.is_null() || (*entry).pw_name.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr((*entry).pw_name);
        Some(name.to_string_lossy().into_owned())
    }
}

/// With `--json` the reply as it is; otherwise what `human` prints.
fn show(global: &Global, reply: &Value, human: impl FnOnce(&Value)) -> Result<(), Failure> {
    match global.json {
        true => println!("{reply}"),
        false => human(reply),
    }
    Ok(())
}

/// A pull-out (`complete` false) or pull-in (`complete` true).
fn operate(global: &Global, target: Target, complete: bool) -> Result<(), Failure> {
    let session = Session::new(global)?;
    let region = session.region()?;
    let verb = if complete { "pulled in" } else { "pulled out" };
    let (path, mut body, what) = match target {
        Target::Instance { service, instance } => (
            "/api/management/operate-instance.json",
            json!({
                "instanceKey": { "regionId": region, "serviceId": service, "instanceId": instance },
                "operation": "pullout",
                "operationComplete": complete,
            }),
            format!("instance {instance} of {service}"),
        ),
        Target::Server { ip } => (
            "/api/management/operate-server.json",
            json!({
                "serverKey": { "regionId": region, "serverId": ip },
                "operation": "pullout",
                "operationComplete": complete,
            }),
            format!("server {ip}"),
        ),
        Target::Zone { service, zone } => (
            "/api/management/zone/operate-zone-operations.json",
            json!({
                "zoneOperationsList": [{
                    "operations": ["pullout"],
                    "zoneKey": { "regionId": region, "serviceId": service, "zoneId": zone },
                }],
                "operationComplete": complete,
            }),
            format!("zone {zone} of {service}"),
        ),
    };
    session.sign(&mut body)?;
    let reply = session.call(path, body)?;
    show(global, &reply, |_| {
        println!("{verb}: {what} (region {region})")
    })
}

fn group(g: &Global, action: GroupAction) -> Result<(), Failure> {
    let session = Session::new(g)?;
    let reply = session.call("/api/management/group/get-all-groups.json", json!({}))?;
    const COLUMNS: [&str; 7] = [
        "groupId",
        "serviceId",
        "regionId",
        "zoneId",
        "name",
        "appId",
        "status",
    ];
    match action {
        GroupAction::List => show(g, &reply, |r| {
            let mut t = Table::new(&["ID", "SERVICE", "REGION", "ZONE", "NAME", "APP", "STATUS"]);
            for group in array(&r["groups"]) {
                t.row(fields(group, &COLUMNS));
            }
            t.print();
        }),
        GroupAction::Show { id } => {
            let found = array(&reply["groups"])
                .into_iter()
                .find(|group| group["groupId"].as_i64() == Some(id))
                .cloned()
                .ok_or_else(|| Failure::Refused(format!("no group {id}")))?;
            let ask = |path: &str| session.call(path, json!({ "groupId": id }));
            let instances = ask("/api/management/group/get-group-instances.json")?;
            let tags = ask("/api/management/group/get-group-tags.json")?;
            let operations = ask("/api/management/group/get-group-operations.json")?;
            let all = json!({
                "group": found,
                "groupInstances": instances["groupInstances"],
                "groupTags": tags["groupTags"],
                "groupOperations": operations["groupOperations"],
            });
            show(g, &all, |all| {
                for (name, key) in COLUMNS.iter().zip(COLUMNS) {
                    println!("{name}: {}", text(&all["group"][key]));
                }
                let ids: Vec<String> = array(&all["groupInstances"])
                    .iter()
                    .map(|i| text(&i["instanceId"]))
                    .collect();
                println!("instances: {}", ids.join(","));
                println!("tags: {}", all["groupTags"]["tags"]);
                println!("operations: {}", all["groupOperations"]["operations"]);
            })
        }
    }
}

fn logs(g: &Global, kind: LogKind, f: LogFilters) -> Result<(), Failure> {
    let path = match kind {
        LogKind::Instance => "instance-operation-logs",
        LogKind::Server => "server-operation-logs",
        LogKind::Group => "group-operation-logs",
        LogKind::Zone => "zone-operation-logs",
        LogKind::RouteRule => "route-rule-logs",
    };
    let body = json!({
        "serviceId": f.service,
        "operatorId": g.operator,
        "instanceId": f.instance,
        "serverId": f.ip,
        "zoneId": f.zone,
        "groupId": f.group,
        "regionId": g.region,
    });
    let session = Session::new(g)?;
    let reply = session.call(&format!("/api/management/log/{path}.json"), body)?;
    show(g, &reply, |r| {
        let rows = array(&r["logs"]);
        let Some(first) = rows.first().and_then(|v| v.as_object()) else {
            println!("(no log rows)");
            return;
        };
        let columns: Vec<&str> = first
            .iter()
            .filter(|(_, v)| !v.is_object() && !v.is_array())
            .map(|(k, _)| k.as_str())
            .collect();
        let mut t = Table::new(&columns);
        for row in rows {
            t.row(fields(row, &columns));
        }
        t.print();
    })
}

fn instances_table() -> Table {
    Table::new(&["SERVICE", "INSTANCE", "ADDRESS", "ZONE", "STATUS"])
}

fn add_instances(t: &mut Table, service: &Value) {
    for i in array(&service["instances"]) {
        let address = match (&i["ip"], &i["port"]) {
            (Value::String(ip), Value::Number(port)) => format!("{ip}:{port}"),
            (ip, _) => text(ip),
        };
        t.row(vec![
            text(&i["serviceId"]),
            text(&i["instanceId"]),
            address,
            text(&i["zoneId"]),
            text(&i["status"]),
        ]);
    }
}

fn array(v: &Value) -> Vec<&Value> {
    v.as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

fn fields(v: &Value, names: &[&str]) -> Vec<String> {
    names.iter().map(|n| text(&v[*n])).collect()
}

/// A value as a table shows it: strings bare, null as `-`.
fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
