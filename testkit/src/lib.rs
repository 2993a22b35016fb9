//! What the integration tests of the server (`tests/`) and of the SDK (`client/tests/`) share:
//! the real `artemis` binary as a child process on loopback, started once it serves and has
//! loaded its management state, its log kept, killed on drop ([`ServerProcess`]); directories of
//! their own ([`TempDir`]); a TCP proxy that delays, swallows or cuts what goes through
//! ([`Proxy`]); and waiting for a condition ([`poll`]). Each suite keeps its own way of speaking
//! to the server on top.

mod process;
mod proxy;

pub use process::{command, free_port, free_ports, poll, spawn_logging, ServerProcess, TempDir};
pub use proxy::Proxy;

/// Server flags for a 2 s lease, cleaned every 100 ms, with nothing holding expiry back: short
/// enough to wait for, long enough that a loaded machine does not expire a lease between two
/// consecutive requests of a test.
pub const SHORT_LEASES: &[&str] = &[
    "--lease-ttl",
    "2s",
    "--clean-interval",
    "100ms",
    "--self-preservation",
    "false",
];
