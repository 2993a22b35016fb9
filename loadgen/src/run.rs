//! A whole run: check that the targets answer, register the population (prefill), put any
//! attack and probe in place (on the first target), then drive the measured load from one
//! pinned worker per core and turn the tallies into a report.
//! [`prefill`] stops after the population is in, for callers that look at the server in
//! between (the benchmark reads its memory) and then measure with `prefilled` set.

use crate::attack::{self, Siege};
use crate::clock;
use crate::config::{Config, Pacing, Target};
use crate::descriptors;
use crate::error::Error;
use crate::probe::Probe;
use crate::progress;
use crate::report::{Prefill, Report, Second};
use crate::scenario::{self, Part, Role, Workloads};
use crate::tally::Tally;
use crate::worker::{self, Destination, Plan};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

/// Runs the load `config` describes. `Err` means no run could be made (exit status 2); an
/// SLO violation is a report whose `exit_code()` is 1.
pub fn run(config: Config) -> Result<Report, Error> {
    let targets = reach(&config)?;
    let target = &targets[0];
    descriptors::ensure(config.sockets())?;
    let prefill = register_population(&config, &targets)?;
    let siege = match config.attack.iter().any(|a| a.connections > 0) {
        true => Some(attack::start(
            &config.attack,
            target.addr,
            &target.host,
            config.seed,
        )?),
        false => None,
    };
    let probe = config
        .probe
        .map(|every| Probe::start(every, target, config.timeout))
        .transpose()?;
    let measured = phase(&config, &targets, Phase::Measure);
    let probes = probe.map(Probe::stop).unwrap_or_default();
    let attack = siege.map(Siege::stop).transpose()?.unwrap_or_default();
    let (tally, per_second) = measured?;
    let mut report = Report::new(config, prefill, &tally);
    report.attack = attack;
    report.probes = probes;
    report.per_second = per_second;
    Ok(report)
}

/// Registers the instances `config.prefilled..config.prefill` and stops there; `None` when
/// there was nothing to register.
pub fn prefill(config: &Config) -> Result<Option<Prefill>, Error> {
    let targets = reach(config)?;
    register_population(config, &targets)
}

/// Checks the configuration and that every target takes connections.
fn reach(config: &Config) -> Result<Vec<Target>, Error> {
    config.validate()?;
    let targets = config.resolve_targets()?;
    for (target, url) in targets.iter().zip(config.targets()) {
        std::net::TcpStream::connect_timeout(&target.addr, config.timeout).map_err(|e| {
            Error::Unreachable {
                target: url.to_owned(),
                reason: e.to_string(),
            }
        })?;
    }
    Ok(targets)
}

#[derive(Clone, Copy)]
enum Phase {
    Prefill,
    Measure,
}

fn register_population(config: &Config, targets: &[Target]) -> Result<Option<Prefill>, Error> {
    if config.prefilled >= config.prefill {
        return Ok(None);
    }
    let instances = config.prefill - config.prefilled;
    if !config.quiet {
        // The report gives how long it took; this says what the wait is.
        eprintln!("registering {instances} instances (--prefill) ...");
    }
    let started = clock::now();
    let (tally, _) = phase(config, targets, Phase::Prefill)?;
    let failures: Vec<String> = tally
        .ops()
        .flat_map(|(_, t)| t.failures.iter().map(|(f, n)| format!("{f} x{n}")))
        .collect();
    if !failures.is_empty() {
        return Err(Error::Prefill(failures.join(", ")));
    }
    let seconds = (clock::now() - started) as f64 / 1e9;
    Ok(Some(Prefill { instances, seconds }))
}

/// Runs one phase on every core and merges the workers' tallies; the measured phase also
/// gives its seconds (and prints them as they go, unless quiet).
fn phase(config: &Config, targets: &[Target], phase: Phase) -> Result<(Tally, Vec<Second>), Error> {
    let workers = config.cores.len();
    let ready = Arc::new(Barrier::new(workers));
    let measured = matches!(phase, Phase::Measure);
    let destinations: Vec<Destination> = targets
        .iter()
        .map(|target| Destination {
            addr: target.addr,
            headers: scenario::headers(config, target),
            upgrade: measured
                .then(|| scenario::upgrade(config, target))
                .flatten(),
            subscription: measured
                .then(|| scenario::subscription(config, target))
                .flatten(),
        })
        .collect();
    let subscribed = destinations.iter().any(|d| d.subscription.is_some());
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut handles = Vec::with_capacity(workers);
    for (index, &core) in config.cores.iter().enumerate() {
        let connections = share(config.connections, workers, index);
        let subscribers = share(config.subscribers.unwrap_or(workers), workers, index);
        let part = Part {
            index: index as u64,
            count: workers as u64,
        };
        let (rate, workloads, warmup, duration) = match phase {
            Phase::Prefill => (
                None,
                Workloads::Shared(scenario::prefill(config, part)),
                Duration::ZERO,
                None,
            ),
            Phase::Measure => (
                match config.pacing {
                    Pacing::Rate(r) => Some(r * connections as f64 / config.connections as f64),
                    Pacing::Max => None,
                },
                scenario::measurement(config, part, connections),
                config.warmup,
                Some(config.duration),
            ),
        };
        let plan = Plan {
            core,
            destinations: destinations.clone(),
            connections: scenario::route(config, part, Role::Sender, connections),
            subscribers: match subscribed {
                true => scenario::route(config, part, Role::Subscriber, subscribers),
                false => Vec::new(),
            },
            rate,
            phase: index as f64 / workers as f64,
            workloads,
            warmup,
            duration,
            timeout: config.timeout,
            seconds: measured.then(|| tx.clone()),
            ready: ready.clone(),
            busy_poll: config.busy_poll,
        };
        handles.push(
            thread::Builder::new()
                .name(format!("loadgen-{core}"))
                .spawn(move || worker::run(plan))?,
        );
    }
    drop(tx);
    let seconds = match measured {
        true => progress::collect(rx, workers, config.quiet, config.warmup, config.duration),
        false => Vec::new(),
    };
    let mut tally = Tally::default();
    let mut first_error = None;
    for handle in handles {
        match handle.join().expect("a worker panicked") {
            Ok(t) => tally.merge(&t),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    first_error.map_or(Ok((tally, seconds)), Err)
}

/// Worker `index`'s share of `total` connections.
fn share(total: usize, workers: usize, index: usize) -> usize {
    total / workers + usize::from(index < total % workers)
}

#[cfg(test)]
mod tests {
    #[test]
    fn connections_are_shared_out_evenly() {
        let shares: Vec<_> = (0..3).map(|i| super::share(8, 3, i)).collect();
        assert_eq!(shares, vec![3, 3, 2]);
    }
}
