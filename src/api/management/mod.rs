//! The management endpoints (Java's `ManagementController` and its zone, group, canary and log
//! siblings; see `docs/api.md`): pull-outs, zones, groups and route rules, logical instances,
//! canary ips and the operation logs, kept in the management store.
//!
//! Each family module declares its endpoints as data: a write is a [`writes::Writes`] (Java's
//! checks and message, and how its request is read), a read a [`reads::Read`] (the rows, the
//! request's filter fields, how the reply is written). `writes` and `reads` run them; the
//! `*-down.json` queries ask the shards' management view, the service views the shards.

mod canary;
mod groups;
mod json;
mod logs;
mod operations;
mod reads;
mod requests;
mod route_rules;
mod service_instances;
mod views;
mod writes;
mod zones;

use artemis_shards::management::ManagementView;
use artemis_shards::ErrorCode;

use super::envelope::{fail_status, failure, malformed, object, SUCCESS};
use super::{Context, Input, Part, Response};
use crate::decode::DecodeError;
use crate::management::store::LogKind;
use crate::metrics::Outcome;
use crate::router::ManagementEndpoint;
use reads::read;
use requests::Props;
use writes::write;

/// Answers one request for a management endpoint.
pub(super) async fn respond(
    ctx: &Context<'_>,
    endpoint: ManagementEndpoint,
    input: Input<'_>,
) -> Response {
    use ManagementEndpoint as M;
    match endpoint {
        M::OperateInstance => write(ctx, input, &operations::OPERATE_INSTANCE).await,
        M::OperateServer => write(ctx, input, &operations::OPERATE_SERVER).await,
        M::InstanceOperations => read(ctx, input, &operations::INSTANCE_OPERATIONS).await,
        M::ServerOperations => read(ctx, input, &operations::SERVER_OPERATIONS).await,
        M::AllInstanceOperations => read(ctx, input, &operations::ALL_INSTANCE_OPERATIONS).await,
        M::AllServerOperations => read(ctx, input, &operations::ALL_SERVER_OPERATIONS).await,
        M::InstanceDown => down(ctx, input, operations::instance, |view, instance| {
            view.is_instance_down(&instance)
        }),
        M::ServerDown => down(ctx, input, operations::server_key, |view, (region, ip)| {
            view.is_server_down(&region, &ip)
        }),
        M::Services => views::services(ctx, input).await,
        M::Service => views::service(ctx, input).await,
        M::OperateZoneOperations => write(ctx, input, &zones::OPERATE).await,
        M::GetAllZoneOperations => read(ctx, input, &zones::ALL_ZONE_OPERATIONS).await,
        M::GetZoneOperations => read(ctx, input, &zones::ZONE_OPERATIONS).await,
        M::GetZoneOperationsList => read(ctx, input, &zones::ZONE_OPERATIONS_LIST).await,
        M::IsZoneDown => down(ctx, input, zones::zone_key, zones::is_zone_down),
        M::InsertRouteRules => write(ctx, input, &route_rules::INSERT).await,
        M::UpdateRouteRules => write(ctx, input, &route_rules::UPDATE).await,
        M::DeleteRouteRules => write(ctx, input, &route_rules::DELETE).await,
        M::GetAllRouteRules => read(ctx, input, &route_rules::ALL_ROUTE_RULES).await,
        M::GetRouteRules => read(ctx, input, &route_rules::ROUTE_RULES).await,
        M::CreateRouteRule => write(ctx, input, &route_rules::CREATE).await,
        M::InsertRouteRuleGroups => write(ctx, input, &route_rules::INSERT_GROUPS).await,
        M::UpdateRouteRuleGroups => write(ctx, input, &route_rules::UPDATE_GROUPS).await,
        M::ReleaseRouteRuleGroups => write(ctx, input, &route_rules::RELEASE_GROUPS).await,
        M::DeleteRouteRuleGroups => write(ctx, input, &route_rules::DELETE_GROUPS).await,
        M::GetAllRouteRuleGroups => read(ctx, input, &route_rules::ALL_ROUTE_RULE_GROUPS).await,
        M::GetRouteRuleGroups => read(ctx, input, &route_rules::ROUTE_RULE_GROUPS).await,
        M::InsertGroups => write(ctx, input, &groups::INSERT).await,
        M::UpdateGroups => write(ctx, input, &groups::UPDATE).await,
        M::DeleteGroups => write(ctx, input, &groups::DELETE).await,
        M::GetAllGroups => read(ctx, input, &groups::ALL_GROUPS).await,
        M::GetGroups => read(ctx, input, &groups::GROUPS).await,
        M::InsertGroupTags => write(ctx, input, &groups::INSERT_TAGS).await,
        M::UpdateGroupTags => write(ctx, input, &groups::UPDATE_TAGS).await,
        M::DeleteGroupTags => write(ctx, input, &groups::DELETE_TAGS).await,
        M::GetAllGroupTags => read(ctx, input, &groups::ALL_GROUP_TAGS).await,
        M::GetGroupTags => read(ctx, input, &groups::GROUP_TAGS).await,
        M::OperateGroupOperations => write(ctx, input, &groups::OPERATE_ALL).await,
        M::OperateGroupOperation => write(ctx, input, &groups::OPERATE_ONE).await,
        M::GetAllGroupOperations => read(ctx, input, &groups::ALL_GROUP_OPERATIONS).await,
        M::GetGroupOperations => read(ctx, input, &groups::GROUP_OPERATIONS).await,
        M::InsertGroupInstances => write(ctx, input, &groups::INSERT_INSTANCES).await,
        M::DeleteGroupInstances => write(ctx, input, &groups::DELETE_INSTANCES).await,
        M::GetGroupInstances => read(ctx, input, &groups::GROUP_INSTANCES).await,
        M::InsertServiceInstances => write(ctx, input, &service_instances::INSERT).await,
        M::DeleteServiceInstances => write(ctx, input, &service_instances::DELETE).await,
        M::GetServiceInstances => read(ctx, input, &service_instances::SERVICE_INSTANCES).await,
        M::UpdateCanaryIps => write(ctx, input, &canary::UPDATE_IPS).await,
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
    let (down, status, outcome) = match judged {
        Ok(down) => (down, SUCCESS.to_vec(), Outcome::Success),
        Err(refusal) => (
            false,
            fail_status(refusal.code, Some(&refusal.message)),
            Outcome::Fail(refusal.code),
        ),
    };
    let down: &[u8] = if down { b"true" } else { b"false" };
    let body = object(&[("down", down), ("responseStatus", &status)]);
    Response::json_with(outcome, vec![Part::Owned(body)])
}
