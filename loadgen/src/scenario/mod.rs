//! What a worker sends: each scenario is a `Workload` that writes its next request into the
//! connection's buffer. A run is a weighted mix of scenarios (a plain `--scenario discover` is
//! a mix of one), and each worker thread gets its own part of the instance population so that
//! two threads never write the same instance.
//!
//! With `own_service` a heartbeat run is played by clients instead: each connection has a
//! workload of its own and heartbeats only the instances of its own service, the way a
//! registered application does. Connections that own the same service heartbeat the same
//! instances.
//!
//! Instance ids are laid out once for the whole run: `0..population` is the registered
//! population (heartbeat, re-register and discovery work on it; `Config::population`, the
//! prefill or, with none, the `prefilled` instances), the register scenario writes the next
//! `instances`, the churn scenario the `instances` after those. The prefill registers
//! `prefilled..prefill`: the first `prefilled` are left to an earlier run that registered them.
//! The replication scenario writes the register scenario's instances.
//!
//! With several targets (`--targets`), [`route`] says which one each connection goes to: a
//! workload does not know, the connection's headers name its target.

mod batches;
mod churn;
mod discover;
mod instances;
mod mix;

pub use discover::{DiscoveryApi, Popularity};

use crate::body::Population;
use crate::config::{Config, Target};
use crate::op::Op;
use crate::request::{Endpoint, Headers};
use crate::websocket::{self, Upgrade};
use batches::Batches;
use serde::Serialize;
use std::ops::Range;

/// A source of requests for one worker.
pub trait Workload: Send {
    /// Appends the next request, with `headers` (those of the connection's target), to `out`
    /// and says what it is; `None` once there is no more.
    fn next(&mut self, headers: &Headers, out: &mut Vec<u8>) -> Option<Op>;
}

/// Where a worker's connections take their requests from.
pub enum Workloads {
    /// One workload for all of them: the connection idle longest sends the next request.
    Shared(Box<dyn Workload>),
    /// One workload per connection (`own_service`): connection `c` sends only what the `c`th
    /// writes.
    PerConnection(Vec<Box<dyn Workload>>),
}

impl Workloads {
    /// The workload of the worker's connection `c`.
    pub fn of(&mut self, c: usize) -> &mut dyn Workload {
        match self {
            Workloads::Shared(workload) => workload.as_mut(),
            Workloads::PerConnection(each) => each[c].as_mut(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Register the scenario's instances, batch by batch, round and round.
    Register,
    /// Register the prefilled instances again (an unchanged instance), round and round.
    Reregister,
    /// Heartbeat the prefilled instances, round and round.
    Heartbeat,
    /// The heartbeat scenario in frames over `/ws/registry/heartbeat` connections.
    WsHeartbeat,
    /// Re-register the prefilled instances one by one, timing each until its `new` change is
    /// pushed to an `/ws/discovery/instance-change` subscriber.
    Push,
    /// Discover a service chosen by popularity.
    Discover,
    /// Register a batch, unregister it, register the next.
    Churn,
    /// Register instances one by one on the first target, timing each until its `new` change
    /// is pushed to an `/ws/discovery/instance-change` subscriber on the second.
    Replication,
}

impl Kind {
    /// The scenario's name, as `--scenario` and `--mix` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Register => "register",
            Kind::Reregister => "reregister",
            Kind::Heartbeat => "heartbeat",
            Kind::WsHeartbeat => "ws-heartbeat",
            Kind::Push => "push",
            Kind::Discover => "discover",
            Kind::Churn => "churn",
            Kind::Replication => "replication",
        }
    }

    /// The WebSocket path the scenario's connections upgrade to; `None` for plain HTTP.
    pub fn websocket_path(self) -> Option<&'static str> {
        match self {
            Kind::WsHeartbeat => Some("/ws/registry/heartbeat"),
            _ => None,
        }
    }

    /// Whether the scenario times pushes to subscribers of `/ws/discovery/instance-change`.
    pub fn subscribes(self) -> bool {
        matches!(self, Kind::Push | Kind::Replication)
    }

    /// Whether the scenario uses WebSocket connections and so cannot be mixed.
    pub fn websocket(self) -> bool {
        self.websocket_path().is_some() || self.subscribes()
    }
}

/// One scenario's weight in the mix.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Share {
    pub kind: Kind,
    pub weight: u32,
}

impl Share {
    /// A plain scenario: `kind` alone.
    pub(crate) fn alone(kind: Kind) -> Vec<Share> {
        vec![Share { kind, weight: 1 }]
    }
}

/// Parses `heartbeat=80,discover=19,register=1`.
pub fn parse_mix(spec: &str) -> Result<Vec<Share>, String> {
    use clap::ValueEnum;
    spec.split(',')
        .map(|part| {
            let (name, weight) = part
                .trim()
                .split_once('=')
                .ok_or_else(|| format!("mix term {part:?} is not SCENARIO=WEIGHT"))?;
            Ok(Share {
                kind: Kind::from_str(name.trim(), true)
                    .map_err(|_| format!("unknown scenario {name:?} in the mix"))?,
                weight: weight
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad weight in mix term {part:?}"))?,
            })
        })
        .collect()
}

/// Worker `index` of `count`.
#[derive(Clone, Copy, Debug)]
pub struct Part {
    pub index: u64,
    pub count: u64,
}

impl Part {
    /// This worker's even share of `ids`.
    fn of(&self, ids: Range<u64>) -> Range<u64> {
        let len = ids.end - ids.start;
        ids.start + len * self.index / self.count..ids.start + len * (self.index + 1) / self.count
    }

    /// The run-wide number of this worker's connection `c`. The run deals the connections out
    /// to the workers in turn (the first ones get one more), so the numbers of all workers'
    /// connections are exactly `0..connections`.
    fn connection(&self, c: usize) -> u64 {
        c as u64 * self.count + self.index
    }
}

/// What a connection does, for [`route`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sends the scenario's requests (the prefill's too).
    Sender,
    /// Only receives pushes.
    Subscriber,
}

/// The target (an index into `Config::targets`) of each of the `count` connections with
/// `role` of worker `part`. A worker deals its connections out over the targets in turn,
/// starting one target further than the worker before it: every target gets its share of each
/// worker's connections (so of its instances and of its rate), and of the run's within one
/// connection per worker. The replication scenario sends to the first target and subscribes
/// on the second.
pub fn route(config: &Config, part: Part, role: Role, count: usize) -> Vec<usize> {
    let targets = config.targets().len() as u64;
    let replication = config.scenario.iter().any(|s| s.kind == Kind::Replication);
    (0..count as u64)
        .map(|c| match (replication, role) {
            (true, Role::Sender) => 0,
            (true, Role::Subscriber) => 1,
            (false, _) => ((c + part.index) % targets) as usize,
        })
        .collect()
}

/// The ids each scenario writes.
fn ids(config: &Config, kind: Kind) -> Range<u64> {
    let (p, n) = (config.population(), config.instances);
    match kind {
        Kind::Heartbeat | Kind::WsHeartbeat | Kind::Reregister | Kind::Push | Kind::Discover => {
            0..p
        }
        Kind::Register | Kind::Replication => p..p + n,
        Kind::Churn => p + n..p + 2 * n,
    }
}

fn population(config: &Config) -> Population {
    Population::new(&config.region, &config.zone, config.services)
}

/// The measured load of worker `part`, whose connections number `connections`.
pub fn measurement(config: &Config, part: Part, connections: usize) -> Workloads {
    if config.own_service {
        let kind = config.scenario[0].kind;
        return Workloads::PerConnection(
            (0..connections)
                .map(|c| own_service(config, kind, part.connection(c)))
                .collect(),
        );
    }
    Workloads::Shared(shared(config, part))
}

/// The heartbeats of the run-wide connection `connection`: the prefilled instances of service
/// `connection % services` (instance `i` lives in service `i % services`), round and round.
/// `Config::validate` allows `own_service` only for a heartbeat scenario, with an instance in
/// every service.
fn own_service(config: &Config, kind: Kind, connection: u64) -> Box<dyn Workload> {
    let service = connection % config.services;
    Box::new(instances::InstanceWrites::new(
        Op::Heartbeat,
        heartbeat_endpoint(kind),
        population(config),
        Batches::cycle(service..config.population(), config.batch).every(config.services),
    ))
}

/// The measured load of worker `part`, which all its connections share.
fn shared(config: &Config, part: Part) -> Box<dyn Workload> {
    let seed = config.seed ^ part.index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let build = |kind: Kind| -> Box<dyn Workload> {
        let cycle = |kind| Batches::cycle(part.of(ids(config, kind)), config.batch);
        let writes = |op, endpoint| -> Box<dyn Workload> {
            Box::new(instances::InstanceWrites::new(
                op,
                endpoint,
                population(config),
                cycle(kind),
            ))
        };
        match kind {
            Kind::Register | Kind::Reregister | Kind::Push | Kind::Replication => {
                writes(Op::Register, endpoint(Op::Register))
            }
            Kind::Heartbeat | Kind::WsHeartbeat => writes(Op::Heartbeat, heartbeat_endpoint(kind)),
            Kind::Churn => Box::new(churn::Churn::new(population(config), cycle(kind))),
            Kind::Discover => Box::new(discover::Discover::new(
                config.discovery_api,
                config.popularity,
                config.batch,
                population(config),
                fastrand::Rng::with_seed(seed),
            )),
        }
    };
    let shares: Vec<_> = config.scenario.iter().filter(|s| s.weight > 0).collect();
    match shares.as_slice() {
        [only] => build(only.kind),
        _ => Box::new(mix::Mix::new(
            shares.iter().map(|s| (s.weight, build(s.kind))).collect(),
            fastrand::Rng::with_seed(seed.rotate_left(17)),
        )),
    }
}

/// Where the measured load's connections upgrade to WebSocket; `None` for plain HTTP.
/// `Config::validate` keeps WebSocket scenarios out of mixes.
pub fn upgrade(config: &Config, target: &Target) -> Option<Upgrade> {
    let path = config.scenario.first()?.kind.websocket_path()?;
    Some(Upgrade {
        host: target.host.clone(),
        path,
        hello: vec![],
    })
}

/// Where the subscribers of the push and replication scenarios connect on `target`,
/// subscribed to every service of the population; `None` for the other scenarios.
pub fn subscription(config: &Config, target: &Target) -> Option<Upgrade> {
    if !config.scenario.first()?.kind.subscribes() {
        return None;
    }
    let population = population(config);
    let (mut hello, mut text) = (vec![], vec![]);
    for service in 0..population.services() {
        text.clear();
        population.write_subscription(service, &mut text);
        websocket::write_text(&text, &mut hello);
    }
    Some(Upgrade {
        host: target.host.clone(),
        path: "/ws/discovery/instance-change",
        hello,
    })
}

/// Worker `part`'s share of the prefill: register `prefilled..prefill` once.
pub fn prefill(config: &Config, part: Part) -> Box<dyn Workload> {
    Box::new(instances::InstanceWrites::new(
        Op::Register,
        endpoint(Op::Register),
        population(config),
        Batches::once(
            part.of(config.prefilled.min(config.prefill)..config.prefill),
            config.prefill_batch,
        ),
    ))
}

/// The headers of the run's HTTP requests to `target`, the prefill's included: with `gzip` they
/// all accept gzip replies (the registry's replies to the prefill are too small to be
/// compressed).
pub fn headers(config: &Config, target: &Target) -> Headers {
    Headers::new(&target.host, config.gzip)
}

/// Where a heartbeat scenario's requests go: frames on the upgraded connection for
/// ws-heartbeat, `heartbeat.json` for heartbeat.
fn heartbeat_endpoint(kind: Kind) -> Endpoint {
    match kind {
        Kind::WsHeartbeat => Endpoint::frame(),
        _ => endpoint(Op::Heartbeat),
    }
}

fn endpoint(op: Op) -> Endpoint {
    let path = match op {
        Op::Register => "/api/registry/register.json",
        Op::Heartbeat => "/api/registry/heartbeat.json",
        Op::Unregister => "/api/registry/unregister.json",
        Op::Discover => "/api/discovery/service.json",
        Op::Push => unreachable!("a push is not a request"),
    };
    Endpoint::post(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_ids_exactly() {
        let parts: Vec<_> = (0..3)
            .map(|index| Part { index, count: 3 }.of(10..20))
            .collect();
        assert_eq!(parts, vec![10..13, 13..16, 16..20]);
    }

    /// The ips of the instances in every request `workload` sends, in order.
    fn instance_ips(workload: &mut dyn Workload) -> Vec<String> {
        let mut ips = vec![];
        let mut out = vec![];
        while ips.len() < 100 && workload.next(&headers(), &mut out).is_some() {
            let text = String::from_utf8(std::mem::take(&mut out)).unwrap();
            let body: serde_json::Value =
                serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
            for i in body["instances"].as_array().unwrap() {
                ips.push(i["ip"].as_str().unwrap().to_owned());
            }
        }
        ips
    }

    /// The only worker of a run.
    const ONE: Part = Part { index: 0, count: 1 };

    fn target() -> Target {
        Config::default().resolve_targets().unwrap().remove(0)
    }

    /// The headers of requests to [`target`].
    fn headers() -> Headers {
        super::headers(&Config::default(), &target())
    }

    #[test]
    fn prefill_registers_only_what_is_not_there_yet() {
        let config = Config {
            prefill: 5,
            prefilled: 3,
            prefill_batch: 2,
            ..Config::default()
        };
        let part = Part { index: 0, count: 1 };
        assert_eq!(
            instance_ips(prefill(&config, part).as_mut()),
            vec!["10.0.0.3", "10.0.0.4"]
        );
        let done = Config {
            prefilled: 5,
            ..config
        };
        assert!(instance_ips(prefill(&done, part).as_mut()).is_empty());
        let earlier = Config {
            prefill: 0,
            prefilled: 5,
            ..done
        };
        assert!(instance_ips(prefill(&earlier, part).as_mut()).is_empty());
    }

    #[test]
    fn prefilled_alone_is_the_population_that_is_heartbeated() {
        let config = Config {
            scenario: vec![Share {
                kind: Kind::Heartbeat,
                weight: 1,
            }],
            prefilled: 3,
            instances: 10,
            ..Config::default()
        };
        let ips = instance_ips(measurement(&config, ONE, 1).of(0));
        assert_eq!(&ips[..4], ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.0"]);
        assert_eq!(ids(&config, Kind::Register), 3..13);
    }

    #[test]
    fn reregister_walks_the_prefilled_instances() {
        let config = Config {
            scenario: vec![Share {
                kind: Kind::Reregister,
                weight: 1,
            }],
            prefill: 3,
            ..Config::default()
        };
        let ips = instance_ips(measurement(&config, ONE, 1).of(0));
        assert_eq!(&ips[..4], ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.0"]);
        let mut out = vec![];
        measurement(&config, ONE, 1)
            .of(0)
            .next(&headers(), &mut out);
        assert!(out.starts_with(b"POST /api/registry/register.json "));
    }

    /// The JSON texts of the masked client frames in `bytes`, each under 126 bytes long or
    /// under 64 KiB (2 header bytes, a 16-bit length for the latter, the mask, the payload).
    fn frames(mut bytes: &[u8]) -> Vec<serde_json::Value> {
        let mut texts = vec![];
        while !bytes.is_empty() {
            let (len, start) = match bytes[1] & 0x7f {
                126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
                len => (usize::from(len), 2),
            };
            let mask = &bytes[start..start + 4];
            let text: Vec<u8> = bytes[start + 4..start + 4 + len]
                .iter()
                .zip(mask.iter().cycle())
                .map(|(b, m)| b ^ m)
                .collect();
            texts.push(serde_json::from_slice(&text).unwrap());
            bytes = &bytes[start + 4 + len..];
        }
        texts
    }

    #[test]
    fn ws_heartbeat_sends_heartbeat_requests_in_frames() {
        let config = Config {
            scenario: vec![Share {
                kind: Kind::WsHeartbeat,
                weight: 1,
            }],
            prefill: 5,
            batch: 2,
            ..Config::default()
        };
        let mut workloads = measurement(&config, ONE, 1);
        let mut out = vec![];
        assert_eq!(
            workloads.of(0).next(&headers(), &mut out),
            Some(Op::Heartbeat)
        );
        let [request] = frames(&out).try_into().unwrap();
        let ips: Vec<_> = request["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["ip"].clone())
            .collect();
        assert_eq!(ips, ["10.0.0.0", "10.0.0.1"]);
        let ws = upgrade(&config, &target()).unwrap();
        assert_eq!((ws.path, ws.hello.len()), ("/ws/registry/heartbeat", 0));
        assert!(upgrade(&Config::default(), &target()).is_none());
    }

    #[test]
    fn push_subscribes_to_every_service_and_registers_one_by_one() {
        let config = Config {
            scenario: vec![Share {
                kind: Kind::Push,
                weight: 1,
            }],
            prefill: 4,
            services: 3,
            ..Config::default()
        };
        let upgrade = subscription(&config, &target()).unwrap();
        assert_eq!(upgrade.path, "/ws/discovery/instance-change");
        let services: Vec<_> = frames(&upgrade.hello)
            .iter()
            .map(|v| v["serviceId"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(services.len(), 3);
        assert_eq!(services[2], "framework.soa.loadgen.v1.service2");
        let ips = instance_ips(measurement(&config, ONE, 1).of(0));
        assert_eq!(
            &ips[..5],
            ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.0"]
        );
        assert!(subscription(&Config::default(), &target()).is_none());
    }

    #[test]
    fn connections_go_to_the_targets_in_turn() {
        let three = Config {
            more_targets: vec![
                "http://127.0.0.1:8081".into(),
                "http://127.0.0.1:8082".into(),
            ],
            ..Config::default()
        };
        let routes = |config: &Config, role, counts: &[usize]| -> Vec<Vec<usize>> {
            let count = counts.len() as u64;
            (0..count)
                .map(|index| route(config, Part { index, count }, role, counts[index as usize]))
                .collect()
        };
        // 16 connections on 3 cores: 6, 5 and 5, over 3 targets.
        let senders = routes(&three, Role::Sender, &[6, 5, 5]);
        assert_eq!(
            senders,
            [
                vec![0, 1, 2, 0, 1, 2],
                vec![1, 2, 0, 1, 2],
                vec![2, 0, 1, 2, 0]
            ]
        );
        let per_target = |routes: &[Vec<usize>]| {
            let mut n = [0; 3];
            routes.iter().flatten().for_each(|&t| n[t] += 1);
            n
        };
        assert_eq!(per_target(&senders), [5, 5, 6]);
        // Two cores and three targets: each core still reaches every target.
        assert_eq!(
            per_target(&routes(&three, Role::Sender, &[8, 8])),
            [5, 6, 5]
        );
        // One subscriber per core, each on its own target.
        assert_eq!(
            routes(&three, Role::Subscriber, &[1, 1, 1]),
            [vec![0], vec![1], vec![2]]
        );
        // One target: everything goes there.
        let one = routes(&Config::default(), Role::Sender, &[3, 2]);
        assert_eq!(one, [vec![0; 3], vec![0; 2]]);
    }

    #[test]
    fn replication_registers_on_the_first_target_and_subscribes_on_the_second() {
        let config = Config {
            scenario: Share::alone(Kind::Replication),
            more_targets: vec!["http://127.0.0.1:8081".into()],
            prefill: 10,
            instances: 3,
            services: 2,
            ..Config::default()
        };
        for index in 0..2 {
            let part = Part { index, count: 2 };
            assert_eq!(route(&config, part, Role::Sender, 4), [0; 4]);
            assert_eq!(route(&config, part, Role::Subscriber, 2), [1; 2]);
        }
        // It registers the register scenario's instances, beyond the population, one by one
        // and round and round, ...
        let ips = instance_ips(measurement(&config, ONE, 1).of(0));
        assert_eq!(
            &ips[..4],
            ["10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.10"]
        );
        // ... and its subscribers follow every service of the population.
        let upgrade = subscription(&config, &target()).unwrap();
        assert_eq!(upgrade.path, "/ws/discovery/instance-change");
        assert_eq!(frames(&upgrade.hello).len(), 2);
    }

    #[test]
    fn connections_are_numbered_run_wide() {
        // 8 connections on 3 workers: 3, 3 and 2 of them (the first workers get one more).
        let mut numbers: Vec<_> = [3, 3, 2]
            .into_iter()
            .enumerate()
            .flat_map(|(index, connections)| {
                let part = Part {
                    index: index as u64,
                    count: 3,
                };
                (0..connections).map(move |c| part.connection(c))
            })
            .collect();
        numbers.sort();
        assert_eq!(numbers, (0..8).collect::<Vec<_>>());
    }

    /// The instance numbers (`loadgen-host{i}`) and services of the next `requests` requests of
    /// `workload`, a list per request.
    fn heartbeated(workload: &mut dyn Workload, requests: usize) -> Vec<Vec<(u64, String)>> {
        let mut out = vec![];
        (0..requests)
            .map(|_| {
                out.clear();
                assert_eq!(workload.next(&headers(), &mut out), Some(Op::Heartbeat));
                let text = std::str::from_utf8(&out).unwrap();
                let body: serde_json::Value =
                    serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
                let instances = body["instances"].as_array().unwrap();
                instances
                    .iter()
                    .map(|i| {
                        let host = i["machineName"].as_str().unwrap();
                        let number = host.strip_prefix("loadgen-host").unwrap();
                        let service = i["serviceId"].as_str().unwrap();
                        (number.parse().unwrap(), service.to_owned())
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn own_service_connections_heartbeat_only_their_service_round_and_round() {
        let config = Config {
            scenario: vec![Share {
                kind: Kind::Heartbeat,
                weight: 1,
            }],
            prefill: 95,
            services: 10,
            batch: 4,
            own_service: true,
            ..Config::default()
        };
        let worker = |index| measurement(&config, Part { index, count: 2 }, 2);
        let mut workers = [worker(0), worker(1)];
        // Run-wide, the first worker's connections are 0 and 2, the second's 1 and 3.
        for (index, c, service) in [(0, 0, 0), (1, 0, 1), (0, 1, 2), (1, 1, 3)] {
            let requests = heartbeated(workers[index].of(c), 6);
            let name = format!("framework.soa.loadgen.v1.service{service}");
            assert!(requests.iter().flatten().all(|(_, s)| *s == name));
            let numbers: Vec<Vec<u64>> = requests
                .iter()
                .map(|r| r.iter().map(|(i, _)| *i).collect())
                .collect();
            let s = service;
            assert_eq!(
                numbers,
                vec![
                    vec![s, s + 10, s + 20, s + 30],
                    vec![s + 40, s + 50, s + 60, s + 70],
                    vec![s + 80, s + 90],
                    vec![s, s + 10, s + 20, s + 30],
                    vec![s + 40, s + 50, s + 60, s + 70],
                    vec![s + 80, s + 90],
                ]
            );
        }
        // A batch larger than a service is all of it: the second worker's third connection is
        // run-wide 5, and service 5 holds 5, 15, ..., 85 below the prefill.
        let whole = Config {
            batch: 100,
            ..config.clone()
        };
        let mut third = measurement(&whole, Part { index: 1, count: 2 }, 3);
        let service5: Vec<_> = (5..95)
            .step_by(10)
            .map(|i| (i, "framework.soa.loadgen.v1.service5".to_owned()))
            .collect();
        assert_eq!(
            heartbeated(third.of(2), 2),
            vec![service5.clone(), service5]
        );
    }

    #[test]
    fn own_service_ws_heartbeats_are_frames() {
        let config = Config {
            scenario: vec![Share {
                kind: Kind::WsHeartbeat,
                weight: 1,
            }],
            prefill: 20,
            services: 10,
            batch: 5,
            own_service: true,
            ..Config::default()
        };
        let mut out = vec![];
        let mut workloads = measurement(&config, Part { index: 0, count: 2 }, 2);
        assert_eq!(
            workloads.of(1).next(&headers(), &mut out),
            Some(Op::Heartbeat)
        );
        let [request] = frames(&out).try_into().unwrap();
        let services: Vec<_> = request["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["serviceId"].clone())
            .collect();
        assert_eq!(services, ["framework.soa.loadgen.v1.service2"; 2]);
    }

    #[test]
    fn mix_parses() {
        assert_eq!(
            parse_mix("heartbeat=80, discover=19,register=1").unwrap(),
            vec![
                Share {
                    kind: Kind::Heartbeat,
                    weight: 80
                },
                Share {
                    kind: Kind::Discover,
                    weight: 19
                },
                Share {
                    kind: Kind::Register,
                    weight: 1
                },
            ]
        );
        assert!(parse_mix("heartbeat").is_err());
        assert!(parse_mix("nap=3").is_err());
        assert!(parse_mix("discover=x").is_err());
    }

    #[test]
    fn scenarios_write_disjoint_instances() {
        let config = Config {
            prefill: 100,
            instances: 50,
            ..Config::default()
        };
        assert_eq!(ids(&config, Kind::Heartbeat), 0..100);
        assert_eq!(ids(&config, Kind::Reregister), 0..100);
        assert_eq!(ids(&config, Kind::Register), 100..150);
        assert_eq!(ids(&config, Kind::Churn), 150..200);
    }
}
