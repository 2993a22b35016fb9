//! The JSON request decoders' properties, on arbitrary bodies. The fuzz target calls these, and
//! the stable test suite (`tests/fuzz_regressions.rs`) replays the committed corpus through them.
//!
//! Every body goes through every decoder the API has (simd-json parses in place, so each gets its
//! own copy). Beyond "no panic": an instance list decoded, written back as the registry serves
//! instances (`Instance::write_json`) and decoded again is the same list; a `DiscoveryConfig`
//! (the first value of a body, as every decoder reads it) reads the same bare (WebSocket
//! subscriptions), inside `service.json` and inside `lookup.json`; and `regionId`/`zoneId` read alike in every request that has them.

use artemis::decode::{self, DiscoveryConfig};
use artemis_shards::Instance;

/// Target `json_decode`: `body` through every request decoder.
pub fn decode_body(body: &[u8]) {
    if let Ok(Some(request)) = decode::instances_request(&mut body.to_vec()) {
        if let Some(instances) = request.instances {
            instances_round_trip(&instances);
        }
    }
    if let Ok(Some(config)) = decode::discovery_config_request(&mut body.to_vec()) {
        // What a decoder reads of a body is its first value, byte-order mark and tail left out.
        let first = decode::first_value(&mut body.to_vec()).to_vec();
        nested_config_reads_alike(&first, &config);
    }
    let zone = decode::zone_request(&mut body.to_vec());
    let service = decode::service_request(&mut body.to_vec());
    let lookup = decode::lookup_request(&mut body.to_vec());
    if let Ok(Some(zone)) = zone {
        let expected = (&zone.region_id, &zone.zone_id);
        if let Ok(Some(service)) = service {
            assert_eq!((&service.region_id, &service.zone_id), expected);
        }
        if let Ok(Some(lookup)) = lookup {
            assert_eq!((&lookup.region_id, &lookup.zone_id), expected);
        }
    }
    let _ = decode::delta_request(&mut body.to_vec());
    let _ = decode::leases_request(&mut body.to_vec());
}

/// Decoding what the registry writes for `instances` gives `instances` back.
fn instances_round_trip(instances: &[Option<Instance>]) {
    let mut written = b"{\"instances\":[".to_vec();
    for (i, instance) in instances.iter().enumerate() {
        if i > 0 {
            written.push(b',');
        }
        match instance {
            Some(instance) => instance.write_json(&mut written),
            None => written.extend_from_slice(b"null"),
        }
    }
    written.extend_from_slice(b"]}");
    let again = decode::instances_request(&mut written.clone())
        .unwrap_or_else(|e| panic!("{e:?} on {}", String::from_utf8_lossy(&written)))
        .and_then(|request| request.instances);
    assert_eq!(again.as_deref(), Some(instances));
}

/// `body`, a bare `DiscoveryConfig`, names the same service when nested in the requests that
/// carry one or a list of them.
fn nested_config_reads_alike(body: &[u8], config: &DiscoveryConfig) {
    let nested = [&b"{\"discoveryConfig\":"[..], body, b"}"].concat();
    let service = decode::service_request(&mut nested.clone())
        .unwrap_or_else(|e| panic!("{e:?} on {}", String::from_utf8_lossy(&nested)))
        .and_then(|request| request.discovery_config);
    assert_eq!(
        service.map(|nested| nested.service_id),
        Some(config.service_id.clone())
    );
    let listed = [&b"{\"discoveryConfigs\":["[..], body, b"]}"].concat();
    let lookup = decode::lookup_request(&mut listed.clone())
        .unwrap_or_else(|e| panic!("{e:?} on {}", String::from_utf8_lossy(&listed)))
        .and_then(|request| request.discovery_configs);
    let ids = lookup.map(|configs| configs.into_iter().map(|c| c.and_then(|c| c.service_id)));
    assert_eq!(
        ids.map(Iterator::collect::<Vec<_>>),
        Some(vec![config.service_id.clone()])
    );
}
