//! §4.6's management views of services (`services.json`, `service.json`): every leased
//! instance, pulled out or not, its `status` set to `down` or `up` and its lease times added to
//! its metadata; the service's logical instances (pulled-out ones too) and route rules; and, for
//! one service, its groups.
//!
//! Unlike discovery these are built per request: an operator's view, rarely asked for.

use artemis_shards::json::write_str;
use artemis_shards::management::{
    group_key, Group, ManagedInstance, ManagedService, ManagementData,
};
use artemis_shards::Instance;

use super::groups::tags_by_group;
use super::json::{write_list, write_map, write_object, write_texts, Field};
use super::requests;
use super::Refusal;
use crate::api::envelope::{malformed, object, SUCCESS};
use crate::api::{Context, Input, Part, Response};
use crate::clock::now_ms;
use crate::decode;

/// An instance as the management view shows it: `status` from its pull-out, and its lease's
/// `creationTime`, `renewalTime` and `ttl` (ms, as text) in its metadata.
fn as_managed(instance: &mut Instance, managed: &ManagedInstance) {
    instance.status = Some(if managed.down { "down" } else { "up" }.to_string());
    let metadata = instance.metadata.get_or_insert_with(Vec::new);
    for (key, ms) in [
        ("creationTime", managed.creation_ms),
        ("renewalTime", managed.renewal_ms),
        ("ttl", managed.ttl_ms),
    ] {
        let value = Some(ms.to_string());
        match metadata.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => metadata.push((key.to_string(), value)),
        }
    }
}

/// The registered instances, read back from their JSON (all at once: one parse per service).
/// An instance that cannot be read back (the registry wrote every one of them, so none) is
/// `None`, and shown as registered.
fn registered(instances: &[ManagedInstance]) -> Vec<Option<Instance>> {
    let mut body = br#"{"instances":"#.to_vec();
    write_list(&mut body, instances, |out, managed| {
        out.extend_from_slice(&managed.json)
    });
    body.push(b'}');
    let request = decode::instances_request(&mut body).ok().flatten();
    let read = request.and_then(|r| r.instances);
    read.filter(|read| read.len() == instances.len())
        .unwrap_or_else(|| vec![None; instances.len()])
}

/// Appends a Java `Service` as the management view shows it.
fn write_service(out: &mut Vec<u8>, service: &ManagedService) {
    let read = registered(&service.instances);
    out.extend_from_slice(br#"{"instances":"#);
    let shown = service.instances.iter().zip(read);
    write_list(out, shown, |out, (managed, instance)| match instance {
        Some(mut instance) => {
            as_managed(&mut instance, managed);
            instance.write_json(out);
        }
        None => out.extend_from_slice(&managed.json),
    });
    out.extend_from_slice(&service.lists);
    write_str(out, &service.service_id);
    out.push(b'}');
}

/// `services.json` (POST, or GET): every service with instances, and `version`, the time of the
/// view. The request's region and zone are ignored, as in Java; a POST body must still be JSON.
pub(super) async fn services(ctx: &Context<'_>, input: Input<'_>) -> Response {
    if !input.is_get() {
        if let Err(e) = requests::parse(input.body, |_| Ok(())) {
            return malformed(e);
        }
    }
    let mut services = Vec::new();
    let all = ctx.link.managed_services(None).await;
    write_list(&mut services, &all, write_service);
    Response::json(vec![Part::Owned(object(&[
        ("responseStatus", SUCCESS),
        ("services", &services),
        ("version", now_ms().to_string().as_bytes()),
    ]))])
}

/// `ServiceGroup` of a group as `service.json` lists it: its key, the instances named into it,
/// its tags; no instances or weight outside a route rule.
fn write_service_group(out: &mut Vec<u8>, data: &ManagementData, group: &Group) {
    let key = group_key(
        &group.service_id,
        &group.region_id,
        &group.zone_id,
        &group.name,
    );
    let named = data
        .group_instances
        .iter()
        .filter(|i| i.group_id == group.group_id);
    let ids = |out: &mut Vec<u8>| write_texts(out, named.clone().map(|i| i.instance_id.as_str()));
    let tagged = data
        .group_tags
        .iter()
        .filter(|t| t.group_id == group.group_id);
    let tags = tags_by_group(tagged).into_iter().next();
    let metadata = |out: &mut Vec<u8>| match &tags {
        Some((_, tags)) => write_map(out, tags.iter().copied()),
        None => out.extend_from_slice(b"null"),
    };
    write_object(
        out,
        &[
            ("groupKey", Field::Text(Some(&key))),
            ("instanceIds", Field::With(&ids)),
            ("instances", Field::Text(None)),
            ("metadata", Field::With(&metadata)),
            ("weight", Field::Int(None)),
        ],
    );
}

/// `service.json`: `{"serviceId"}` (flat; region and zone ignored) → the service as the
/// management view shows it, and its groups. An unregistered service has `instances: null`.
pub(super) async fn service(ctx: &Context<'_>, input: Input<'_>) -> Response {
    const FIELDS: [&str; 2] = ["groups", "service"];
    let service_id = match requests::parse(input.body, |p| p.text("serviceId")) {
        Err(e) => return malformed(e),
        Ok(id) => id.flatten().filter(|id| !id.trim().is_empty()),
    };
    let Some(service_id) = service_id else {
        // Java's message, typo included.
        let why = "Request is null or request.servcieId is null.";
        return Refusal::bad_request(why).reply(&FIELDS);
    };
    let data = match ctx.management.data().await {
        Ok(data) => data,
        Err(e) => return Refusal::internal(e.to_string()).reply(&FIELDS),
    };
    let own = |g: &&Group| g.service_id.eq_ignore_ascii_case(&service_id);
    let mut groups = Vec::new();
    write_list(&mut groups, data.groups.iter().filter(own), |out, g| {
        write_service_group(out, &data, g)
    });
    let mut service = Vec::new();
    match ctx
        .link
        .managed_services(Some(service_id.clone()))
        .await
        .first()
    {
        Some(found) => write_service(&mut service, found),
        None => {
            service.extend_from_slice(br#"{"instances":null"#);
            let view = ctx.link.management_view();
            view.write_lists(&mut service, &service_id.to_lowercase(), &[], false);
            write_str(&mut service, &service_id);
            service.push(b'}');
        }
    }
    Response::json(vec![Part::Owned(object(&[
        ("groups", &groups),
        ("responseStatus", SUCCESS),
        ("service", &service),
    ]))])
}
