//! The management commands of the `artemis` binary, beside `server`: each is one or a few calls
//! of the SDK's [`ManagementClient`] to the node `--server` names (docs/management.md), so the
//! CLI and Rust programs operate the registry through the same code.
//!
//! The SDK is async on tokio; a command runs on a current-thread runtime made for it alone (the
//! server's cores never see one). Human tables by default, the server's JSON reply as it is
//! with `--json`. Exit codes: 0 on success, 1 when the server refused (its error code and
//! message on stderr), 2 for usage errors and a server that cannot be reached.

mod table;
mod view;

use std::collections::BTreeMap;
use std::time::Duration;

use artemis_client::{
    ClientConfig, Error, Group, LogFilter, LogKind, ManagementClient, OperationKind,
    OperationTarget, Record, RouteRuleGroup, ServiceRouteRule,
};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};

use view::array;

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
    /// Pull an instance, a server (every instance on an IP), a zone or a group out of discovery.
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
    /// What is pulled out now: every instance, server, zone or group operation.
    Operations {
        #[arg(value_enum)]
        kind: OperationsOf,
        #[command(flatten)]
        global: Global,
    },
    /// Service groups: the instances whose group key starts with service/region/zone/name.
    #[command(subcommand_required = true)]
    Group {
        #[command(subcommand)]
        action: GroupAction,
        #[command(flatten)]
        global: Global,
    },
    /// Instances named into groups by id.
    #[command(subcommand_required = true)]
    GroupInstance {
        #[command(subcommand)]
        action: GroupInstanceAction,
        #[command(flatten)]
        global: Global,
    },
    /// Group tags (discovery shows them as a route-rule group's metadata).
    #[command(subcommand_required = true)]
    Tag {
        #[command(subcommand)]
        action: TagAction,
        #[command(flatten)]
        global: Global,
    },
    /// Route rules.
    #[command(subcommand_required = true)]
    RouteRule {
        #[command(subcommand)]
        action: RouteRuleAction,
        #[command(flatten)]
        global: Global,
    },
    /// The groups of route rules and their weights (written, then released).
    #[command(subcommand_required = true)]
    RouteRuleGroup {
        #[command(subcommand)]
        action: RouteRuleGroupAction,
        #[command(flatten)]
        global: Global,
    },
    /// Canary routing.
    #[command(subcommand_required = true)]
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
        kind: LogOf,
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
    /// The region of instance, server and zone operations and of new groups; default: the node's own region (from its status/node.json).
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
    /// The instances of a group.
    Group {
        /// The group id.
        #[arg(long)]
        group: i64,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum OperationsOf {
    Instance,
    Server,
    Zone,
    Group,
}

#[derive(Subcommand, Debug)]
pub(crate) enum GroupAction {
    /// Every group (of one service with --service).
    List {
        #[arg(long)]
        service: Option<String>,
    },
    /// One group: its fields, instances, tags and operations.
    Show {
        /// The group id.
        id: i64,
    },
    /// Add a group (in --region, default the node's); one with the same service, zone and name is updated.
    Create {
        #[arg(long)]
        service: String,
        #[arg(long)]
        zone: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// active or inactive.
        #[arg(long, default_value = "active")]
        status: String,
    },
    /// Change a group's app, description or status.
    Update {
        /// The group id.
        id: i64,
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// active or inactive.
        #[arg(long)]
        status: Option<String>,
    },
    /// Delete groups, with their tags, operations, instances and places in route rules.
    Delete {
        /// Group ids.
        #[arg(required = true)]
        ids: Vec<i64>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum GroupInstanceAction {
    /// The instances named into groups (into one with --group).
    List {
        #[arg(long)]
        group: Option<i64>,
        #[arg(long)]
        instance: Option<String>,
    },
    /// Name instances into a group.
    Add {
        #[arg(long)]
        group: i64,
        /// Instance ids, comma-separated or repeated.
        #[arg(long, value_delimiter = ',', required = true)]
        instance: Vec<String>,
    },
    /// Remove group-instance rows by their id (the ID column of `list`).
    Remove {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum TagAction {
    /// Every group's tags (one group's with --group).
    List {
        #[arg(long)]
        group: Option<i64>,
    },
    /// Set tags on a group (others stay).
    Set {
        #[arg(long)]
        group: i64,
        /// KEY=VALUE pairs.
        #[arg(required = true, value_parser = key_value)]
        tags: Vec<(String, String)>,
    },
    /// Delete a group's tags: all of them, those named --tag, or those with --value.
    Delete {
        #[arg(long)]
        group: i64,
        #[arg(long)]
        tag: Option<String>,
        #[arg(long)]
        value: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum RouteRuleAction {
    /// Every route rule (of one service with --service).
    List {
        #[arg(long)]
        service: Option<String>,
    },
    /// One route rule and its groups' weights.
    Show {
        /// The route rule id.
        id: i64,
    },
    /// Add a route rule; one with the same service and name is updated.
    Create {
        #[arg(long)]
        service: String,
        #[arg(long)]
        name: String,
        /// weighted-round-robin or close-by-visit.
        #[arg(long, default_value = "weighted-round-robin")]
        strategy: String,
        /// active or inactive.
        #[arg(long, default_value = "active")]
        status: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Change a route rule.
    Update {
        /// The route rule id.
        id: i64,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        strategy: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete route rules, with their groups' weights.
    Delete {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum RouteRuleGroupAction {
    /// Every route rule's groups (one rule's with --route-rule).
    List {
        #[arg(long)]
        route_rule: Option<i64>,
    },
    /// Put a group in a route rule with a weight, which waits for `release`.
    Add {
        #[arg(long)]
        route_rule: i64,
        #[arg(long)]
        group: i64,
        #[arg(long)]
        weight: i64,
    },
    /// Write a new weight, which waits for `release`.
    Update {
        /// The route-rule group id (the ID column of `list`).
        id: i64,
        #[arg(long)]
        weight: i64,
    },
    /// Make the written weights the ones discovery shows.
    Release {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// Take groups out of their route rules.
    Delete {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
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
    /// The apps of a service's canary rule and their IPs.
    Show {
        #[arg(long)]
        service: String,
    },
}

/// The nine operation logs. `instance`, `server`, `zone` and `group` are pull-outs and
/// pull-ins; the others are changes of what their names say.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum LogOf {
    /// Instance pull-outs and pull-ins.
    Instance,
    /// Server pull-outs and pull-ins.
    Server,
    /// Zone pull-outs and pull-ins.
    Zone,
    /// Group pull-outs and pull-ins.
    #[value(alias = "group-operation")]
    Group,
    /// Groups created, updated, deleted.
    GroupChange,
    /// Instances named into groups or taken out.
    GroupInstance,
    /// Route rules created, updated, deleted.
    RouteRule,
    /// Groups put in route rules, weighted, released, taken out.
    RouteRuleGroup,
    /// Logical service instances added or deleted.
    ServiceInstance,
}

#[derive(Args, Debug)]
pub(crate) struct LogFilters {
    /// Only this service.
    #[arg(long)]
    service: Option<String>,
    /// Only this instance.
    #[arg(long)]
    instance: Option<String>,
    /// Only this server IP (server logs).
    #[arg(long)]
    ip: Option<String>,
    /// Only this zone.
    #[arg(long)]
    zone: Option<String>,
    /// Only this group id.
    #[arg(long)]
    group: Option<i64>,
    /// Only this route rule id (route-rule-group logs).
    #[arg(long)]
    route_rule: Option<i64>,
    /// Only this name (group-change and route-rule logs).
    #[arg(long)]
    name: Option<String>,
    /// Only this app (group-change logs).
    #[arg(long)]
    app: Option<String>,
    /// Only this operation.
    #[arg(long)]
    operation: Option<String>,
    /// Only pull-ins (true) or pull-outs (false) (instance, server, zone, group logs).
    #[arg(long)]
    complete: Option<bool>,
}

/// `KEY=VALUE`.
fn key_value(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{arg:?} is not KEY=VALUE")),
    }
}

/// Why a command failed, and so its exit code.
pub(crate) enum Failure {
    /// Exit 2: bad arguments, or no answer from the server.
    Usage(String),
    /// Exit 1: the server answered with a failure.
    Refused(String),
}

/// A failed call as the command reports it; with `--json` a refusal's status is printed too.
fn failed(e: Error, json: bool) -> Failure {
    match e {
        Error::Server { code, message } => {
            if json {
                let status =
                    json!({ "errorCode": code.to_string(), "message": message, "status": "fail" });
                println!("{}", json!({ "responseStatus": status }));
            }
            match message.is_empty() {
                true => Failure::Refused(format!("refused ({code})")),
                false => Failure::Refused(format!("refused ({code}): {message}")),
            }
        }
        // Every attempt failed: what the last one met decides.
        Error::Unavailable { last, .. } => failed(*last, json),
        e @ Error::Malformed { .. } => Failure::Refused(format!("unexpected answer: {e}")),
        Error::Config(why) => Failure::Usage(format!("--server, --token: {why}")),
        e => Failure::Usage(format!("cannot reach {e}")),
    }
}

/// Runs one management command, printing what it shows on stdout.
pub(crate) fn run(command: Manage) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Usage(format!("cannot start the client's runtime: {e}")))?;
    runtime.block_on(execute(command))
}

async fn execute(command: Manage) -> Result<(), Failure> {
    match command {
        Manage::Services(g) => {
            let s = Session::new(&g)?;
            let reply = s.call(s.client.services()).await?;
            s.show(&reply, view::services)
        }
        Manage::Service { id, global: g } => {
            let s = Session::new(&g)?;
            let reply = s.call(s.client.service(&id)).await?;
            s.show(&reply, view::service)
        }
        Manage::PullOut { target, global } => operate(&global, target, false).await,
        Manage::PullIn { target, global } => operate(&global, target, true).await,
        Manage::Operations { kind, global: g } => {
            let s = Session::new(&g)?;
            let kind = match kind {
                OperationsOf::Instance => OperationKind::Instance,
                OperationsOf::Server => OperationKind::Server,
                OperationsOf::Zone => OperationKind::Zone,
                OperationsOf::Group => OperationKind::Group,
            };
            let region = g.region.as_deref();
            let reply = s.call(s.client.all_operations(kind, region)).await?;
            s.show(&reply, view::operations)
        }
        Manage::Group { action, global } => group(&Session::new(&global)?, action).await,
        Manage::GroupInstance { action, global } => {
            group_instance(&Session::new(&global)?, action).await
        }
        Manage::Tag { action, global } => tag(&Session::new(&global)?, action).await,
        Manage::RouteRule { action, global } => route_rule(&Session::new(&global)?, action).await,
        Manage::RouteRuleGroup { action, global } => {
            route_rule_group(&Session::new(&global)?, action).await
        }
        Manage::Canary { action, global } => canary(&Session::new(&global)?, action).await,
        Manage::Logs {
            kind,
            filters,
            global: g,
        } => logs(&Session::new(&g)?, kind, filters).await,
        Manage::Cluster(g) => {
            let s = Session::new(&g)?;
            let reply = s.call(s.client.cluster_status()).await?;
            s.show(&reply, view::cluster)
        }
    }
}

/// The client of one command and the flags it was given.
struct Session<'a> {
    client: ManagementClient,
    global: &'a Global,
    /// Whether an operator was named or found: writes need one.
    has_operator: bool,
}

impl<'a> Session<'a> {
    fn new(global: &'a Global) -> Result<Session<'a>, Failure> {
        let mut config = ClientConfig::new([global.server.as_str()]);
        // The node the operator named, not whichever node the cluster lists.
        config.follow_cluster = false;
        // A management view of a large registry is big and slow to write, not unbounded.
        config.request_timeout = Duration::from_secs(30);
        config.connect_timeout = Duration::from_secs(5);
        config.max_reply_bytes = 512 << 20;
        let operator = global
            .operator
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("LOGNAME").ok())
            .or_else(login_name)
            .filter(|o| !o.trim().is_empty());
        let has_operator = operator.is_some();
        // Reads name nobody; the client still wants a name.
        let operator = operator.unwrap_or_else(|| "unknown".to_string());
        let client = ManagementClient::new(config, operator).map_err(|e| failed(e, false))?;
        let client = match global.token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => client.with_token(token).map_err(|e| failed(e, false))?,
            None => client,
        };
        Ok(Session {
            client,
            global,
            has_operator,
        })
    }

    /// The outcome of a call: its reply, or the command's failure.
    async fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Failure> {
        call.await.map_err(|e| failed(e, self.global.json))
    }

    /// The outcome of a write, which needs an operator.
    async fn write(
        &self,
        call: impl std::future::Future<Output = Result<Value, Error>>,
    ) -> Result<Value, Failure> {
        if !self.has_operator {
            return Err(Failure::Usage("no operator: pass --operator NAME".into()));
        }
        self.call(call).await
    }

    /// With `--json` the reply as it is; otherwise what `human` prints.
    fn show(&self, reply: &Value, human: impl FnOnce(&Value)) -> Result<(), Failure> {
        match self.global.json {
            true => println!("{reply}"),
            false => human(reply),
        }
        Ok(())
    }

    /// With `--json` the write's reply; otherwise `done`.
    fn done(&self, reply: &Value, done: &str) -> Result<(), Failure> {
        self.show(reply, |_| println!("{done}"))
    }

    /// `--region`, or the node's own region.
    async fn region(&self) -> Result<String, Failure> {
        if let Some(region) = &self.global.region {
            return Ok(region.clone());
        }
        let node = self.call(self.client.node_status()).await?;
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

/// A pull-out (`complete` false) or pull-in (`complete` true).
async fn operate(global: &Global, target: Target, complete: bool) -> Result<(), Failure> {
    let s = Session::new(global)?;
    let (target, what) = match target {
        Target::Instance { service, instance } => {
            let what = format!("instance {instance} of {service}");
            let target = OperationTarget::Instance {
                region_id: s.region().await?,
                service_id: service,
                instance_id: instance,
            };
            (target, what)
        }
        Target::Server { ip } => {
            let what = format!("server {ip}");
            let target = OperationTarget::Server {
                region_id: s.region().await?,
                server_id: ip,
            };
            (target, what)
        }
        Target::Zone { service, zone } => {
            let what = format!("zone {zone} of {service}");
            let target = OperationTarget::Zone {
                region_id: s.region().await?,
                service_id: service,
                zone_id: zone,
            };
            (target, what)
        }
        Target::Group { group } => (
            OperationTarget::Group { group_id: group },
            format!("group {group}"),
        ),
    };
    let reply = match complete {
        true => s.write(s.client.pull_in(&target)).await?,
        false => s.write(s.client.pull_out(&target)).await?,
    };
    let verb = if complete { "pulled in" } else { "pulled out" };
    let region = match &target {
        OperationTarget::Instance { region_id, .. }
        | OperationTarget::Server { region_id, .. }
        | OperationTarget::Zone { region_id, .. } => format!(" (region {region_id})"),
        _ => String::new(),
    };
    s.done(&reply, &format!("{verb}: {what}{region}"))
}

async fn group(s: &Session<'_>, action: GroupAction) -> Result<(), Failure> {
    match action {
        GroupAction::List { service } => {
            let mut reply = s.call(s.client.all::<Group>()).await?;
            if let Some(service) = service {
                view::keep(&mut reply["groups"], |g| same(&g["serviceId"], &service));
            }
            s.show(&reply, view::groups)
        }
        GroupAction::Show { id } => {
            let groups = s.call(s.client.all::<Group>()).await?;
            let found = array(&groups["groups"])
                .into_iter()
                .find(|group| group["groupId"].as_i64() == Some(id))
                .cloned()
                .ok_or_else(|| Failure::Refused(format!("no group {id}")))?;
            let instances = s.call(s.client.group_instances(Some(id), None)).await?;
            let tags = s.call(s.client.group_tags(Some(id))).await?;
            let target = OperationTarget::Group { group_id: id };
            let operations = s.call(s.client.operations(&target)).await?;
            let all = json!({
                "group": found,
                "groupInstances": instances["groupInstances"],
                "groupTags": tags["groupTags"],
                "groupOperations": operations["groupOperations"],
            });
            s.show(&all, view::group)
        }
        GroupAction::Create {
            service,
            zone,
            name,
            app,
            description,
            status,
        } => {
            let mut group = Group::new(service, s.region().await?, zone, name);
            group.app_id = app;
            group.description = description;
            group.status = Some(status);
            let Some((reply, id)) = insert(s, &group).await? else {
                return Ok(());
            };
            let key = [
                &group.service_id,
                &group.region_id,
                &group.zone_id,
                &group.name,
            ];
            let key: Vec<&str> = key.iter().map(|s| s.as_str()).collect();
            s.done(&reply, &format!("group {id}: {}", key.join("/")))
        }
        GroupAction::Update {
            id,
            app,
            description,
            status,
        } => {
            let mut group: Group = stored(s, id).await?;
            group.app_id = app.or(group.app_id);
            group.description = description.or(group.description);
            group.status = status.or(group.status);
            update(s, group).await
        }
        GroupAction::Delete { ids } => delete::<Group>(s, &ids).await,
    }
}

async fn group_instance(s: &Session<'_>, action: GroupInstanceAction) -> Result<(), Failure> {
    match action {
        GroupInstanceAction::List { group, instance } => {
            let call = s.client.group_instances(group, instance.as_deref());
            let reply = s.call(call).await?;
            s.show(&reply, view::group_instances)
        }
        GroupInstanceAction::Add { group, instance } => {
            let reply = s
                .write(s.client.insert_group_instances(group, &instance))
                .await?;
            let done = format!("group {group}: added {}", instance.join(","));
            s.done(&reply, &done)
        }
        GroupInstanceAction::Remove { ids } => {
            let reply = s.write(s.client.delete_group_instances(&ids)).await?;
            s.done(
                &reply,
                &format!("removed group instance(s) {}", joined(&ids)),
            )
        }
    }
}

async fn tag(s: &Session<'_>, action: TagAction) -> Result<(), Failure> {
    match action {
        TagAction::List { group } => {
            let reply = s.call(s.client.group_tags(group)).await?;
            s.show(&reply, view::tags)
        }
        TagAction::Set { group, tags } => {
            let tags: BTreeMap<String, String> = tags.into_iter().collect();
            let reply = s.write(s.client.set_group_tags(group, &tags)).await?;
            let shown: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.done(&reply, &format!("group {group}: {}", shown.join(",")))
        }
        TagAction::Delete { group, tag, value } => {
            let call = s
                .client
                .delete_group_tags(group, tag.as_deref(), value.as_deref());
            let reply = s.write(call).await?;
            s.done(&reply, &format!("group {group}: tags deleted"))
        }
    }
}

async fn route_rule(s: &Session<'_>, action: RouteRuleAction) -> Result<(), Failure> {
    match action {
        RouteRuleAction::List { service } => {
            let mut reply = s.call(s.client.all::<ServiceRouteRule>()).await?;
            if let Some(service) = service {
                view::keep(&mut reply["routeRules"], |r| {
                    same(&r["serviceId"], &service)
                });
            }
            s.show(&reply, view::route_rules)
        }
        RouteRuleAction::Show { id } => {
            let rules = s.call(s.client.all::<ServiceRouteRule>()).await?;
            let found = array(&rules["routeRules"])
                .into_iter()
                .find(|rule| rule["routeRuleId"].as_i64() == Some(id))
                .cloned()
                .ok_or_else(|| Failure::Refused(format!("no route rule {id}")))?;
            let mut groups = s.call(s.client.all::<RouteRuleGroup>()).await?;
            view::keep(&mut groups["routeRuleGroups"], |g| {
                g["routeRuleId"].as_i64() == Some(id)
            });
            let all = json!({ "routeRule": found, "routeRuleGroups": groups["routeRuleGroups"] });
            s.show(&all, view::route_rule)
        }
        RouteRuleAction::Create {
            service,
            name,
            strategy,
            status,
            description,
        } => {
            let mut rule = ServiceRouteRule::new(service, name);
            rule.strategy = Some(strategy);
            rule.status = Some(status);
            rule.description = description;
            let Some((reply, id)) = insert(s, &rule).await? else {
                return Ok(());
            };
            let done = format!("route rule {id}: {} of {}", rule.name, rule.service_id);
            s.done(&reply, &done)
        }
        RouteRuleAction::Update {
            id,
            name,
            strategy,
            status,
            description,
        } => {
            let mut rule: ServiceRouteRule = stored(s, id).await?;
            rule.name = name.unwrap_or(rule.name);
            rule.strategy = strategy.or(rule.strategy);
            rule.status = status.or(rule.status);
            rule.description = description.or(rule.description);
            update(s, rule).await
        }
        RouteRuleAction::Delete { ids } => delete::<ServiceRouteRule>(s, &ids).await,
    }
}

async fn route_rule_group(s: &Session<'_>, action: RouteRuleGroupAction) -> Result<(), Failure> {
    match action {
        RouteRuleGroupAction::List { route_rule } => {
            let mut reply = s.call(s.client.all::<RouteRuleGroup>()).await?;
            if let Some(rule) = route_rule {
                view::keep(&mut reply["routeRuleGroups"], |g| {
                    g["routeRuleId"].as_i64() == Some(rule)
                });
            }
            s.show(&reply, view::route_rule_groups)
        }
        RouteRuleGroupAction::Add {
            route_rule,
            group,
            weight,
        } => {
            let row = RouteRuleGroup::new(route_rule, group, weight);
            let Some((reply, id)) = insert(s, &row).await? else {
                return Ok(());
            };
            let done = format!(
                "route-rule group {id}: group {group} in route rule {route_rule}, weight {weight} (to release)"
            );
            s.done(&reply, &done)
        }
        RouteRuleGroupAction::Update { id, weight } => {
            let mut row: RouteRuleGroup = stored(s, id).await?;
            row.unreleased_weight = Some(weight);
            let reply = s.write(s.client.update(&[row])).await?;
            let done = format!("route-rule group {id}: weight {weight} (to release)");
            s.done(&reply, &done)
        }
        RouteRuleGroupAction::Release { ids } => {
            let mut rows = Vec::with_capacity(ids.len());
            for &id in &ids {
                rows.push(stored(s, id).await?);
            }
            let reply = s.write(s.client.release_route_rule_groups(&rows)).await?;
            s.done(
                &reply,
                &format!("released route-rule group(s) {}", joined(&ids)),
            )
        }
        RouteRuleGroupAction::Delete { ids } => delete::<RouteRuleGroup>(s, &ids).await,
    }
}

/// Inserts `record`: with `--json` the reply is printed and `None` returned; otherwise the
/// reply and the id the server gave the record (`-` when it cannot be found).
async fn insert<R: Record>(
    s: &Session<'_>,
    record: &R,
) -> Result<Option<(Value, String)>, Failure> {
    let reply = s
        .write(s.client.insert(std::slice::from_ref(record)))
        .await?;
    if s.global.json {
        s.show(&reply, |_| {})?;
        return Ok(None);
    }
    let stored = s.call(s.client.find(record)).await?;
    let id = stored.map_or_else(|| "-".to_string(), |r| r.id().to_string());
    Ok(Some((reply, id)))
}

/// The stored record of kind `R` with id `id`; refused when there is none.
async fn stored<R: Record>(s: &Session<'_>, id: i64) -> Result<R, Failure> {
    s.call(s.client.one::<R>(id))
        .await?
        .ok_or_else(|| Failure::Refused(format!("no {} {id}", R::NAME)))
}

/// Writes `record` back, changed.
async fn update<R: Record>(s: &Session<'_>, record: R) -> Result<(), Failure> {
    let id = record.id();
    let reply = s.write(s.client.update(&[record])).await?;
    s.done(&reply, &format!("{} {id} updated", R::NAME))
}

/// Deletes the records of kind `R` with these ids.
async fn delete<R: Record>(s: &Session<'_>, ids: &[i64]) -> Result<(), Failure> {
    let reply = s.write(s.client.delete::<R>(ids)).await?;
    s.done(&reply, &format!("deleted {}(s) {}", R::NAME, joined(ids)))
}

async fn canary(s: &Session<'_>, action: CanaryAction) -> Result<(), Failure> {
    match action {
        CanaryAction::Set {
            service,
            app,
            mut ips,
        } => {
            // `--ips ""` clears them, as `--ips` alone does.
            ips.retain(|ip| !ip.trim().is_empty());
            let reply = s
                .write(s.client.set_canary_ips(&service, &app, &ips))
                .await?;
            let done = format!("canary ips of {app} for {service}: {}", ips.join(","));
            s.done(&reply, &done)
        }
        CanaryAction::Show { service } => {
            let canaries = s.call(s.client.canaries(&service)).await?;
            let canaries: Vec<Value> = canaries
                .into_iter()
                .map(|c| json!({ "appId": c.app_id, "groupId": c.group_id, "ips": c.ips }))
                .collect();
            let all = json!({ "serviceId": service, "canaries": canaries });
            s.show(&all, view::canaries)
        }
    }
}

async fn logs(s: &Session<'_>, kind: LogOf, f: LogFilters) -> Result<(), Failure> {
    let kind = match kind {
        LogOf::Instance => LogKind::Instance,
        LogOf::Server => LogKind::Server,
        LogOf::Zone => LogKind::Zone,
        LogOf::Group => LogKind::GroupOperation,
        LogOf::GroupChange => LogKind::Group,
        LogOf::GroupInstance => LogKind::GroupInstance,
        LogOf::RouteRule => LogKind::RouteRule,
        LogOf::RouteRuleGroup => LogKind::RouteRuleGroup,
        LogOf::ServiceInstance => LogKind::ServiceInstance,
    };
    let filter = LogFilter {
        region_id: s.global.region.clone(),
        service_id: f.service,
        instance_id: f.instance,
        server_id: f.ip,
        zone_id: f.zone,
        group_id: f.group,
        route_rule_id: f.route_rule,
        name: f.name,
        app_id: f.app,
        operation: f.operation,
        // `--operator` filters the logs; the login name does not.
        operator_id: s.global.operator.clone(),
        complete: f.complete,
    };
    let reply = s.call(s.client.logs(kind, &filter)).await?;
    s.show(&reply, view::logs)
}

/// Whether a reply's text field is `expected`, case aside (as service ids are matched).
fn same(field: &Value, expected: &str) -> bool {
    field
        .as_str()
        .is_some_and(|s| s.eq_ignore_ascii_case(expected))
}

fn joined(ids: &[i64]) -> String {
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    ids.join(",")
}
