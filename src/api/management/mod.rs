//! The management endpoints (Java's `ManagementController` and its zone, group, canary and log
//! siblings; see `docs/management.md`): pull-outs, zones, groups and route rules, canary ips,
//! and the operation logs, kept in the management store.
//!
//! Every write goes one way ([`write`]): the body is read; the caller must be allowed to write
//! (the `--management-token`, or a loopback client when there is none); the node must be up
//! (Java's `checkCurrentNode`); there must be a request; then the endpoint's own checks. The
//! store commits the change and every shard applies it before the reply, so the next discovery
//! call on any connection shows it (Java sleeps two seconds and hopes). Reads ([`read`]) filter
//! the management data as last loaded, or ask the shards' management view.

mod canary;
mod groups;
mod json;
mod logs;
mod operations;
mod requests;
mod route_rules;
mod service_instances;
mod views;
mod zones;

use std::collections::HashMap;
use std::hash::Hash;

use artemis_shards::management::{ManagementData, ManagementView, OperationContext};
use artemis_shards::ErrorCode;

use super::decode::DecodeError;
use super::envelope::{fail_status, failure, malformed, object, SUCCESS};
use super::{rate_limited, Context, Input, Part, Response};
use crate::management::store::{LogKind, Write};
use crate::management::{Change, StoreError};
use crate::rate_limit::LimitedOp;
use crate::router::ManagementEndpoint;
use requests::Props;

/// Answers one request for a management endpoint.
pub(super) async fn respond(
    ctx: &Context<'_>,
    endpoint: ManagementEndpoint,
    input: Input<'_>,
) -> Response {
    use ManagementEndpoint as M;
    use Rules::{Operator, Plain, WithCause};
    match endpoint {
        M::OperateInstance => {
            write(
                ctx,
                input,
                Plain,
                "Update instance failed.",
                operations::operate_instance,
            )
            .await
        }
        M::OperateServer => {
            write(
                ctx,
                input,
                Plain,
                "Update server failed.",
                operations::operate_server,
            )
            .await
        }
        M::InstanceOperations => read(ctx, input, operations::INSTANCE_OPERATIONS).await,
        M::ServerOperations => read(ctx, input, operations::SERVER_OPERATIONS).await,
        M::AllInstanceOperations => read(ctx, input, operations::ALL_INSTANCE_OPERATIONS).await,
        M::AllServerOperations => read(ctx, input, operations::ALL_SERVER_OPERATIONS).await,
        M::InstanceDown => down(ctx, input, operations::instance, |view, i| {
            view.is_instance_down(&i)
        }),
        M::ServerDown => down(
            ctx,
            input,
            operations::down_server,
            operations::is_server_down,
        ),
        M::Services => views::services(ctx, input).await,
        M::Service => views::service(ctx, input).await,
        M::OperateZoneOperations => {
            write(
                ctx,
                input,
                WithCause,
                "operate zone-operations failed.",
                zones::operate,
            )
            .await
        }
        M::GetAllZoneOperations => read(ctx, input, zones::ALL_ZONE_OPERATIONS).await,
        M::GetZoneOperations => read(ctx, input, zones::ZONE_OPERATIONS).await,
        M::GetZoneOperationsList => read(ctx, input, zones::ZONE_OPERATIONS_LIST).await,
        M::IsZoneDown => down(ctx, input, zones::zone_key, zones::is_zone_down),
        M::InsertRouteRules => {
            write(
                ctx,
                input,
                Operator,
                "insert route-rules failed.",
                route_rules::insert,
            )
            .await
        }
        M::UpdateRouteRules => {
            write(
                ctx,
                input,
                Operator,
                "update route-rules failed.",
                route_rules::update,
            )
            .await
        }
        M::DeleteRouteRules => {
            write(
                ctx,
                input,
                Operator,
                "delete route-rules failed.",
                route_rules::delete,
            )
            .await
        }
        M::GetAllRouteRules => read(ctx, input, route_rules::ALL_ROUTE_RULES).await,
        M::GetRouteRules => read(ctx, input, route_rules::ROUTE_RULES).await,
        M::CreateRouteRule => {
            write(
                ctx,
                input,
                Operator,
                "create route-rule failed.",
                route_rules::create,
            )
            .await
        }
        M::InsertRouteRuleGroups => {
            let failed = "insert route-rule-groups failed.";
            write(ctx, input, Operator, failed, route_rules::insert_groups).await
        }
        M::UpdateRouteRuleGroups => {
            let failed = "update route-rule-groups failed.";
            write(ctx, input, Operator, failed, route_rules::update_groups).await
        }
        M::ReleaseRouteRuleGroups => {
            // Java's message for a failed release, as it stands.
            let failed = "get route-rule-groups failed.";
            write(ctx, input, Operator, failed, route_rules::release_groups).await
        }
        M::DeleteRouteRuleGroups => {
            let failed = "delete route-rule-groups failed.";
            write(ctx, input, Operator, failed, route_rules::delete_groups).await
        }
        M::GetAllRouteRuleGroups => read(ctx, input, route_rules::ALL_ROUTE_RULE_GROUPS).await,
        M::GetRouteRuleGroups => read(ctx, input, route_rules::ROUTE_RULE_GROUPS).await,
        M::InsertGroups => {
            write(
                ctx,
                input,
                Operator,
                "insert groups failed.",
                groups::insert,
            )
            .await
        }
        M::UpdateGroups => {
            write(
                ctx,
                input,
                Operator,
                "update groups failed.",
                groups::update,
            )
            .await
        }
        M::DeleteGroups => {
            write(ctx, input, Operator, "delete group failed.", groups::delete).await
        }
        M::GetAllGroups => read(ctx, input, groups::ALL_GROUPS).await,
        M::GetGroups => read(ctx, input, groups::GROUPS).await,
        M::InsertGroupTags => {
            write(
                ctx,
                input,
                Plain,
                "insert group tag failed.",
                groups::insert_tags,
            )
            .await
        }
        M::UpdateGroupTags => {
            write(
                ctx,
                input,
                Plain,
                "update group tag failed.",
                groups::update_tags,
            )
            .await
        }
        M::DeleteGroupTags => {
            write(
                ctx,
                input,
                Plain,
                "delete group-tags failed.",
                groups::delete_tags,
            )
            .await
        }
        M::GetAllGroupTags => read(ctx, input, groups::ALL_GROUP_TAGS).await,
        M::GetGroupTags => read(ctx, input, groups::GROUP_TAGS).await,
        M::OperateGroupOperations => {
            let failed = "operate group operation failed.";
            write(ctx, input, Operator, failed, groups::operate_all).await
        }
        M::OperateGroupOperation => {
            let failed = "operate group operation failed.";
            write(ctx, input, Operator, failed, groups::operate_one).await
        }
        M::GetAllGroupOperations => read(ctx, input, groups::ALL_GROUP_OPERATIONS).await,
        M::GetGroupOperations => read(ctx, input, groups::GROUP_OPERATIONS).await,
        M::InsertGroupInstances => {
            let failed = "insert group instances failed.";
            write(ctx, input, Operator, failed, groups::insert_instances).await
        }
        M::DeleteGroupInstances => {
            let failed = "delete group instances failed.";
            write(ctx, input, Operator, failed, groups::delete_instances).await
        }
        M::GetGroupInstances => read(ctx, input, groups::GROUP_INSTANCES).await,
        M::InsertServiceInstances => {
            let failed = "insert service instances failed.";
            write(ctx, input, Operator, failed, service_instances::insert).await
        }
        M::DeleteServiceInstances => {
            let failed = "delete service instances failed.";
            write(ctx, input, Operator, failed, service_instances::delete).await
        }
        M::GetServiceInstances => read(ctx, input, service_instances::SERVICE_INSTANCES).await,
        M::UpdateCanaryIps => write(ctx, input, Operator, "update canary ips", canary::ips).await,
        M::InstanceOperationLogs => logs::query(ctx, input, LogKind::Instance).await,
        M::ServerOperationLogs => logs::query(ctx, input, LogKind::Server).await,
        M::GroupOperationLogs => logs::query(ctx, input, LogKind::GroupOperation).await,
        M::GroupLogs => logs::query(ctx, input, LogKind::Group).await,
        M::RouteRuleLogs => logs::query(ctx, input, LogKind::RouteRule).await,
        M::RouteRuleGroupLogs => logs::query(ctx, input, LogKind::RouteRuleGroup).await,
        M::ZoneOperationLogs => logs::query(ctx, input, LogKind::ZoneOperation).await,
        M::GroupInstanceLogs => logs::query(ctx, input, LogKind::GroupInstance).await,
        M::ServiceInstanceLogs => logs::query(ctx, input, LogKind::ServiceInstance).await,
    }
}

/// Java's refusal of a request before the store sees it: HTTP 200, a `fail` status.
struct Refusal {
    code: ErrorCode,
    message: String,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Refusal {
        Refusal::new(ErrorCode::BadRequest, message)
    }

    fn internal(message: impl Into<String>) -> Refusal {
        Refusal::new(ErrorCode::InternalServiceError, message)
    }

    /// The failed reply, its data fields `null`.
    fn reply(&self, null_fields: &[&str]) -> Response {
        failure(self.code, Some(&self.message), null_fields)
    }
}

/// A request as the endpoint reads it, or Java's refusal of it.
type Asked<T> = Result<T, Refusal>;

/// Reads a write from its request (the node's settings at hand, for canary's region).
type ReadWrite = fn(&Context<'_>, Props<'_, '_>) -> Result<Asked<Write>, DecodeError>;

/// What Java checks of a write beside the node and the request, and how it words a failure.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// Only the endpoint's own checks; a store failure is the endpoint's message.
    Plain,
    /// `BusinessDao`: the operator's `operation`, `extensions`, `operatorId` and `token` must
    /// not be blank, else the endpoint's message.
    Operator,
    /// `ZoneServiceImpl`: a store failure is the endpoint's message followed by the cause.
    WithCause,
}

/// `{"responseStatus":SUCCESS}`, the reply to every write that went through.
const WRITTEN: &[u8] =
    br#"{"responseStatus":{"errorCode":"success","message":"","status":"success"}}"#;

/// A management write: see the module's comment for the order of the checks.
async fn write(
    ctx: &Context<'_>,
    input: Input<'_>,
    rules: Rules,
    failed: &str,
    read: ReadWrite,
) -> Response {
    let asked = requests::parse(input.body, |p| Ok((operation_context(&p)?, read(ctx, p)?)));
    let asked = match asked {
        Err(e) => return malformed(e),
        Ok(asked) => asked,
    };
    let body_token = asked.as_ref().and_then(|(c, _)| c.token.as_deref());
    if let Err(refusal) = authorize(ctx, input.authorization, input.from_loopback, body_token) {
        return refusal.reply(&[]);
    }
    if !ctx.management.is_loaded() {
        return not_up(ctx).reply(&[]);
    }
    let Some((mut context, write)) = asked else {
        return Refusal::bad_request("request is null").reply(&[]);
    };
    if rules == Rules::Operator && !names_operator(&context) {
        return Refusal::internal(failed).reply(&[]);
    }
    let write = match write {
        Ok(write) => write,
        Err(refusal) => return refusal.reply(&[]),
    };
    redact_management_token(ctx, &mut context);
    match ctx.management.write(Change { write, context }).await {
        Ok(()) => Response::json(vec![Part::Static(WRITTEN)]),
        Err(StoreError::Failed(_)) if rules != Rules::WithCause => {
            Refusal::internal(failed).reply(&[])
        }
        Err(e @ StoreError::Failed(_)) => Refusal::internal(format!("{failed}{e}")).reply(&[]),
        // What the store says: the database is down, or the change breaks a rule of the data.
        Err(e) => Refusal::internal(e.to_string()).reply(&[]),
    }
}

/// Java's `OperationContext`, which every write request extends: `extensions` is `"{}"`
/// unless the request names it.
fn operation_context(p: &Props) -> Result<OperationContext, DecodeError> {
    Ok(OperationContext {
        operation: p.text("operation")?,
        operator_id: p.text("operatorId")?,
        token: p.text("token")?,
        reason: p.text("reason")?,
        extensions: p.text_or("extensions", "{}")?,
    })
}

/// `BusinessDao`'s check: the context says who did what.
fn names_operator(context: &OperationContext) -> bool {
    [
        &context.operation,
        &context.extensions,
        &context.operator_id,
        &context.token,
    ]
    .iter()
    .all(|field| field.as_deref().is_some_and(|s| !s.trim().is_empty()))
}

/// The operation logs keep the request's `token` and anyone may read them: the management
/// token, when that is what the request carried, is not kept.
fn redact_management_token(ctx: &Context<'_>, context: &mut OperationContext) {
    let secret = ctx.node.config.management_token.as_deref();
    if let (Some(secret), Some(token)) = (secret, context.token.as_mut()) {
        if same_secret(token.as_bytes(), secret.as_bytes()) {
            *token = "(management token)".to_string();
        }
    }
}

/// Whether the caller may write: with `--management-token`, the request carries it (as
/// `Authorization: Bearer <token>` or in its `token` field); without, it comes from loopback.
fn authorize(
    ctx: &Context<'_>,
    authorization: Option<&[u8]>,
    from_loopback: bool,
    body_token: Option<&str>,
) -> Result<(), Refusal> {
    let no_permission = |message: &str| Err(Refusal::new(ErrorCode::NoPermission, message));
    let Some(secret) = ctx.node.config.management_token.as_deref() else {
        return match from_loopback {
            true => Ok(()),
            false => no_permission(
                "management writes are accepted only from loopback when no --management-token is set",
            ),
        };
    };
    let bearer = authorization.and_then(bearer_token);
    let offered = [bearer, body_token.map(str::as_bytes)];
    match offered
        .into_iter()
        .flatten()
        .any(|token| same_secret(token, secret.as_bytes()))
    {
        true => Ok(()),
        false => no_permission("management token missing or wrong"),
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    let header = header.trim_ascii();
    let (scheme, token) = header.split_at_checked(6)?;
    match scheme.eq_ignore_ascii_case(b"bearer") && token.first()?.is_ascii_whitespace() {
        true => Some(token.trim_ascii()),
        false => None,
    }
}

/// Compares a token with the secret in time that depends on their lengths only.
fn same_secret(token: &[u8], secret: &[u8]) -> bool {
    let differ = token
        .iter()
        .zip(secret)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    token.len() == secret.len() && std::hint::black_box(differ) == 0
}

/// Java's refusal of a write while the node is not up (its typo kept).
fn not_up(ctx: &Context<'_>) -> Refusal {
    // The node's discovery refusal describes its status as Java's `ServiceNodeStatus` does;
    // Java's management check words the same status without "discovery".
    let status = &ctx.status().discovery_refusal;
    Refusal::new(
        ErrorCode::ServiceUnavailable,
        status.replacen("Serivce discovery is", "Serivce is", 1),
    )
}

/// A management read answered from the management data: how its request is read, and how the
/// reply's one data field is written.
struct Read<Q> {
    /// The reply's data field, `null` when the request fails.
    field: &'static str,
    /// Java's rate limit on the endpoint, if any.
    limited: Option<LimitedOp>,
    /// For the endpoints that also take GET: the request from the query string, which is
    /// also what a `null` body means (Java reads a missing request as no region).
    query: Option<fn(&Input<'_>) -> Q>,
    request: fn(Props<'_, '_>) -> Result<Asked<Q>, DecodeError>,
    render: fn(&ManagementData, Q, &mut Vec<u8>),
}

impl<Q> Read<Q> {
    /// Reading `field`, of a request read by `request`, written by `render`.
    const fn of(
        field: &'static str,
        request: fn(Props<'_, '_>) -> Result<Asked<Q>, DecodeError>,
        render: fn(&ManagementData, Q, &mut Vec<u8>),
    ) -> Read<Q> {
        Read {
            field,
            limited: None,
            query: None,
            request,
            render,
        }
    }

    /// Under `op`'s rate limit.
    const fn limited(self, op: LimitedOp) -> Read<Q> {
        Read {
            limited: Some(op),
            ..self
        }
    }

    /// Also answering GET, with the request read from the query by `query`.
    const fn or_query(self, query: fn(&Input<'_>) -> Q) -> Read<Q> {
        Read {
            query: Some(query),
            ..self
        }
    }
}

/// A management read: rate limit, request, then the data as last loaded.
async fn read<Q>(ctx: &Context<'_>, input: Input<'_>, spec: Read<Q>) -> Response {
    if let Some(limited) = spec.limited.and_then(|op| rate_limited(ctx, op)) {
        return limited;
    }
    let asked = match (spec.query, input.is_get()) {
        (Some(query), true) => Ok(Some(Ok(query(&input)))),
        _ => requests::parse(input.body, spec.request),
    };
    let asked = match asked {
        Err(e) => return malformed(e),
        Ok(Some(asked)) => asked,
        Ok(None) => match spec.query {
            Some(query) => Ok(query(&input)),
            None => Err(Refusal::bad_request("request is null")),
        },
    };
    let request = match asked {
        Ok(request) => request,
        Err(refusal) => return refusal.reply(&[spec.field]),
    };
    match ctx.management.data().await {
        Ok(data) => {
            let mut value = Vec::new();
            (spec.render)(&data, request, &mut value);
            found(spec.field, &value)
        }
        Err(e) => Refusal::internal(e.to_string()).reply(&[spec.field]),
    }
}

/// A successful reply: `responseStatus` and one data field, in alphabetical order.
fn found(field: &str, value: &[u8]) -> Response {
    let mut fields = [(field, value), ("responseStatus", SUCCESS)];
    fields.sort_by_key(|(key, _)| *key);
    Response::json(vec![Part::Owned(object(&fields))])
}

/// `{"down":bool,"responseStatus":..}`: whether what the request names (read by `read`) is
/// pulled out, as `judge` finds it in the shards' management view (Java's in-memory caches). A
/// failure says `"down":false`, as Java's primitive field does.
fn down<K>(
    ctx: &Context<'_>,
    input: Input<'_>,
    read: fn(Props<'_, '_>) -> Result<Asked<K>, DecodeError>,
    judge: fn(&ManagementView, K) -> bool,
) -> Response {
    let judged = match requests::parse(input.body, read) {
        Err(e) => return malformed(e),
        Ok(None) => Err(Refusal::bad_request("request is null")),
        Ok(Some(asked)) => asked.map(|key| judge(&ctx.link.management_view(), key)),
    };
    let (down, status) = match judged {
        Ok(down) => (down, SUCCESS.to_vec()),
        Err(refusal) => (false, fail_status(refusal.code, Some(&refusal.message))),
    };
    let down: &[u8] = if down { b"true" } else { b"false" };
    Response::json(vec![Part::Owned(object(&[
        ("down", down),
        ("responseStatus", &status),
    ]))])
}

/// Rows grouped by `key`, in the order keys first appear, with each group's items (each
/// once): Java's `*Operations` and `GroupTags` DTOs, built from one row per key and item.
fn grouped<'a, R: 'a, K: Hash + Eq, V: PartialEq>(
    rows: impl IntoIterator<Item = &'a R>,
    key: impl Fn(&R) -> K,
    item: impl Fn(&'a R) -> V,
) -> Vec<(&'a R, Vec<V>)> {
    let mut at: HashMap<K, usize> = HashMap::new();
    let mut groups: Vec<(&R, Vec<V>)> = Vec::new();
    for row in rows {
        let i = *at.entry(key(row)).or_insert_with(|| {
            groups.push((row, Vec::new()));
            groups.len() - 1
        });
        let item = item(row);
        if !groups[i].1.contains(&item) {
            groups[i].1.push(item);
        }
    }
    groups
}

/// Writes the first of `found` with `write`, or `null` when there is none (Java's lookups of
/// one key).
fn write_first<T>(out: &mut Vec<u8>, found: Vec<T>, write: fn(&mut Vec<u8>, T)) {
    match found.into_iter().next() {
        Some(one) => write(out, one),
        None => out.extend_from_slice(b"null"),
    }
}

/// Java's DAO filters: a text filter left `null` takes every row, and compares as MySQL's
/// default collation does, whatever the case.
fn text_matches(filter: &Option<String>, value: Option<&str>) -> bool {
    filter
        .as_deref()
        .is_none_or(|f| value.is_some_and(|v| v.eq_ignore_ascii_case(f)))
}

/// An id filter left `null` takes every row.
fn id_matches(filter: Option<i64>, value: i64) -> bool {
    filter.is_none_or(|f| f == value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"  bearer   abc  "), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearerabc"), None);
        assert_eq!(bearer_token(b"Bearer"), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cre", b"s3cret"));
        assert!(!same_secret(b"s3cret!", b"s3cret"));
        assert!(!same_secret(b"S3cret", b"s3cret"));
        assert!(!same_secret(b"", b"s3cret"));
    }

    #[test]
    fn the_operator_must_be_named_in_full() {
        let full = OperationContext {
            operation: Some("op".into()),
            operator_id: Some("me".into()),
            token: Some("t".into()),
            reason: None,
            extensions: Some("{}".into()),
        };
        assert!(names_operator(&full));
        for blank in [None, Some(" ".to_string())] {
            let mut missing = full.clone();
            missing.token = blank;
            assert!(!names_operator(&missing));
        }
    }

    #[test]
    fn rows_are_grouped_by_key_in_first_seen_order() {
        let rows = [("A", "x"), ("b", "y"), ("a", "x"), ("a", "z")];
        let found = grouped(&rows, |r| r.0.to_lowercase(), |r| r.1);
        let shown: Vec<(&str, Vec<&str>)> =
            found.iter().map(|(r, ops)| (r.0, ops.clone())).collect();
        assert_eq!(shown, vec![("A", vec!["x", "z"]), ("b", vec!["y"])]);
    }

    #[test]
    fn filters_left_null_take_everything() {
        assert!(text_matches(&None, None));
        assert!(text_matches(&Some("SVC".into()), Some("svc")));
        assert!(!text_matches(&Some("svc".into()), None));
        assert!(id_matches(None, 3));
        assert!(!id_matches(Some(2), 3));
    }
}
