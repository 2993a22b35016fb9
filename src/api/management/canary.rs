//! §4.9's canary: the ips of one app's instances that take a service's canary traffic, kept as
//! the service's `canary-route-rule` and the app's group in zone `canary` of this region.

use super::writes::Writes;
use super::Refusal;
use crate::management::store::Write;

/// `update-canary-ips.json`: `{"serviceId","appId","canaryIps":[..]}` plus the operator's
/// context. Java fails without a service or an app somewhere on the way, with its one message.
pub(super) const UPDATE_IPS: Writes = Writes::checked("update canary ips", |ctx, p| {
    let named = p.texts_of(["serviceId", "appId"])?;
    let [Some(service_id), Some(app_id)] = named.map(|s| s.filter(|s| !s.trim().is_empty())) else {
        return Ok(Err(Refusal::internal("update canary ips")));
    };
    Ok(Ok(Write::CanaryIps {
        service_id,
        app_id,
        region_id: ctx.node.config.region.clone(),
        ips: p.texts("canaryIps")?,
    }))
});
