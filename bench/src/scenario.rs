//! The standard scenarios, each a load-generator scenario on the registered population:
//! heartbeats (`heartbeat.json`), discovery (`service.json` by POST) and re-registration of
//! instances already registered (`register.json`, unchanged instances).

use artemis_loadgen::Kind;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Scenario {
    Heartbeat,
    Discover,
    Reregister,
}

impl Scenario {
    pub(crate) fn name(self) -> &'static str {
        self.kind().name()
    }

    /// The load generator's scenario.
    pub(crate) fn kind(self) -> Kind {
        match self {
            Scenario::Heartbeat => Kind::Heartbeat,
            Scenario::Discover => Kind::Discover,
            Scenario::Reregister => Kind::Reregister,
        }
    }
}
