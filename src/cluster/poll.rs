//! Asking the peers how they are: every peer's `status/node.json`, as Java's `ClusterManager`
//! polls it (`POST {}`, up to 3 tries 10 ms apart), each peer over a keep-alive connection of
//! its own, all peers at once, so that one that hangs delays none of the others.
//!
//! What a peer answers is kept as it sent it (for `status/cluster.json`) beside the flags read
//! from it; a peer that does not answer is `unknown` until it does. A change of a peer's state
//! is logged once.

use std::sync::Arc;
use std::time::Duration;

use glommio::spawn_local;
use glommio::timer::sleep;
use simd_json::prelude::*;

use super::{Cluster, Flags, NodeState, Peer, PeerStatus};
use crate::decode::value_end;
use crate::http::client::HttpClient;

/// How long one try may take (connecting, then the exchange).
const TIMEOUT: Duration = Duration::from_secs(1);
/// Tries per poll, and the pause between two (Java's `fail-retry-times` and its pause).
const TRIES: usize = 3;
const PAUSE: Duration = Duration::from_millis(10);
/// Largest status reply taken.
const MAX_REPLY: usize = 64 << 10;

/// What a peer said in the last round, or why it said nothing.
pub(super) type Answer = Result<NodeState, String>;

/// One client per peer, in peer order.
pub(super) struct Poller {
    clients: Vec<HttpClient>,
}

impl Poller {
    pub(super) fn new(cluster: &Cluster) -> Poller {
        let client = |peer: &Peer| {
            let bearer = cluster.token.clone();
            let authority = peer.authority.clone();
            let address = peer.address.clone();
            HttpClient::new(address, authority, TIMEOUT, MAX_REPLY, bearer)
        };
        Poller {
            clients: cluster.peers.iter().map(client).collect(),
        }
    }

    /// Asks every peer at once, records what each said, and returns it in peer order.
    pub(super) async fn round(&mut self, cluster: &Arc<Cluster>) -> Vec<Answer> {
        let asking: Vec<_> = self
            .clients
            .drain(..)
            .enumerate()
            .map(|(i, mut client)| {
                let cluster = cluster.clone();
                spawn_local(async move {
                    let peer = &cluster.peers[i];
                    let said = ask(&mut client, peer).await;
                    (client, said)
                })
            })
            .collect();
        let mut answers = Vec::with_capacity(asking.len());
        for (peer, task) in cluster.peers.iter().zip(asking) {
            let (client, said) = task.await;
            self.clients.push(client);
            answers.push(record(peer, said));
        }
        answers
    }
}

/// Keeps what `peer` said, logging a change of its state.
fn record(peer: &Peer, said: Result<PeerStatus, String>) -> Answer {
    let before = peer.state();
    let answer = said
        .as_ref()
        .map(|status| status.state)
        .map_err(Clone::clone);
    peer.set_status(said.ok());
    match &answer {
        Ok(state) if *state != before => log::info!("peer {}: {}", peer.url, state.as_str()),
        Err(why) if before != NodeState::Unknown => {
            log::warn!("peer {}: unknown ({why})", peer.url)
        }
        _ => {}
    }
    answer
}

/// Polls `peer` once, with Java's retries.
async fn ask(client: &mut HttpClient, peer: &Peer) -> Result<PeerStatus, String> {
    let path = format!("{}/api/status/node.json", peer.base);
    let mut why = String::new();
    for attempt in 0..TRIES {
        if attempt > 0 {
            sleep(PAUSE).await;
        }
        why = match client.post_json(&path, b"{}").await {
            Ok(reply) if reply.status == 200 => return node_status_reply(&reply.body),
            Ok(reply) => format!("HTTP {} from status/node.json", reply.status),
            Err(e) => e.to_string(),
        };
    }
    Err(why)
}

/// The `nodeStatus` of a `status/node.json` reply: its state and flags (a missing or `null`
/// flag is false), with the object's bytes as sent.
fn node_status_reply(body: &[u8]) -> Result<PeerStatus, String> {
    let mut parsed = body.to_vec();
    let value = simd_json::to_borrowed_value(&mut parsed)
        .map_err(|e| format!("status/node.json is not JSON: {e}"))?;
    let status = value
        .get("nodeStatus")
        .filter(|s| s.is_object())
        .ok_or("status/node.json without a nodeStatus object")?;
    let flag = |name: &str| status.get(name).and_then(|v| v.as_bool()) == Some(true);
    let state = status.get("status").and_then(|v| v.as_str());
    let json = raw_member(body, b"nodeStatus").ok_or("nodeStatus not found")?;
    Ok(PeerStatus {
        state: state.map_or(NodeState::Unknown, NodeState::parse),
        flags: Flags {
            can_serve_registry: flag("canServiceRegistry"),
            can_serve_discovery: flag("canServiceDiscovery"),
            allow_registry_from_other_zone: flag("allowRegistryFromOtherZone"),
            allow_discovery_from_other_zone: flag("allowDiscoveryFromOtherZone"),
        },
        json: json.into(),
    })
}

/// The bytes of the value of `key` in the JSON object `json` (valid JSON: parsed before).
fn raw_member<'a>(json: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut at = skip_space(json, 0);
    if json.get(at) != Some(&b'{') {
        return None;
    }
    at += 1;
    loop {
        let name_start = skip_space(json, at);
        let name_end = value_end(json, name_start)?;
        let colon = skip_space(json, name_end);
        let start = skip_space(json, colon + 1);
        let end = value_end(json, start)?;
        if json.get(name_start + 1..name_end - 1) == Some(key) {
            return json.get(start..end);
        }
        at = skip_space(json, end);
        if json.get(at) != Some(&b',') {
            return None;
        }
        at += 1;
    }
}

fn skip_space(json: &[u8], from: usize) -> usize {
    from + json[from.min(json.len())..]
        .iter()
        .take_while(|b| b.is_ascii_whitespace())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAVA: &str = r#"{"nodeStatus":{"allowDiscoveryFromOtherZone":true,"allowRegistryFromOtherZone":false,"canServiceDiscovery":false,"canServiceRegistry":true,"node":{"url":"http://10.0.0.2:8080/artemis-service/","zone":{"metadata":null,"regionId":"SHA","zoneId":"SHAJQ"}},"status":"starting"},"responseStatus":{"errorCode":"success","message":"","status":"success"}}"#;

    #[test]
    fn a_java_node_status_is_read_and_kept_as_sent() {
        let status = node_status_reply(JAVA.as_bytes()).unwrap();
        assert_eq!(status.state, NodeState::Starting);
        assert_eq!(
            status.flags,
            Flags {
                can_serve_registry: true,
                can_serve_discovery: false,
                allow_registry_from_other_zone: false,
                allow_discovery_from_other_zone: true,
            }
        );
        let object = &JAVA["{\"nodeStatus\":".len()..JAVA.find(",\"responseStatus\"").unwrap()];
        assert_eq!(&*status.json, object.as_bytes());
    }

    #[test]
    fn missing_flags_are_false_and_an_unknown_state_is_unknown() {
        let body = br#" { "responseStatus" : {"status":"success"} , "nodeStatus" : {"status":"UP","canServiceRegistry":null} } "#;
        let status = node_status_reply(body).unwrap();
        assert_eq!(status.state, NodeState::Up);
        assert_eq!(status.flags, Flags::default());
        assert_eq!(
            &*status.json,
            br#"{"status":"UP","canServiceRegistry":null}"#
        );
        let odd = node_status_reply(br#"{"nodeStatus":{"status":"sleeping"}}"#).unwrap();
        assert_eq!(odd.state, NodeState::Unknown);
        for bad in [&b"{}"[..], b"not json", br#"{"nodeStatus":"up"}"#, b"[1]"] {
            assert!(node_status_reply(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn members_are_found_past_strings_and_nested_values() {
        let json = br#"{"a":"x\"}{,","b":[1,{"c":2}],"n":-1.5e3,"t":true,"d":{"e":"}"}}"#;
        assert_eq!(raw_member(json, b"a"), Some(&br#""x\"}{,""#[..]));
        assert_eq!(raw_member(json, b"b"), Some(&br#"[1,{"c":2}]"#[..]));
        assert_eq!(raw_member(json, b"n"), Some(&b"-1.5e3"[..]));
        assert_eq!(raw_member(json, b"t"), Some(&b"true"[..]));
        assert_eq!(raw_member(json, b"d"), Some(&br#"{"e":"}"}"#[..]));
        assert_eq!(raw_member(json, b"c"), None);
        assert_eq!(raw_member(b"[]", b"a"), None);
    }
}
