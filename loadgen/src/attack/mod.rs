//! Hostile connections beside the well-behaved load (`--attack idle=10000,slowloris=100`), so
//! the report shows what well-behaved clients see while the registry is under attack.
//!
//! Each [`Attacker`] is a kind of hostile client and how many connections of it to keep open.
//! All of them run on one unpinned thread with its own mio `Poll` (`driver`): an idle or
//! slowloris connection costs a socket and a timer entry, not a thread, and the pinned workers
//! keep their cores. A connection the server closes is reopened, and every ending is counted
//! (`outcome`), so the report says how the server treated each kind.

mod driver;
mod hostile;
mod outcome;
mod payload;

pub use driver::{start, Siege};
pub use outcome::AttackerReport;

use crate::display::serialize_duration;
use serde::Serialize;
use std::time::Duration;

/// A kind of hostile client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hostility {
    /// Opens a connection and never sends a byte.
    Idle,
    /// Sends a request head a few bytes at a time, every `every`, and never finishes it.
    Slowloris,
    /// Sends a burst of random bytes every `every`.
    Garbage,
}

/// One `--attack` item: `kind=connections`, optionally `@every`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Attacker {
    pub kind: Hostility,
    pub connections: usize,
    /// How often each connection sends (slowloris: the next few bytes; garbage: a burst), and
    /// how long a closed one waits before it reconnects. Idle connections reconnect at once.
    #[serde(serialize_with = "serialize_duration")]
    pub every: Duration,
}

impl Hostility {
    pub fn name(self) -> &'static str {
        match self {
            Hostility::Idle => "idle",
            Hostility::Slowloris => "slowloris",
            Hostility::Garbage => "garbage",
        }
    }

    /// The pace when `@every` is not given: a slowloris sends every second, garbage every
    /// millisecond (about a thousand bad requests a second per connection).
    fn default_every(self) -> Duration {
        match self {
            Hostility::Idle => Duration::ZERO,
            Hostility::Slowloris => Duration::from_secs(1),
            Hostility::Garbage => Duration::from_millis(1),
        }
    }
}

/// Parses `idle=10000,slowloris=100@2s,garbage=4@10ms`; a kind may appear once.
pub fn parse(spec: &str) -> Result<Vec<Attacker>, String> {
    let mut attackers: Vec<Attacker> = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = item
            .split_once('=')
            .ok_or_else(|| format!("attack {item:?} is not kind=connections"))?;
        let kind = match name.trim() {
            "idle" => Hostility::Idle,
            "slowloris" => Hostility::Slowloris,
            "garbage" => Hostility::Garbage,
            other => {
                return Err(format!(
                    "unknown attack {other:?} (idle, slowloris or garbage)"
                ))
            }
        };
        let (count, every) = match rest.split_once('@') {
            Some((count, every)) if kind != Hostility::Idle => {
                let every = humantime::parse_duration(every.trim())
                    .map_err(|e| format!("bad pace {every:?} in {item:?}: {e}"))?;
                (count, every)
            }
            Some(_) => return Err(format!("idle connections send nothing: {item:?}")),
            None => (rest, kind.default_every()),
        };
        let connections = count
            .trim()
            .parse()
            .map_err(|_| format!("bad connection count {count:?} in {item:?}"))?;
        if attackers.iter().any(|a| a.kind == kind) {
            return Err(format!("attack {} given twice", kind.name()));
        }
        attackers.push(Attacker {
            kind,
            connections,
            every,
        });
    }
    Ok(attackers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kinds_counts_and_paces() {
        let a = parse("idle=10000, slowloris=100@2s,garbage=4").unwrap();
        assert_eq!(
            a,
            vec![
                Attacker {
                    kind: Hostility::Idle,
                    connections: 10_000,
                    every: Duration::ZERO
                },
                Attacker {
                    kind: Hostility::Slowloris,
                    connections: 100,
                    every: Duration::from_secs(2)
                },
                Attacker {
                    kind: Hostility::Garbage,
                    connections: 4,
                    every: Duration::from_millis(1)
                },
            ]
        );
        for bad in [
            "idle",
            "idle=x",
            "flood=3",
            "idle=1@1s",
            "garbage=1@x",
            "idle=1,idle=2",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
