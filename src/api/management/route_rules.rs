//! §4.8's route rules of a service and the groups in each rule, with their weights: a weight
//! written to a rule's group waits (`unreleasedWeight`) until it is released, and discovery
//! shows the released one (5 before any release).

use artemis_shards::management::{RouteRule, RouteRuleGroup};

use super::groups::group;
use super::json::{write_list, write_object, Field};
use super::reads::{Column, Read};
use super::requests::Props;
use super::writes::{ids, rows, Writes};
use super::Refusal;
use crate::decode::DecodeError;
use crate::management::store::Write;
use crate::rate_limit::LimitedOp;

/// Java's `ServiceRouteRule`.
fn route_rule(p: &Props) -> Result<RouteRule, DecodeError> {
    let [service_id, name, description, status, strategy] =
        p.texts_of(["serviceId", "name", "description", "status", "strategy"])?;
    Ok(RouteRule {
        route_rule_id: p.long("routeRuleId")?.unwrap_or(0),
        service_id: service_id.unwrap_or_default(),
        name: name.unwrap_or_default(),
        description,
        status,
        strategy,
    })
}

/// Java's `RouteRuleGroup`.
fn route_rule_group(p: &Props) -> Result<RouteRuleGroup, DecodeError> {
    let id = |name| Ok::<_, DecodeError>(p.long(name)?.unwrap_or(0));
    Ok(RouteRuleGroup {
        route_rule_group_id: id("routeRuleGroupId")?,
        route_rule_id: id("routeRuleId")?,
        group_id: id("groupId")?,
        weight: p.long("weight")?,
        unreleased_weight: p.long("unreleasedWeight")?,
    })
}

/// `insert-route-rules.json`: `{"routeRules":[ServiceRouteRule]}`.
pub(super) const INSERT: Writes = Writes::checked("insert route-rules failed.", |_, p| {
    rows(&p, "routeRules", route_rule, Write::InsertRouteRules)
});

/// `update-route-rules.json`, as insert.
pub(super) const UPDATE: Writes = Writes::checked("update route-rules failed.", |_, p| {
    rows(&p, "routeRules", route_rule, Write::UpdateRouteRules)
});

/// `delete-route-rules.json`: `{"routeRuleIds":[long]}`.
pub(super) const DELETE: Writes = Writes::checked("delete route-rules failed.", |_, p| {
    ids(&p, "routeRuleIds", Write::DeleteRouteRules)
});

/// `create-route-rule.json`: `{"routeRule":ServiceRouteRule,"groups":[GroupWeight]}`; the store
/// checks what Java's `createServiceRouteRules` checks.
pub(super) const CREATE: Writes = Writes::checked("create route-rule failed.", |_, p| {
    let Some(rule) = p.object("routeRule")? else {
        // Java dereferences the missing rule.
        return Ok(Err(Refusal::internal("create route-rule failed.")));
    };
    let groups = p.each("groups", |g| Ok((group(g)?, g.long("weight")?)))?;
    let rule = route_rule(&rule)?;
    Ok(Ok(Write::CreateRouteRule { rule, groups }))
});

/// `insert-route-rule-groups.json`: `{"routeRuleGroups":[RouteRuleGroup]}`.
pub(super) const INSERT_GROUPS: Writes =
    Writes::checked("insert route-rule-groups failed.", |_, p| {
        rows(
            &p,
            "routeRuleGroups",
            route_rule_group,
            Write::InsertRouteRuleGroups,
        )
    });

/// `update-route-rule-groups.json`, as insert.
pub(super) const UPDATE_GROUPS: Writes =
    Writes::checked("update route-rule-groups failed.", |_, p| {
        rows(
            &p,
            "routeRuleGroups",
            route_rule_group,
            Write::UpdateRouteRuleGroups,
        )
    });

/// `release-route-rule-groups.json`: the same list, each group's waiting weight released.
/// Java's message when it fails is the one of `get-route-rule-groups`.
pub(super) const RELEASE_GROUPS: Writes =
    Writes::checked("get route-rule-groups failed.", |_, p| {
        rows(
            &p,
            "routeRuleGroups",
            route_rule_group,
            Write::ReleaseRouteRuleGroups,
        )
    });

/// `delete-route-rule-groups.json`: `{"routeRuleGroupIds":[long]}`.
pub(super) const DELETE_GROUPS: Writes =
    Writes::checked("delete route-rule-groups failed.", |_, p| {
        ids(&p, "routeRuleGroupIds", Write::DeleteRouteRuleGroups)
    });

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
pub(super) const ALL_ROUTE_RULES: Read<RouteRule> = Read::of(
    "routeRules",
    |data| &data.route_rules,
    |out, rules| write_list(out, rules, write_route_rule),
);

/// `get-route-rules.json`: `{"routeRuleId","serviceId","name","status"}` → `routeRules`.
pub(super) const ROUTE_RULES: Read<RouteRule> = ALL_ROUTE_RULES
    .filtered(&[
        Column::id("routeRuleId", |r| r.route_rule_id),
        Column::text("serviceId", |r| Some(&r.service_id)),
        Column::text("name", |r| Some(&r.name)),
        Column::text("status", |r| r.status.as_deref()),
    ])
    .limited(LimitedOp::GetRouteRules);

/// `get-all-route-rule-groups.json` → `routeRuleGroups`.
pub(super) const ALL_ROUTE_RULE_GROUPS: Read<RouteRuleGroup> = Read::of(
    "routeRuleGroups",
    |data| &data.route_rule_groups,
    |out, rows| write_list(out, rows, write_route_rule_group),
);

/// `get-route-rule-groups.json`: `{"routeRuleGroupId","routeRuleId","groupId"}` →
/// `routeRuleGroups`.
pub(super) const ROUTE_RULE_GROUPS: Read<RouteRuleGroup> = ALL_ROUTE_RULE_GROUPS
    .filtered(&[
        Column::id("routeRuleGroupId", |r| r.route_rule_group_id),
        Column::id("routeRuleId", |r| r.route_rule_id),
        Column::id("groupId", |r| r.group_id),
    ])
    .limited(LimitedOp::GetRouteRuleGroups);
