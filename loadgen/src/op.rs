//! The API operations a request can perform; the report has one row per operation.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Register,
    Heartbeat,
    Unregister,
    Discover,
    /// A change pushed to a WebSocket subscriber, timed from its register request.
    Push,
}

impl Op {
    pub const ALL: [Op; 5] = [
        Op::Register,
        Op::Heartbeat,
        Op::Unregister,
        Op::Discover,
        Op::Push,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Register => "register",
            Op::Heartbeat => "heartbeat",
            Op::Unregister => "unregister",
            Op::Discover => "discover",
            Op::Push => "push",
        }
    }

    /// Position in per-operation arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}
