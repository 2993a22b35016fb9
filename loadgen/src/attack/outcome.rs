//! How each kind of hostile connection fared: connections opened, refused, closed by the
//! server (and after how long), the status of the first reply each connection got, and how many
//! were still open when the run ended.

use super::{Attacker, Hostility};
use crate::clock::Nanos;
use crate::display::serialize_duration;
use crate::tally::histogram;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// What one kind's connections went through, counted as it happens.
pub(super) struct Outcome {
    opened: u64,
    connect_failed: u64,
    closed_by_server: u64,
    /// Status of the first reply of each connection's life.
    replies: BTreeMap<u16, u64>,
    bytes_sent: u64,
    /// How long the connections the server closed had been open, in nanoseconds.
    lifetimes: Histogram<u64>,
}

/// One `--attack` item in the report.
#[derive(Clone, Debug, Serialize)]
pub struct AttackerReport {
    pub kind: Hostility,
    /// Connections the attacker keeps open (or tries to).
    pub connections: usize,
    #[serde(serialize_with = "serialize_duration")]
    pub every: Duration,
    /// Connections established, reconnections included.
    pub opened: u64,
    /// Connection attempts that failed (refused, reset before it was established, ...).
    pub connect_failed: u64,
    /// Connections the server closed (end of stream or reset).
    pub closed_by_server: u64,
    /// The first reply of each connection, by HTTP status (`"400"`), or `"other"` for bytes that
    /// are not an HTTP status line.
    pub replies: BTreeMap<String, u64>,
    pub bytes_sent: u64,
    /// Still open when the run ended (closed by the load generator then).
    pub open_at_end: u64,
    /// How long the connections the server closed had been open: p50 and max, in milliseconds.
    pub closed_after_ms: Option<Lifetimes>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Lifetimes {
    pub p50: f64,
    pub max: f64,
}

/// What the first bytes a connection received say: an HTTP status, or `None` for anything else.
pub(super) fn status_of(bytes: &[u8]) -> Option<u16> {
    let rest = bytes.strip_prefix(b"HTTP/1.")?.get(2..5)?;
    std::str::from_utf8(rest).ok()?.parse().ok()
}

impl Outcome {
    pub(super) fn new() -> Outcome {
        Outcome {
            opened: 0,
            connect_failed: 0,
            closed_by_server: 0,
            replies: BTreeMap::new(),
            bytes_sent: 0,
            lifetimes: histogram(),
        }
    }

    pub(super) fn opened(&mut self) {
        self.opened += 1;
    }

    pub(super) fn connect_failed(&mut self) {
        self.connect_failed += 1;
    }

    /// The first reply of a connection's life; `0` stands for bytes that are not HTTP.
    pub(super) fn reply(&mut self, status: Option<u16>) {
        *self.replies.entry(status.unwrap_or(0)).or_insert(0) += 1;
    }

    pub(super) fn sent(&mut self, bytes: usize) {
        self.bytes_sent += bytes as u64;
    }

    pub(super) fn closed_by_server(&mut self, lifetime: Nanos) {
        self.closed_by_server += 1;
        self.lifetimes.saturating_record(lifetime.max(1));
    }

    pub(super) fn report(&self, attacker: &Attacker, open_at_end: u64) -> AttackerReport {
        let ms = |nanos: u64| nanos as f64 / 1e6;
        AttackerReport {
            kind: attacker.kind,
            connections: attacker.connections,
            every: attacker.every,
            opened: self.opened,
            connect_failed: self.connect_failed,
            closed_by_server: self.closed_by_server,
            replies: self
                .replies
                .iter()
                .map(|(status, n)| match status {
                    0 => ("other".to_owned(), *n),
                    s => (s.to_string(), *n),
                })
                .collect(),
            bytes_sent: self.bytes_sent,
            open_at_end,
            closed_after_ms: (!self.lifetimes.is_empty()).then(|| Lifetimes {
                p50: ms(self.lifetimes.value_at_quantile(0.5)),
                max: ms(self.lifetimes.max()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_recognised() {
        assert_eq!(status_of(b"HTTP/1.1 400 Bad Request\r\n"), Some(400));
        assert_eq!(status_of(b"HTTP/1.0 408"), Some(408));
        assert_eq!(status_of(b"HTTP/1.1 4"), None);
        assert_eq!(status_of(b"\x88\x02\x03\xe8"), None);
    }

    #[test]
    fn a_report_names_replies_and_lifetimes() {
        let mut o = Outcome::new();
        o.opened();
        o.reply(Some(400));
        o.reply(None);
        o.closed_by_server(2_000_000);
        let attacker = Attacker {
            kind: Hostility::Garbage,
            connections: 1,
            every: Duration::from_millis(1),
        };
        let r = o.report(&attacker, 0);
        assert_eq!(r.replies["400"], 1);
        assert_eq!(r.replies["other"], 1);
        assert_eq!(r.closed_after_ms.unwrap().max.round(), 2.0);
    }
}
