//! Our own replication endpoints for anti-entropy, under a path Java never uses:
//! `replication/registry/digest.json` (each service's instance count and hash) and
//! `replication/registry/service-states.json` (the instances of the services named, with their
//! leases' times, and the removals this node remembers of them; see `cluster::anti_entropy`).
//!
//! A peer that compares digests pulls only the services that differ, so neither reply is ever a
//! full copy of what did not change. Both are guarded as the other replication endpoints are.

use std::io::Write;

use artemis_shards::json::write_str;

use super::envelope::{malformed, SUCCESS};
use super::replication::refusal;
use super::{Context, Input, Part, Response};
use crate::decode;

/// `digest.json`: `{"responseStatus":..,"services":{"<id>":{"count":N,"hash":"<hex>"},..}}`, ids
/// lowercased; a POST's body is ignored.
pub(super) async fn digest(ctx: &Context<'_>, input: Input<'_>) -> Response {
    if let Some(refused) = refusal(ctx, &input, "services") {
        return refused;
    }
    let digests = ctx.link.digest().await;
    let mut body = head(digests.len() * 64);
    for (i, (service_id, digest)) in digests.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        write_str(&mut body, service_id);
        let (count, hash) = (digest.count, digest.hash);
        let _ = write!(body, r#":{{"count":{count},"hash":"{hash:016x}"}}"#);
    }
    body.extend_from_slice(b"}}");
    Response::json(vec![Part::Owned(body)])
}

/// `service-states.json` for `{"serviceIds":[..]}`: per service named (lowercased), its
/// instances (`{"instance":{..},"registrationTime":ms,"renewalTime":ms}`) and its remembered
/// removals (`{"expired":bool,"instanceId":..,"regionId":..,"serviceId":..,"time":ms}`).
pub(super) async fn service_states(ctx: &Context<'_>, input: Input<'_>) -> Response {
    if let Some(refused) = refusal(ctx, &input, "services") {
        return refused;
    }
    let request = match decode::leases_request(input.body) {
        Err(e) => return malformed(e),
        Ok(request) => request,
    };
    let mut service_ids: Vec<String> = request
        .and_then(|r| r.service_ids)
        .into_iter()
        .flatten()
        .flatten()
        .map(|id| id.to_lowercase())
        .collect();
    service_ids.sort_unstable();
    service_ids.dedup();
    let states = ctx.link.service_states(service_ids).await;
    let mut body = head(0);
    for (i, (service_id, state)) in states.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        write_str(&mut body, service_id);
        body.extend_from_slice(br#":{"instances":["#);
        for (j, held) in state.instances.iter().enumerate() {
            if j > 0 {
                body.push(b',');
            }
            body.extend_from_slice(br#"{"instance":"#);
            body.extend_from_slice(&held.instance);
            let (registered, renewed) = (held.registration_ms, held.renewal_ms);
            let _ = write!(
                body,
                r#","registrationTime":{registered},"renewalTime":{renewed}}}"#
            );
        }
        body.extend_from_slice(br#"],"removals":["#);
        for (j, (key, removal)) in state.removals.iter().enumerate() {
            if j > 0 {
                body.push(b',');
            }
            let _ = write!(body, r#"{{"expired":{},"instanceId":"#, removal.expired);
            write_str(&mut body, &key.instance_id);
            body.extend_from_slice(br#","regionId":"#);
            write_str(&mut body, &key.region_id);
            body.extend_from_slice(br#","serviceId":"#);
            write_str(&mut body, &key.service_id);
            let _ = write!(body, r#","time":{}}}"#, removal.time_ms);
        }
        body.extend_from_slice(b"]}");
    }
    body.extend_from_slice(b"}}");
    Response::json(vec![Part::Owned(body)])
}

/// `{"responseStatus":<success>,"services":{`, with room for `more` bytes.
fn head(more: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(96 + more);
    body.extend_from_slice(br#"{"responseStatus":"#);
    body.extend_from_slice(SUCCESS);
    body.extend_from_slice(br#","services":{"#);
    body
}
