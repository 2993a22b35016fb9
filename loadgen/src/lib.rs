//! `artemis-loadgen`: an open-loop (and closed-loop) HTTP load generator that speaks the
//! Artemis registry API, corrects for coordinated omission and checks a latency SLO.
//!
//! The binary is a thin shell over [`run`]; integration tests call it in-process:
//!
//! ```no_run
//! use artemis_loadgen::{run, Config, Pacing};
//! let report = run(Config {
//!     target: "http://127.0.0.1:8080".into(),
//!     prefill: 100,
//!     pacing: Pacing::Rate(500.0),
//!     duration: std::time::Duration::from_secs(1),
//!     ..Config::default()
//! })
//! .unwrap();
//! assert_eq!(report.op("discover").unwrap().failed, 0);
//! std::process::exit(report.exit_code().into());
//! ```

pub mod attack;
mod body;
pub mod cli;
mod clock;
mod config;
mod conn;
mod cores;
mod descriptors;
mod display;
mod error;
mod failure;
mod hgrm;
mod op;
mod pacing;
mod probe;
mod progress;
mod push;
mod reply;
mod report;
mod request;
mod run;
pub mod scenario;
mod slo;
mod tally;
mod timer;
mod websocket;
mod worker;
mod zipf;

pub use attack::{Attacker, AttackerReport, Hostility};
pub use body::Population;
pub use config::{Config, Pacing};
pub use error::Error;
pub use probe::ProbeReport;
pub use report::{OpReport, Percentiles, Prefill, Report, Second, Verdict};
pub use run::{prefill, run};
pub use scenario::{DiscoveryApi, Kind, Popularity, Share};
pub use slo::{Bound, Slo, Unit, Violation};
