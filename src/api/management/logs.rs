//! §4.10's operation logs: who changed what and when, one log per kind of management data,
//! queried in the store by the filters Java's requests carry.

use super::json::{write_list, write_object, Field};
use super::requests::{self, Props};
use super::{found, Refusal};
use crate::api::envelope::malformed;
use crate::api::{Context, Input, Response};
use crate::decode::DecodeError;
use crate::management::store::{LogKind, LogQuery, LogValue};
use crate::management::LogRow;

/// Most rows one query answers, the newest first: logs grow without end, and Java's query had
/// no bound at all (a deliberate deviation).
const LIMIT: usize = 1000;

/// The filter fields of each log's request (Java's `Get*LogsRequest`), by their JSON names.
fn filter_fields(log: LogKind) -> &'static str {
    match log {
        LogKind::Instance => "regionId serviceId instanceId operation operatorId complete",
        LogKind::Server => "regionId serverId operation operatorId complete",
        LogKind::GroupOperation => "groupId operation operatorId complete",
        LogKind::Group => "serviceId regionId zoneId name appId operation operatorId",
        LogKind::RouteRule => "serviceId name operation operatorId",
        LogKind::RouteRuleGroup => "groupId routeRuleId operation operatorId",
        LogKind::ZoneOperation => "regionId serviceId zoneId operation operatorId complete",
        LogKind::GroupInstance => "groupId instanceId operation operatorId",
        LogKind::ServiceInstance => "serviceId instanceId operation operatorId",
    }
}

/// The request's filters, each typed as Java types it (`complete` a `Boolean`, the group and
/// route rule ids `Long`s, the rest strings); a field left null filters nothing.
fn read_filters(p: &Props, log: LogKind) -> Result<Vec<(&'static str, LogValue)>, DecodeError> {
    let mut filters = Vec::new();
    for name in filter_fields(log).split(' ') {
        let value = match name {
            "complete" => p.boolean(name)?.map(LogValue::Bool),
            "groupId" | "routeRuleId" => p.long(name)?.map(LogValue::Int),
            _ => p.text(name)?.map(LogValue::Text),
        };
        filters.extend(value.map(|v| (name, v)));
    }
    Ok(filters)
}

/// A log row, its fields already in alphabetical order.
fn write_row(out: &mut Vec<u8>, row: &LogRow) {
    let fields: Vec<(&str, Field)> = row
        .0
        .iter()
        .map(|(name, value)| {
            let field = match value {
                LogValue::Null => Field::Text(None),
                LogValue::Text(s) => Field::Text(Some(s)),
                LogValue::Int(n) => Field::Int(Some(*n)),
                LogValue::Bool(b) => Field::Bool(Some(*b)),
            };
            (*name, field)
        })
        .collect();
    write_object(out, &fields);
}

/// `log/<kind>-logs.json`: the rows matching the request's filters → `logs`.
pub(super) async fn query(ctx: &Context<'_>, input: Input<'_>, log: LogKind) -> Response {
    let filters = match requests::parse(input.body, |p| read_filters(&p, log)) {
        Err(e) => return malformed(e),
        Ok(None) => return Refusal::bad_request("request is null").reply(&["logs"]),
        Ok(Some(filters)) => filters,
    };
    let query = LogQuery {
        kind: log,
        filters,
        limit: LIMIT,
    };
    match ctx.management.logs(query).await {
        Ok(rows) => {
            let mut logs = Vec::new();
            write_list(&mut logs, &rows, write_row);
            found("logs", &logs)
        }
        Err(e) => Refusal::internal(e.to_string()).reply(&["logs"]),
    }
}
