//! The management view: Java's discovery filter chain, built once per management change.
//!
//! A shard keeps one view and asks it two things: whether an instance is pulled out (by its
//! instance key, its server, its zone or a group operation on a group whose key prefixes its
//! own; Java's `ManagementDiscoveryFilter`), and what a service's `logicInstances` and
//! `routeRules` are (Java's `GroupDiscoveryFilter`). Both are answered when a service's
//! discovery bytes are assembled, once per version, so reads pay nothing for them. Comparing the
//! view before and after a change tells the shard which services to look at again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::group_key::{fix_weight, group_key, instance_group_key, SearchTree};
use super::model::{ManagementData, ServiceInstance};
use crate::instance::{Instance, InstanceKey};
use crate::json::{write_int, write_key, write_opt_str, write_str};

/// The route rule whose groups the server fills with their instances (Java's canary rule).
pub const CANARY_ROUTE_RULE: &str = "canary-route-rule";

/// What the filter chain reads of an instance.
#[derive(Clone, Copy, Debug)]
pub struct InstanceFacts<'a> {
    /// The case-insensitive identity (lowercased).
    pub key: &'a InstanceKey,
    /// The service id as registered.
    pub service_id: &'a str,
    pub zone_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub group_id: Option<&'a str>,
}

impl InstanceFacts<'_> {
    fn group_key(&self) -> String {
        instance_group_key(
            Some(self.service_id),
            Some(&self.key.region_id),
            self.zone_id,
            self.group_id,
            Some(&self.key.instance_id),
        )
    }
}

/// A logical instance (`service_instance` row) as discovery shows it.
#[derive(Debug, PartialEq, Eq)]
struct LogicInstance {
    key: InstanceKey,
    service_id: String,
    zone_id: Option<String>,
    ip: Option<String>,
    group_id: Option<String>,
    json: Arc<[u8]>,
}

impl LogicInstance {
    fn new(row: &ServiceInstance) -> LogicInstance {
        let instance = Instance {
            region_id: row.region_id.clone(),
            zone_id: row.zone_id.clone(),
            group_id: row.group_id.clone(),
            service_id: Some(row.service_id.clone()),
            instance_id: Some(row.instance_id.clone()),
            machine_name: row.machine_name.clone(),
            ip: row.ip.clone(),
            port: row.port,
            protocol: row.protocol.clone(),
            url: row.url.clone(),
            health_check_url: row.health_check_url.clone(),
            status: Some("up".into()),
            metadata: row.metadata.as_ref().map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), Some(v.clone())))
                    .collect()
            }),
        };
        LogicInstance {
            key: instance.key(),
            service_id: row.service_id.clone(),
            zone_id: row.zone_id.clone(),
            ip: row.ip.clone(),
            group_id: row.group_id.clone(),
            json: instance.to_json().into(),
        }
    }

    fn facts(&self) -> InstanceFacts<'_> {
        InstanceFacts {
            key: &self.key,
            service_id: &self.service_id,
            zone_id: self.zone_id.as_deref(),
            ip: self.ip.as_deref(),
            group_id: self.group_id.as_deref(),
        }
    }
}

/// One group of an active route rule, as `ServiceGroup`.
#[derive(Debug, PartialEq, Eq)]
struct RuleGroup {
    key: String,
    /// As stored; `None` when the group names no instances.
    instance_ids: Option<Vec<String>>,
    tags: Option<BTreeMap<String, String>>,
    weight: i64,
}

/// An active route rule with its active groups.
#[derive(Debug, PartialEq, Eq)]
struct Rule {
    route_id: String,
    strategy: Option<String>,
    groups: Vec<RuleGroup>,
}

/// What the group filter adds to one service.
#[derive(Debug, Default, PartialEq, Eq)]
struct ServiceRules {
    /// The service id as first named.
    service_id: String,
    logic_instances: Vec<LogicInstance>,
    route_rules: Vec<Rule>,
}

/// Which services a management change touches.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Affected {
    /// A server operation changed: any service may hold an instance on that server.
    pub every_service: bool,
    /// Lowercased ids of services whose instances may have been pulled out or in.
    pub services: HashSet<String>,
    /// Lowercased ids of services whose logical instances or route rules changed.
    pub reload: HashSet<String>,
}

/// The management state a shard applies.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ManagementView {
    instances: HashSet<InstanceKey>,
    /// (lowercased region, lowercased server ip).
    servers: HashSet<(String, String)>,
    /// (lowercased region, service id, zone id): the service and zone match exactly, as Java's
    /// `ZoneKey` map does.
    zones: HashSet<(String, String, String)>,
    /// Keys of groups with an operation.
    groups: SearchTree<()>,
    /// By lowercased service id.
    services: HashMap<String, ServiceRules>,
}

fn is_active(status: Option<&str>) -> bool {
    status.is_some_and(|s| s.eq_ignore_ascii_case("active"))
}

impl ManagementView {
    /// The view of `data`.
    pub fn new(data: &ManagementData) -> ManagementView {
        let mut view = ManagementView::default();
        for op in &data.instance_operations {
            view.instances.insert(InstanceKey {
                region_id: op.region_id.to_lowercase().into(),
                service_id: op.service_id.to_lowercase().into(),
                instance_id: op.instance_id.to_lowercase().into(),
            });
        }
        for op in &data.server_operations {
            view.servers
                .insert((op.region_id.to_lowercase(), op.server_id.to_lowercase()));
        }
        for op in &data.zone_operations {
            view.zones.insert((
                op.region_id.to_lowercase(),
                op.service_id.clone(),
                op.zone_id.clone(),
            ));
        }
        let groups: HashMap<i64, _> = data.groups.iter().map(|g| (g.group_id, g)).collect();
        let key_of =
            |g: &super::model::Group| group_key(&g.service_id, &g.region_id, &g.zone_id, &g.name);
        for op in &data.group_operations {
            if let Some(group) = groups.get(&op.group_id) {
                view.groups.add(&key_of(group), ());
            }
        }
        for row in &data.service_instances {
            view.rules_of(&row.service_id)
                .logic_instances
                .push(LogicInstance::new(row));
        }
        let mut tags: HashMap<i64, BTreeMap<String, String>> = HashMap::new();
        for tag in &data.group_tags {
            tags.entry(tag.group_id)
                .or_default()
                .insert(tag.tag.clone(), tag.value.clone());
        }
        let mut members: HashMap<i64, Vec<String>> = HashMap::new();
        for member in &data.group_instances {
            members
                .entry(member.group_id)
                .or_default()
                .push(member.instance_id.clone());
        }
        for rule in data
            .route_rules
            .iter()
            .filter(|r| is_active(r.status.as_deref()))
        {
            let rule_groups: Vec<RuleGroup> = data
                .route_rule_groups
                .iter()
                .filter(|rg| rg.route_rule_id == rule.route_rule_id)
                .filter_map(|rg| Some((rg, *groups.get(&rg.group_id)?)))
                .filter(|(_, group)| is_active(group.status.as_deref()))
                .map(|(rg, group)| RuleGroup {
                    key: key_of(group),
                    instance_ids: members.get(&group.group_id).cloned(),
                    tags: tags.get(&group.group_id).cloned(),
                    weight: fix_weight(rg.weight),
                })
                .collect();
            if rule_groups.is_empty() {
                continue;
            }
            view.rules_of(&rule.service_id).route_rules.push(Rule {
                route_id: rule.name.clone(),
                strategy: rule.strategy.clone(),
                groups: rule_groups,
            });
        }
        view
    }

    fn rules_of(&mut self, service_id: &str) -> &mut ServiceRules {
        let rules = self.services.entry(service_id.to_lowercase()).or_default();
        if rules.service_id.is_empty() {
            rules.service_id = service_id.to_string();
        }
        rules
    }

    /// The id of a service (lowercased `service_key`) as management data names it.
    pub fn service_id(&self, service_key: &str) -> Option<&str> {
        self.services
            .get(service_key)
            .map(|r| r.service_id.as_str())
    }

    /// Whether the instance is pulled out, by any of the four operations.
    pub fn is_down(&self, facts: &InstanceFacts<'_>) -> bool {
        if self.pulls_out_nothing() {
            return false;
        }
        if self.instances.contains(facts.key) {
            return true;
        }
        if let Some(ip) = facts.ip.filter(|_| !self.servers.is_empty()) {
            if self.is_server_down(&facts.key.region_id, ip) {
                return true;
            }
        }
        if let Some(zone) = facts.zone_id.filter(|_| !self.zones.is_empty()) {
            if self.is_zone_down(&facts.key.region_id, facts.service_id, zone) {
                return true;
            }
        }
        !self.groups.is_empty() && self.groups.first(&facts.group_key()).is_some()
    }

    /// No operation of any kind: the common case, checked first on every register.
    fn pulls_out_nothing(&self) -> bool {
        self.instances.is_empty()
            && self.servers.is_empty()
            && self.zones.is_empty()
            && self.groups.is_empty()
    }

    /// [`ManagementView::is_down`] of an instance as a client sends it.
    pub fn is_instance_down(&self, instance: &Instance) -> bool {
        let key = instance.key();
        self.is_down(&InstanceFacts {
            key: &key,
            service_id: instance.service_id.as_deref().unwrap_or(""),
            zone_id: instance.zone_id.as_deref(),
            ip: instance.ip.as_deref(),
            group_id: instance.group_id.as_deref(),
        })
    }

    /// Whether the server (`ip`) is pulled out in the region.
    pub fn is_server_down(&self, region_id: &str, server_id: &str) -> bool {
        self.servers
            .contains(&(region_id.to_lowercase(), server_id.to_lowercase()))
    }

    /// Whether the service's zone is pulled out (service and zone matched exactly).
    pub fn is_zone_down(&self, region_id: &str, service_id: &str, zone_id: &str) -> bool {
        self.zones.contains(&(
            region_id.to_lowercase(),
            service_id.to_string(),
            zone_id.to_string(),
        ))
    }

    /// Whether the service (lowercased id) has logical instances or route rules.
    pub fn has_rules(&self, service_key: &str) -> bool {
        self.services.contains_key(service_key)
    }

    /// Whether writing the service's lists needs its instances (a canary rule lists them).
    pub fn needs_instances(&self, service_key: &str) -> bool {
        self.services.get(service_key).is_some_and(|rules| {
            rules
                .route_rules
                .iter()
                .any(|r| r.route_id == CANARY_ROUTE_RULE)
        })
    }

    /// Appends what follows a service's `instances` array up to its id:
    /// `,"logicInstances":[..],"metadata":null,"routeRules":[..],"serviceId":`. Pulled-out
    /// logical instances are left out when `hide_down` (discovery; the management view shows
    /// them). `instances` (every instance of the service, pulled out or not, with its JSON) is
    /// read only for a canary rule (see [`ManagementView::needs_instances`]).
    pub fn write_lists(
        &self,
        out: &mut Vec<u8>,
        service_key: &str,
        instances: &[(InstanceFacts<'_>, &[u8])],
        hide_down: bool,
    ) {
        let Some(rules) = self.services.get(service_key) else {
            out.extend_from_slice(NO_LISTS);
            return;
        };
        out.extend_from_slice(b",\"logicInstances\":[");
        let shown = rules
            .logic_instances
            .iter()
            .filter(|logic| !(hide_down && self.is_down(&logic.facts())));
        for (i, logic) in shown.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&logic.json);
        }
        out.extend_from_slice(b"],\"metadata\":null,\"routeRules\":[");
        for (i, rule) in rules.route_rules.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let canary = rule.route_id == CANARY_ROUTE_RULE;
            out.extend_from_slice(b"{\"groups\":[");
            for (j, group) in rule.groups.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                let members =
                    canary.then(|| group_members(group, instances, &rules.logic_instances));
                write_group(out, group, members);
            }
            out.extend_from_slice(b"],\"routeId\":");
            write_str(out, &rule.route_id);
            out.extend_from_slice(b",\"strategy\":");
            write_opt_str(out, rule.strategy.as_deref());
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"serviceId\":");
    }

    /// Which services differ between `before` and this view.
    pub fn affected(&self, before: &ManagementView) -> Affected {
        let mut affected = Affected {
            every_service: self.servers != before.servers,
            ..Affected::default()
        };
        for key in self.instances.symmetric_difference(&before.instances) {
            affected.services.insert(key.service_id.to_string());
        }
        for (_, service, _) in self.zones.symmetric_difference(&before.zones) {
            affected.services.insert(service.to_lowercase());
        }
        let group_paths = |view: &ManagementView| -> HashSet<String> {
            view.groups.paths().map(str::to_string).collect()
        };
        for path in group_paths(self).symmetric_difference(&group_paths(before)) {
            let service = path.split('/').next().unwrap_or_default();
            affected.services.insert(service.to_string());
        }
        let keys: HashSet<&String> = self.services.keys().chain(before.services.keys()).collect();
        for key in keys {
            let (now, then) = (self.services.get(key), before.services.get(key));
            // Logical instances are filtered too: a pull-out may change them.
            let pulled = affected.every_service || affected.services.contains(key);
            if now != then || (pulled && now.is_some_and(|r| !r.logic_instances.is_empty())) {
                affected.reload.insert(key.clone());
            }
        }
        affected
    }
}

/// The lists of a service without management data.
pub const NO_LISTS: &[u8] =
    b",\"logicInstances\":[],\"metadata\":null,\"routeRules\":[],\"serviceId\":";

/// A canary group's instances: those its key prefixes, and those it names by id, registered or
/// logical.
fn group_members<'a>(
    group: &RuleGroup,
    instances: &[(InstanceFacts<'_>, &'a [u8])],
    logic: &'a [LogicInstance],
) -> Vec<&'a [u8]> {
    let prefix = format!("{}/", group.key);
    let named = |id: &str| {
        group
            .instance_ids
            .as_ref()
            .is_some_and(|ids| ids.iter().any(|named| named.eq_ignore_ascii_case(id)))
    };
    let registered = instances.iter().filter(|(facts, _)| {
        facts.group_key().starts_with(&prefix) || named(&facts.key.instance_id)
    });
    let mut members: Vec<&[u8]> = registered.map(|(_, json)| *json).collect();
    let logical = logic.iter().filter(|l| named(&l.key.instance_id));
    members.extend(logical.map(|l| &*l.json));
    members
}

/// Appends a `ServiceGroup`; `members` fills `instances` (the canary rule's groups only).
fn write_group(out: &mut Vec<u8>, group: &RuleGroup, members: Option<Vec<&[u8]>>) {
    out.push(b'{');
    write_key(out, "groupKey");
    write_str(out, &group.key);
    out.push(b',');
    write_key(out, "instanceIds");
    match &group.instance_ids {
        None => out.extend_from_slice(b"null"),
        Some(ids) => write_array(out, ids.iter(), |out, id| write_str(out, id)),
    }
    out.push(b',');
    write_key(out, "instances");
    match members {
        None => out.extend_from_slice(b"null"),
        Some(members) => write_array(out, members.into_iter(), |out, json| {
            out.extend_from_slice(json)
        }),
    }
    out.push(b',');
    write_key(out, "metadata");
    match &group.tags {
        None => out.extend_from_slice(b"null"),
        Some(tags) => {
            out.push(b'{');
            for (i, (tag, value)) in tags.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, tag);
                out.push(b':');
                write_str(out, value);
            }
            out.push(b'}');
        }
    }
    out.push(b',');
    write_key(out, "weight");
    write_int(out, group.weight);
    out.push(b'}');
}

fn write_array<T>(
    out: &mut Vec<u8>,
    items: impl Iterator<Item = T>,
    write: impl Fn(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests;
