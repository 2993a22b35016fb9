//! `artemis-micro`: what the pieces of a request cost on their own, without a socket.
//!
//! End-to-end rounds on a shared VM move by more than a change of a few per cent in one piece of
//! a request, so such a change is measured here: the load generator's request bodies decoded
//! (and dropped), a heartbeat applied to its shard and a service's owning shard picked, each in a
//! loop, several rounds, with the servers' allocator. Run it with the build before a change and
//! the build after, alternating.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use artemis::{decode, Cli as ServerCli, Command};
use artemis_loadgen::Population;
use artemis_shards::{shard_for, Instance, Shard, VersionClock};
use clap::Parser;

// The servers' allocator: a decode allocates the instance's strings.
#[global_allocator]
static ALLOCATOR: artemis::Allocator = artemis::Allocator;

/// The load generator's population of 1 k instances (`--region SHA --zone SHAJQ --services 100`):
/// 10 instances in each of 100 services.
const INSTANCES: u64 = 1_000;
const SERVICES: u64 = 100;

#[derive(Parser, Debug)]
#[command(
    name = "artemis-micro",
    about = "What the pieces of a request cost on their own: decoding bodies, a heartbeat applied to its shard, picking a shard"
)]
struct Cli {
    /// Calls timed in each round.
    #[arg(long, default_value_t = 1_000_000)]
    iterations: u32,
    /// Rounds of each piece; each round's time per call is printed.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
}

/// What the pieces work on, made once.
struct Scratch {
    /// The body being decoded: a fresh copy for each decode, as a request's (the full decoder
    /// parses in place).
    body: Vec<u8>,
    /// The load generator's heartbeat body for its first instance, and its `service.json` body
    /// for the first service.
    heartbeat: Vec<u8>,
    service: Vec<u8>,
    /// A shard holding the population's instances, registered as the load generator does.
    shard: Shard,
    /// A heartbeat's batch for each of them.
    beats: Vec<Vec<(u32, Instance)>>,
}

/// When the shard's instances were registered, in milliseconds; the heartbeats of a round come
/// after it, a thousand to the millisecond.
const REGISTERED_MS: u64 = 1_000_000;

/// A shard as `artemis server --region SHA --zone SHAJQ` has on one core.
fn shard() -> Shard {
    let args = ["artemis", "server", "--region", "SHA", "--zone", "SHAJQ"];
    let Command::Server(config) = ServerCli::parse_from(args).command;
    let clock = VersionClock::starting_at(REGISTERED_MS);
    Shard::new(config.shard_config(1), Arc::new(clock))
}

/// The load generator's heartbeat batch for instance `n`, decoded from its body.
fn beat(population: &Population, n: u64) -> Vec<(u32, Instance)> {
    let mut body = Vec::new();
    population.write_instances([n], &mut body);
    let request = decode::instances_request(&mut body).expect("decodes");
    let instance = request.and_then(|r| r.instances?.pop()?);
    vec![(0, instance.expect("one instance"))]
}

/// Copies `bytes` into `body` and reads it there with `read`.
fn decode(body: &mut Vec<u8>, bytes: &[u8], read: fn(&mut [u8]) -> bool) {
    body.clear();
    body.extend_from_slice(bytes);
    assert!(read(black_box(body)), "the body decodes");
}

/// One call of a piece, given the call's number.
type Call = fn(&mut Scratch, u32);

/// Each piece by name.
const PIECES: [(&str, Call); 4] = [
    ("heartbeat body, copied, decoded and dropped", |s, _| {
        decode(&mut s.body, &s.heartbeat, |b| {
            black_box(decode::instances_request(b)).is_ok()
        });
    }),
    ("service.json body, copied, decoded and dropped", |s, _| {
        decode(&mut s.body, &s.service, |b| {
            black_box(decode::service_request(b)).is_ok()
        });
    }),
    (
        "heartbeat of one instance applied to its shard of 1 000",
        |s, n| {
            let beat = &s.beats[n as usize % s.beats.len()];
            let failed = s
                .shard
                .heartbeat(black_box(beat), REGISTERED_MS + u64::from(n) / 1_000);
            assert!(failed.is_empty(), "the lease is renewed");
        },
    ),
    ("shard_for of a service id over 2 shards", |s, n| {
        // The population's service ids, each in turn.
        let (_, instance) = &s.beats[n as usize % SERVICES as usize][0];
        let id = instance.service_id.as_deref().unwrap_or_default();
        black_box(shard_for(black_box(id), 2));
    }),
];

fn main() {
    let cli = Cli::parse();
    let population = Population::new("SHA", "SHAJQ", SERVICES);
    let mut scratch = Scratch {
        body: Vec::new(),
        heartbeat: Vec::new(),
        service: Vec::new(),
        shard: shard(),
        beats: (0..INSTANCES).map(|n| beat(&population, n)).collect(),
    };
    population.write_instances([0], &mut scratch.heartbeat);
    population.write_get_service(0, &mut scratch.service);
    for beat in &scratch.beats {
        assert!(scratch.shard.register(beat, REGISTERED_MS).is_empty());
    }
    for (name, piece) in PIECES {
        let rounds: Vec<String> = (0..cli.rounds)
            .map(|_| {
                let start = Instant::now();
                for n in 0..cli.iterations {
                    piece(&mut scratch, n);
                }
                let ns = start.elapsed().as_nanos() as f64 / f64::from(cli.iterations);
                format!("{ns:.1}")
            })
            .collect();
        println!("{name}: {} ns", rounds.join(" / "));
    }
}
