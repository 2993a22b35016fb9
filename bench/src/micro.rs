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

use artemis::decode;
use artemis_shards::{
    shard_for, Instance, InstanceLimits, NodeRules, RemovalMemory, Retention, SafetyConfig, Shard,
    ShardConfig, VersionClock,
};
use clap::Parser;

// The servers' allocator: a decode allocates the instance's strings.
#[global_allocator]
static ALLOCATOR: artemis::Allocator = artemis::Allocator;

/// The load generator's heartbeat body for one instance (`--region SHA --zone SHAJQ`).
const HEARTBEAT: &[u8] = br#"{"instances":[{"groupId":null,"healthCheckUrl":"http://10.2.3.4:8081/health","instanceId":"10.2.3.4:8081","ip":"10.2.3.4","machineName":"loadgen-host16909060","metadata":{"k":"v"},"port":8081,"protocol":"http","regionId":"SHA","serviceId":"framework.soa.loadgen.v1.service0","status":"up","url":"http://10.2.3.4:8081/service0/","zoneId":"SHAJQ"}]}"#;

/// The load generator's `service.json` body.
const SERVICE: &[u8] = br#"{"discoveryConfig":{"serviceId":"framework.soa.loadgen.v1.service17"},"regionId":"SHA","zoneId":"SHAJQ"}"#;

#[derive(Parser, Debug)]
#[command(
    name = "artemis-micro",
    about = "What the pieces of a request cost on their own: decoding bodies, picking a shard"
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
    ids: Vec<String>,
    /// A shard holding [`INSTANCES`] instances as the load generator registers them.
    shard: Shard,
    /// A heartbeat's batch for each of them.
    beats: Vec<Vec<(u32, Instance)>>,
}

/// The instances of the shard, 10 in each of 100 services (the load generator's 1 k population).
const INSTANCES: usize = 1_000;

/// When the shard's instances were registered, in milliseconds; heartbeats come a millisecond
/// apart after it.
const REGISTERED_MS: u64 = 1_000_000;

/// A shard as a server's on one core, with the default settings.
fn shard() -> Shard {
    let config = ShardConfig {
        rules: NodeRules {
            region_id: "SHA".into(),
            zone_id: "SHAJQ".into(),
            allow_registry_from_other_zone: false,
        },
        lease_ttl_ms: 20_000,
        legacy_lease_ttl_ms: 90_000,
        self_preservation: Some(SafetyConfig::default()),
        eviction_batch: 1_000,
        delta_retention: Retention::AgeMs(300_000),
        delta_retention_bytes: 32 << 20,
        limits: InstanceLimits::default(),
        removal_memory: RemovalMemory {
            memory_ms: 600_000,
            max_entries: 1_000,
        },
    };
    Shard::new(config, Arc::new(VersionClock::starting_at(REGISTERED_MS)))
}

/// The load generator's heartbeat batch for instance `n`: its body's instance, renumbered.
fn beat(n: usize) -> Vec<(u32, Instance)> {
    let mut body = HEARTBEAT.to_vec();
    let request = decode::instances_request(&mut body).expect("decodes");
    let mut instance = request
        .and_then(|r| r.instances?.pop()?)
        .expect("one instance");
    instance.service_id = Some(format!("framework.soa.loadgen.v1.service{}", n / 10));
    instance.instance_id = Some(format!("10.2.3.4:{}", 8000 + n));
    vec![(0, instance)]
}

impl Scratch {
    fn decode(&mut self, bytes: &[u8], read: fn(&mut [u8]) -> bool) {
        self.body.clear();
        self.body.extend_from_slice(bytes);
        assert!(read(black_box(&mut self.body)), "the body decodes");
    }
}

/// One call of a piece, given the call's number.
type Call = fn(&mut Scratch, u32);

/// Each piece by name.
const PIECES: [(&str, Call); 4] = [
    ("heartbeat body, copied, decoded and dropped", |s, _| {
        s.decode(HEARTBEAT, |b| {
            black_box(decode::instances_request(b)).is_ok()
        });
    }),
    ("service.json body, copied, decoded and dropped", |s, _| {
        s.decode(SERVICE, |b| black_box(decode::service_request(b)).is_ok());
    }),
    (
        "heartbeat of one instance applied to its shard of 1 000",
        |s, n| {
            let beat = &s.beats[n as usize % INSTANCES];
            let failed = s
                .shard
                .heartbeat(black_box(beat), REGISTERED_MS + u64::from(n) / 1_000);
            assert!(failed.is_empty(), "the lease is renewed");
        },
    ),
    ("shard_for of a service id over 2 shards", |s, n| {
        let id = &s.ids[n as usize % s.ids.len()];
        black_box(shard_for(black_box(id), 2));
    }),
];

fn main() {
    let cli = Cli::parse();
    let mut scratch = Scratch {
        body: Vec::new(),
        ids: (0..100)
            .map(|s| format!("framework.soa.loadgen.v1.service{s}"))
            .collect(),
        shard: shard(),
        beats: (0..INSTANCES).map(beat).collect(),
    };
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
