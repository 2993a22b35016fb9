//! Everything a run is made of, as the library takes it (`run(Config)`) and as the JSON report
//! repeats it. The command line (`cli.rs`) is one way to fill it in; tests build it directly.

use crate::attack::Attacker;
use crate::display::{serialize_duration, serialize_some_duration};
use crate::error::Error;
use crate::scenario::{DiscoveryApi, Kind, Popularity, Share};
use crate::slo::Slo;
use serde::Serialize;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// `http://host:port` of the registry; with `more_targets`, the first node of several.
    pub target: String,
    /// The other nodes of `--targets`, after `target`: the connections are dealt out over all
    /// of them in turn (see `scenario::route`). Empty for a single registry.
    pub more_targets: Vec<String>,
    /// What the requests are, with weights (one share for a plain scenario).
    pub scenario: Vec<Share>,
    pub pacing: Pacing,
    /// The measured time, after the warm-up.
    #[serde(serialize_with = "serialize_duration")]
    pub duration: Duration,
    /// Load before the measured time, left out of every figure.
    #[serde(serialize_with = "serialize_duration")]
    pub warmup: Duration,
    /// A request with no reply after this long fails as a timeout.
    #[serde(serialize_with = "serialize_duration")]
    pub timeout: Duration,
    /// Connections in all, shared out among the cores.
    pub connections: usize,
    /// Push subscriber connections (beyond `connections`), shared out among the cores;
    /// `None` for one per core.
    pub subscribers: Option<usize>,
    /// One pinned worker thread per core.
    pub cores: Vec<usize>,
    /// Instances registered before measuring; heartbeat, re-register and discovery work on them.
    pub prefill: u64,
    /// How many of the first `prefill` instances an earlier run already registered: the prefill
    /// registers only `prefilled..prefill`, so runs can share one population. With no `prefill`
    /// (0), the population is these `prefilled` instances and nothing is registered.
    pub prefilled: u64,
    /// Instances per register request during the prefill.
    pub prefill_batch: u64,
    /// Distinct instances the register and churn scenarios write (beyond the prefill).
    pub instances: u64,
    /// Services the instances are spread over.
    pub services: u64,
    /// Instances per register/heartbeat/unregister request; services per lookup request.
    pub batch: u64,
    /// Each connection plays one client that heartbeats only the instances of its own service
    /// (run-wide connection `g` owns service `g % services`), instead of all connections
    /// walking the whole population. Heartbeat scenarios only.
    pub own_service: bool,
    /// Every HTTP request accepts gzip (`Accept-Encoding: gzip`), as Java clients' do, and
    /// gzipped replies are inflated before they are judged. HTTP scenarios only.
    pub gzip: bool,
    pub region: String,
    pub zone: String,
    pub discovery_api: DiscoveryApi,
    pub popularity: Popularity,
    pub slo: Slo,
    /// Seed of the random choices (service popularity, mix), for repeatable runs.
    pub seed: u64,
    /// No progress lines.
    pub quiet: bool,
    /// The workers poll their sockets without ever sleeping (each keeps its core busy), so a
    /// reply never has to wake the load generator: on loopback the server's send otherwise pays
    /// for that wake-up, which a client on another machine would not cost it.
    pub busy_poll: bool,
    /// Hostile connections run beside the load while it is measured (warm-up included).
    pub attack: Vec<Attacker>,
    /// Fetch `/health` and `/metrics` this often while the load runs; `None`: no probe.
    #[serde(serialize_with = "serialize_some_duration")]
    pub probe: Option<Duration>,
}

/// How fast requests are sent.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pacing {
    /// Open loop: this many requests per second in all, whatever the replies do.
    Rate(f64),
    /// Closed loop: each connection sends its next request as soon as the reply is in.
    Max,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            target: "http://127.0.0.1:8080".to_owned(),
            more_targets: Vec::new(),
            scenario: Share::alone(Kind::Discover),
            pacing: Pacing::Rate(1000.0),
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            connections: 16,
            subscribers: None,
            cores: crate::cores::available(),
            prefill: 0,
            prefilled: 0,
            prefill_batch: 100,
            instances: 1000,
            services: 100,
            batch: 1,
            own_service: false,
            gzip: false,
            region: "default".to_owned(),
            zone: "default".to_owned(),
            discovery_api: DiscoveryApi::Post,
            popularity: Popularity::Uniform,
            slo: Slo::default(),
            seed: 1,
            quiet: false,
            busy_poll: false,
            attack: Vec::new(),
            probe: None,
        }
    }
}

/// Where the requests go.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// The `Host` header: `host:port` as given.
    pub host: String,
}

impl Target {
    /// Resolves `url`, `http://host:port`. An unknown host is unreachable (exit 2 all the same).
    fn resolve(url: &str) -> Result<Target, Error> {
        let host = url
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .ok_or_else(|| Error::Argument(format!("target {url:?} is not http://host:port")))?;
        let with_port = if host.contains(':') && !host.ends_with(']') {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| Error::Unreachable {
                target: url.to_owned(),
                reason: "host does not resolve".to_owned(),
            })?;
        Ok(Target {
            addr,
            host: host.to_owned(),
        })
    }
}

impl Config {
    /// Every registry the run sends to: `target`, then `more_targets`.
    pub fn targets(&self) -> Vec<&str> {
        std::iter::once(self.target.as_str())
            .chain(self.more_targets.iter().map(String::as_str))
            .collect()
    }

    /// Resolves every target URL, in the order of [`Config::targets`].
    pub fn resolve_targets(&self) -> Result<Vec<Target>, Error> {
        self.targets().into_iter().map(Target::resolve).collect()
    }

    /// The instances heartbeat, re-register, push and discovery work on, `0..population()`:
    /// those of the prefill, or with none, those an earlier run registered (`prefilled`).
    pub fn population(&self) -> u64 {
        self.prefill.max(self.prefilled)
    }

    /// Sockets the run opens at once: the workers' connections and subscribers, the attackers'
    /// and the probe's.
    pub fn sockets(&self) -> u64 {
        let subscribers = self.subscribers.unwrap_or(self.cores.len());
        let attackers: usize = self.attack.iter().map(|a| a.connections).sum();
        (self.connections + subscribers + attackers + 1) as u64
    }

    /// Checks the values that the types allow but a run cannot use.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |msg: String| Err(Error::Argument(msg));
        let workers = self.cores.len() as u64;
        if self.cores.is_empty() {
            return bad("no cores to run on".into());
        }
        let available = crate::cores::available();
        if let Some(c) = self.cores.iter().find(|c| !available.contains(c)) {
            return bad(format!("core {c} is not available (have {available:?})"));
        }
        if self.connections < self.cores.len() {
            return bad(format!(
                "{} connections cannot keep {} cores busy",
                self.connections,
                self.cores.len()
            ));
        }
        if let Pacing::Rate(r) = self.pacing {
            if !(r > 0.0 && r.is_finite()) {
                return bad(format!("rate {r} is not a positive number"));
            }
        }
        if self.services == 0 || self.batch == 0 || self.prefill_batch == 0 {
            return bad("services, batch and prefill batch must be at least 1".into());
        }
        if self.scenario.is_empty() || self.scenario.iter().all(|s| s.weight == 0) {
            return bad("the scenario mix has no weight".into());
        }
        for name in [&self.region, &self.zone] {
            let plain = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
            if name.is_empty() || !name.chars().all(plain) {
                return bad(format!("region or zone {name:?} is not a plain identifier"));
            }
        }
        if self.prefill > 0 && self.prefilled > self.prefill {
            return bad(format!(
                "--prefilled {} is more than --prefill {} (give --prefilled alone for a \
                 population an earlier run registered)",
                self.prefilled, self.prefill
            ));
        }
        let population = self.population();
        for share in self.scenario.iter().filter(|s| s.weight > 0) {
            match share.kind {
                Kind::Heartbeat | Kind::WsHeartbeat | Kind::Reregister | Kind::Push
                    if population < workers =>
                {
                    return bad(format!(
                        "{} needs --prefill (or --prefilled) of at least one instance per core \
                         ({workers})",
                        share.kind.name()
                    ))
                }
                Kind::Register | Kind::Churn | Kind::Replication if self.instances < workers => {
                    return bad(format!(
                        "--instances must be at least the core count ({workers})"
                    ))
                }
                _ => {}
            }
        }
        if self.scenario.iter().any(|s| s.kind == Kind::Replication) && self.targets().len() != 2 {
            return bad(
                "--scenario replication registers on the first of --targets and awaits the pushes \
                 on the second: give two of them (the same URL twice to try it on one node)"
                    .into(),
            );
        }
        if self.own_service {
            let heartbeats = matches!(
                self.scenario.as_slice(),
                [Share {
                    kind: Kind::Heartbeat | Kind::WsHeartbeat,
                    ..
                }]
            );
            if !heartbeats {
                return bad("--own-service goes with --scenario heartbeat or ws-heartbeat".into());
            }
            if self.services > population {
                return bad(format!(
                    "--own-service needs an instance in every service: --services {} is more \
                     than the {population} instances of --prefill (or --prefilled)",
                    self.services
                ));
            }
        }
        if self.gzip && self.scenario.iter().any(|s| s.kind.websocket()) {
            return bad(
                "--gzip goes with HTTP scenarios, not ws-heartbeat, push or replication".into(),
            );
        }
        if self.scenario.len() > 1
            && self
                .scenario
                .iter()
                .any(|s| s.kind.websocket_path().is_some())
        {
            return bad("a WebSocket scenario cannot be mixed with others".into());
        }
        if self.probe.is_some_and(|every| every.is_zero()) {
            return bad("the probe interval must be above zero".into());
        }
        if let Some(rate) = self.slo.max_error_rate {
            if !(0.0..=1.0).contains(&rate) {
                return bad(format!("max error rate {rate} is not within [0, 1]"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            cores: vec![crate::cores::available()[0]],
            ..Config::default()
        }
    }

    #[test]
    fn default_is_valid() {
        config().validate().unwrap();
    }

    #[test]
    fn targets_resolve_in_order() {
        let c = Config {
            target: "http://127.0.0.1:8080/".into(),
            more_targets: vec!["http://127.0.0.1:8081".into(), "http://localhost".into()],
            ..config()
        };
        let t = c.resolve_targets().unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(t[0].host, "127.0.0.1:8080");
        assert_eq!(t[1].host, "127.0.0.1:8081");
        assert_eq!((t[2].host.as_str(), t[2].addr.port()), ("localhost", 80));
        let bad = Config {
            more_targets: vec!["127.0.0.1:8081".into()],
            ..c
        };
        assert!(matches!(bad.resolve_targets(), Err(Error::Argument(_))));
    }

    #[test]
    fn replication_needs_two_targets_and_no_prefill() {
        let one = Config {
            scenario: Share::alone(Kind::Replication),
            ..config()
        };
        assert!(matches!(one.validate(), Err(Error::Argument(_))));
        let same_node_twice = Config {
            more_targets: vec![one.target.clone()],
            ..one.clone()
        };
        same_node_twice.validate().unwrap();
        let three = Config {
            more_targets: vec![one.target.clone(); 2],
            ..one.clone()
        };
        assert!(matches!(three.validate(), Err(Error::Argument(_))));
        let gzip = Config {
            gzip: true,
            ..same_node_twice
        };
        assert!(matches!(gzip.validate(), Err(Error::Argument(_))));
    }

    #[test]
    fn heartbeat_and_reregister_need_a_prefill() {
        for kind in [Kind::Heartbeat, Kind::Reregister] {
            let c = Config {
                scenario: vec![Share { kind, weight: 1 }],
                ..config()
            };
            assert!(c.validate().is_err());
            Config { prefill: 10, ..c }.validate().unwrap();
        }
    }

    #[test]
    fn own_service_needs_a_heartbeat_scenario_and_a_prefill_in_every_service() {
        let heartbeat = |kind| Config {
            scenario: vec![Share { kind, weight: 1 }],
            prefill: 100,
            services: 10,
            own_service: true,
            ..config()
        };
        heartbeat(Kind::Heartbeat).validate().unwrap();
        heartbeat(Kind::WsHeartbeat).validate().unwrap();
        for kind in [Kind::Reregister, Kind::Discover, Kind::Push] {
            assert!(heartbeat(kind).validate().is_err());
        }
        let mix = Config {
            scenario: vec![
                Share {
                    kind: Kind::Heartbeat,
                    weight: 1,
                },
                Share {
                    kind: Kind::Discover,
                    weight: 1,
                },
            ],
            ..heartbeat(Kind::Heartbeat)
        };
        assert!(mix.validate().is_err());
        let few = Config {
            prefill: 9,
            ..heartbeat(Kind::Heartbeat)
        };
        assert!(matches!(few.validate(), Err(Error::Argument(_))));
    }

    #[test]
    fn gzip_is_refused_with_websocket_scenarios() {
        let gzip = |kind| Config {
            scenario: vec![Share { kind, weight: 1 }],
            prefill: 10,
            gzip: true,
            ..config()
        };
        for kind in [Kind::Discover, Kind::Heartbeat, Kind::Register, Kind::Churn] {
            gzip(kind).validate().unwrap();
        }
        for kind in [Kind::WsHeartbeat, Kind::Push] {
            assert!(matches!(gzip(kind).validate(), Err(Error::Argument(_))));
        }
    }

    #[test]
    fn prefilled_is_part_of_the_prefill() {
        let c = Config {
            prefill: 10,
            prefilled: 10,
            ..config()
        };
        c.validate().unwrap();
        assert_eq!(c.population(), 10);
        assert!(Config { prefilled: 11, ..c }.validate().is_err());
    }

    #[test]
    fn prefilled_alone_is_the_population() {
        let heartbeat = |prefilled| Config {
            scenario: vec![Share {
                kind: Kind::Heartbeat,
                weight: 1,
            }],
            prefilled,
            ..config()
        };
        let c = heartbeat(2000);
        c.validate().unwrap();
        assert_eq!((c.prefill, c.population()), (0, 2000));
        assert!(matches!(heartbeat(0).validate(), Err(Error::Argument(_))));
        let own = Config {
            own_service: true,
            services: 100,
            ..heartbeat(100)
        };
        own.validate().unwrap();
        assert!(Config {
            services: 101,
            ..own
        }
        .validate()
        .is_err());
    }

    #[test]
    fn rejects_odd_region_and_rate() {
        assert!(Config {
            region: "a\"b".into(),
            ..config()
        }
        .validate()
        .is_err());
        assert!(Config {
            pacing: Pacing::Rate(0.0),
            ..config()
        }
        .validate()
        .is_err());
    }
}
