//! §4.8's route rules of a service and the groups in each rule, with their weights: a weight
//! written to a rule's group waits (`unreleasedWeight`) until it is released, and discovery
//! shows the released one (5 before any release).

use artemis_shards::management::{RouteRule, RouteRuleGroup};

use super::groups::group;
use super::json::{write_list, write_object, Field};
use super::requests::Props;
use super::{id_matches, text_matches, Asked, Read, Refusal};
use crate::api::decode::DecodeError;
use crate::api::Context;
use crate::management::store::Write;
use crate::rate_limit::LimitedOp;

/// Java's `ServiceRouteRule`.
fn route_rule(p: &Props) -> Result<RouteRule, DecodeError> {
    Ok(RouteRule {
        route_rule_id: p.long("routeRuleId")?.unwrap_or(0),
        service_id: p.text("serviceId")?.unwrap_or_default(),
        name: p.text("name")?.unwrap_or_default(),
        description: p.text("description")?,
        status: p.text("status")?,
        strategy: p.text("strategy")?,
    })
}

/// Java's `RouteRuleGroup`.
fn route_rule_group(p: &Props) -> Result<RouteRuleGroup, DecodeError> {
    Ok(RouteRuleGroup {
        route_rule_group_id: p.long("routeRuleGroupId")?.unwrap_or(0),
        route_rule_id: p.long("routeRuleId")?.unwrap_or(0),
        group_id: p.long("groupId")?.unwrap_or(0),
        weight: p.long("weight")?,
        unreleased_weight: p.long("unreleasedWeight")?,
    })
}

/// `insert-route-rules.json`: `{"routeRules":[ServiceRouteRule]}`.
pub(super) fn insert(_: &Context<'_>, p: Props<'_, '_>) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(Write::InsertRouteRules(
        p.each("routeRules", route_rule)?,
    )))
}

/// `update-route-rules.json`, as insert.
pub(super) fn update(_: &Context<'_>, p: Props<'_, '_>) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(Write::UpdateRouteRules(
        p.each("routeRules", route_rule)?,
    )))
}

/// `delete-route-rules.json`: `{"routeRuleIds":[long]}`.
pub(super) fn delete(_: &Context<'_>, p: Props<'_, '_>) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(Write::DeleteRouteRules(p.longs("routeRuleIds")?)))
}

/// `create-route-rule.json`: `{"routeRule":ServiceRouteRule,"groups":[GroupWeight]}`; the store
/// checks what Java's `createServiceRouteRules` checks.
pub(super) fn create(_: &Context<'_>, p: Props<'_, '_>) -> Result<Asked<Write>, DecodeError> {
    let Some(rule) = p.object("routeRule")? else {
        // Java dereferences the missing rule.
        return Ok(Err(Refusal::internal("create route-rule failed.")));
    };
    let groups = p.each("groups", |g| Ok((group(g)?, g.long("weight")?)))?;
    Ok(Ok(Write::CreateRouteRule {
        rule: route_rule(&rule)?,
        groups,
    }))
}

/// `insert-route-rule-groups.json`: `{"routeRuleGroups":[RouteRuleGroup]}`.
pub(super) fn insert_groups(
    _: &Context<'_>,
    p: Props<'_, '_>,
) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(Write::InsertRouteRuleGroups(
        p.each("routeRuleGroups", route_rule_group)?,
    )))
}

/// `update-route-rule-groups.json`, as insert.
pub(super) fn update_groups(
    _: &Context<'_>,
    p: Props<'_, '_>,
) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(Write::UpdateRouteRuleGroups(
        p.each("routeRuleGroups", route_rule_group)?,
    )))
}

/// `release-route-rule-groups.json`: the same list, each group's waiting weight released.
pub(super) fn release_groups(
    _: &Context<'_>,
    p: Props<'_, '_>,
) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(Write::ReleaseRouteRuleGroups(
        p.each("routeRuleGroups", route_rule_group)?,
    )))
}

/// `delete-route-rule-groups.json`: `{"routeRuleGroupIds":[long]}`.
pub(super) fn delete_groups(
    _: &Context<'_>,
    p: Props<'_, '_>,
) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(Write::DeleteRouteRuleGroups(
        p.longs("routeRuleGroupIds")?,
    )))
}

/// `ServiceRouteRule`: `{"description","name","routeRuleId","serviceId","status","strategy"}`.
fn write_route_rule(out: &mut Vec<u8>, rule: &RouteRule) {
    write_object(
        out,
        &[
            ("description", Field::Text(rule.description.as_deref())),
            ("name", Field::Text(Some(&rule.name))),
            ("routeRuleId", Field::Int(Some(rule.route_rule_id))),
            ("serviceId", Field::Text(Some(&rule.service_id))),
            ("status", Field::Text(rule.status.as_deref())),
            ("strategy", Field::Text(rule.strategy.as_deref())),
        ],
    );
}

/// `RouteRuleGroup`: `{"groupId","routeRuleGroupId","routeRuleId","unreleasedWeight","weight"}`.
fn write_route_rule_group(out: &mut Vec<u8>, row: &RouteRuleGroup) {
    write_object(
        out,
        &[
            ("groupId", Field::Int(Some(row.group_id))),
            (
                "routeRuleGroupId",
                Field::Int(Some(row.route_rule_group_id)),
            ),
            ("routeRuleId", Field::Int(Some(row.route_rule_id))),
            ("unreleasedWeight", Field::Int(row.unreleased_weight)),
            ("weight", Field::Int(row.weight)),
        ],
    );
}

/// `get-all-route-rules.json` → `routeRules` (the request's region is ignored).
pub(super) const ALL_ROUTE_RULES: Read<()> = Read::of(
    "routeRules",
    |_| Ok(Ok(())),
    |data, (), out| write_list(out, &data.route_rules, write_route_rule),
);

/// The filter of `get-route-rules.json`.
pub(super) struct RuleFilter {
    route_rule_id: Option<i64>,
    service_id: Option<String>,
    name: Option<String>,
    status: Option<String>,
}

/// `get-route-rules.json`: `{"routeRuleId","serviceId","name","status"}` → `routeRules`.
pub(super) const ROUTE_RULES: Read<RuleFilter> = Read::of(
    "routeRules",
    |p| {
        Ok(Ok(RuleFilter {
            route_rule_id: p.long("routeRuleId")?,
            service_id: p.text("serviceId")?,
            name: p.text("name")?,
            status: p.text("status")?,
        }))
    },
    |data, filter, out| {
        let rules = data.route_rules.iter().filter(|r| {
            id_matches(filter.route_rule_id, r.route_rule_id)
                && text_matches(&filter.service_id, Some(&r.service_id))
                && text_matches(&filter.name, Some(&r.name))
                && text_matches(&filter.status, r.status.as_deref())
        });
        write_list(out, rules, write_route_rule)
    },
)
.limited(LimitedOp::GetRouteRules);

/// `get-all-route-rule-groups.json` → `routeRuleGroups`.
pub(super) const ALL_ROUTE_RULE_GROUPS: Read<()> = Read::of(
    "routeRuleGroups",
    |_| Ok(Ok(())),
    |data, (), out| write_list(out, &data.route_rule_groups, write_route_rule_group),
);

/// The filter of `get-route-rule-groups.json`.
pub(super) struct RuleGroupFilter {
    route_rule_group_id: Option<i64>,
    route_rule_id: Option<i64>,
    group_id: Option<i64>,
}

/// `get-route-rule-groups.json`: `{"routeRuleGroupId","routeRuleId","groupId"}` →
/// `routeRuleGroups`.
pub(super) const ROUTE_RULE_GROUPS: Read<RuleGroupFilter> = Read::of(
    "routeRuleGroups",
    |p| {
        Ok(Ok(RuleGroupFilter {
            route_rule_group_id: p.long("routeRuleGroupId")?,
            route_rule_id: p.long("routeRuleId")?,
            group_id: p.long("groupId")?,
        }))
    },
    |data, filter, out| {
        let rows = data.route_rule_groups.iter().filter(|r| {
            id_matches(filter.route_rule_group_id, r.route_rule_group_id)
                && id_matches(filter.route_rule_id, r.route_rule_id)
                && id_matches(filter.group_id, r.group_id)
        });
        write_list(out, rows, write_route_rule_group)
    },
)
.limited(LimitedOp::GetRouteRuleGroups);
