//! The command line: flags, their defaults and help, turned into a `Config`.

use crate::config::{Config, Pacing};
use crate::error::Error;
use crate::scenario::{self, DiscoveryApi, Kind, Popularity, Share};
use crate::slo::Slo;
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Load generator for the Artemis registry, with latency SLO checks.
///
/// Exit status: 0 when the SLO is met (or none is given), 1 when it is violated, 2 for bad
/// arguments or an unreachable target.
// Lists parsed whole from one value are spelled `std::vec::Vec`: clap's derive takes a bare
// `Vec` for a repeated flag.
#[derive(Debug, Parser)]
#[command(name = "artemis-loadgen", version)]
pub struct Cli {
    /// The registry, as http://host:port.
    #[arg(
        long,
        env = "ARTEMIS_LOADGEN_TARGET",
        default_value = "http://127.0.0.1:8080"
    )]
    pub target: String,

    /// Several registries, e.g. the nodes of one cluster, instead of --target (which they
    /// override): http://127.0.0.1:8080,http://127.0.0.1:8081. The connections, the prefill's
    /// too, are dealt out over them in turn; the replication scenario registers on the first and
    /// awaits the pushes on the second.
    #[arg(long, value_parser = parse_targets)]
    pub targets: Option<std::vec::Vec<String>>,

    /// What to send: register, reregister, heartbeat, ws-heartbeat, push, replication, discover, churn, or mix (weights from --mix).
    #[arg(long, default_value = "discover", value_parser = parse_scenario)]
    pub scenario: Scenario,

    /// Weights for --scenario mix, e.g. heartbeat=80,discover=19,register=1.
    #[arg(long, value_parser = scenario::parse_mix)]
    pub mix: Option<std::vec::Vec<Share>>,

    /// Open loop: requests in all per second (100 or 100/s), or per any time (100/1s, 6000/m,
    /// 50/500ms), spread evenly over the connections.
    #[arg(long, value_parser = parse_rate, conflicts_with_all = ["max", "interval"])]
    pub rate: Option<f64>,

    /// Closed loop: every connection sends again as soon as its reply is in (saturation).
    #[arg(long)]
    pub max: bool,

    /// Heartbeat every prefilled instance once per interval (sets the rate), e.g. 5s.
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "max")]
    pub interval: Option<Duration>,

    /// Measured time, after the warm-up.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub duration: Duration,

    /// Load before the measured time, left out of every figure.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub warmup: Duration,

    /// A request with no reply after this long fails as a timeout.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub timeout: Duration,

    /// Connections in all, shared out among the cores.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,

    /// Push subscriber connections (push and replication), beyond --connections [default: one
    /// per core].
    #[arg(long)]
    pub subscribers: Option<usize>,

    /// Cores to run one pinned worker each on, e.g. 0-3,6 [default: all].
    #[arg(long, value_parser = crate::cores::parse)]
    pub cores: Option<std::vec::Vec<usize>>,

    /// Instances to register before measuring (heartbeat, reregister and discover use them).
    #[arg(long, default_value_t = 0)]
    pub prefill: u64,

    /// Instances an earlier run already registered: with --prefill, the first N of them, so
    /// only the rest are registered now; alone, the population the run works on, registering
    /// nothing (e.g. --scenario heartbeat --prefilled 2000).
    #[arg(long, default_value_t = 0)]
    pub prefilled: u64,

    /// Instances per register request during the prefill.
    #[arg(long, default_value_t = 100)]
    pub prefill_batch: u64,

    /// Distinct instances the register, churn and replication scenarios write.
    #[arg(long, default_value_t = 1000)]
    pub instances: u64,

    /// Services the instances are spread over.
    #[arg(long, default_value_t = 100)]
    pub services: u64,

    /// Instances per register/heartbeat/unregister request; services per lookup request.
    #[arg(long, default_value_t = 1)]
    pub batch: u64,

    /// Each connection plays one client that heartbeats only the instances of its own service
    /// (as a registered application does), instead of all connections walking the whole
    /// population. With --scenario heartbeat or ws-heartbeat, a --prefill of at least
    /// --services, and --rate or --max (not --interval).
    #[arg(long)]
    pub own_service: bool,

    /// Send Accept-Encoding: gzip with every HTTP request, as Java clients do, and inflate the
    /// gzipped replies (the server compresses replies of 1 KiB or more). Not with ws-heartbeat
    /// or push.
    #[arg(long)]
    pub gzip: bool,

    /// Region of the instances and discovery requests (the server's region).
    #[arg(long, default_value = "default")]
    pub region: String,

    /// Zone of the instances and discovery requests (the server's zone).
    #[arg(long, default_value = "default")]
    pub zone: String,

    /// Discovery endpoint: service.json by POST or GET, or lookup.json.
    #[arg(long, value_enum, default_value = "post")]
    pub discovery_api: DiscoveryApi,

    /// How discovery picks services.
    #[arg(long, value_enum, default_value = "uniform")]
    pub popularity: PopularityArg,

    /// Exponent of the Zipf popularity.
    #[arg(long, default_value_t = 1.0)]
    pub zipf_exponent: f64,

    /// Latency objective every operation must meet, e.g. p99=500us,p999=1ms.
    #[arg(long, value_parser = Slo::parse_latency)]
    pub slo: Option<std::vec::Vec<crate::slo::Bound>>,

    /// Largest allowed share of failed requests, e.g. 0.001.
    #[arg(long)]
    pub max_error_rate: Option<f64>,

    /// Also write the report, with the full configuration, as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Also write the latency histogram of all operations (from the intended send time) to this
    /// file in HdrHistogram's percentile-distribution format (.hgrm, milliseconds), for
    /// HdrHistogram's plotter.
    #[arg(long)]
    pub hgrm: Option<PathBuf>,

    /// No progress lines.
    #[arg(long)]
    pub quiet: bool,

    /// Poll the sockets without ever sleeping (each worker keeps its core busy): replies then
    /// never have to wake the load generator. On loopback the server's send pays for that
    /// wake-up, which a client on another machine would not cost it; use with --cores that the
    /// server does not run on.
    #[arg(long)]
    pub busy_poll: bool,

    /// Seed of the random choices, for repeatable runs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Hostile connections beside the load, e.g. idle=10000,slowloris=100@1s,garbage=4@1ms:
    /// idle ones send nothing, a slowloris drips a request head that never ends (2 bytes per
    /// pace, default 1s), garbage sends random bytes (a burst per pace, default 1ms). Each
    /// reconnects when the server closes it.
    #[arg(long, value_parser = crate::attack::parse)]
    pub attack: Option<std::vec::Vec<crate::attack::Attacker>>,

    /// Fetch /health and /metrics this often during the run and report their latency, e.g. 250ms.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub probe: Option<Duration>,
}

/// The cores `--cores` defaults to: every core this process may run on.
pub fn available_cores() -> Vec<usize> {
    crate::cores::available()
}

/// The name errors are printed under.
const NAME: &str = "artemis-loadgen";

/// The one line a command-line error is printed as, whether clap found it or the run's own
/// checks did: `artemis-loadgen: <what> (see --help)`. It exits with status 2.
pub fn usage_line(what: &str) -> String {
    format!("{NAME}: {what} (see --help)")
}

/// The line an error that stopped the run is printed as: a bad argument as [`usage_line`]
/// does, the others (an unreachable target, a failed prefill) as `artemis-loadgen: <error>`.
pub fn error_line(e: &Error) -> String {
    match e {
        Error::Argument(what) => usage_line(what),
        e => format!("{NAME}: {e}"),
    }
}

/// What a clap error says, on one line for [`usage_line`]: its message without the `error:`
/// before it and the usage and `try '--help'` after it, and its tips (`a similar argument
/// exists: '--rate'`) after a `;`.
pub fn clap_error(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut paragraphs = text.split("\n\n");
    let message = paragraphs.next().unwrap_or_default();
    let message = message.strip_prefix("error:").unwrap_or(message);
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut what = lines.join(" ");
    for tip in paragraphs
        .flat_map(str::lines)
        .filter_map(|l| l.trim().strip_prefix("tip:"))
    {
        what = format!("{what}; {}", tip.trim());
    }
    what
}

/// `--rate`: `100` or `100/s` a second, `100/1s`, `6000/m`, `50/500ms` (any humantime
/// duration, its `1` left out or not), as requests per second.
fn parse_rate(spec: &str) -> Result<f64, String> {
    let wrong = || format!("{spec:?} is not a rate like 100, 100/s, 100/1s or 6000/m");
    let (count, per) = match spec.split_once('/') {
        Some((count, per)) => (count, Some(per.trim())),
        None => (spec, None),
    };
    let count: f64 = count.trim().parse().map_err(|_| wrong())?;
    if !(count.is_finite() && count > 0.0) {
        return Err(format!("rate {spec:?} is not a positive number"));
    }
    let per = match per {
        None => Duration::from_secs(1),
        Some(per) if per.starts_with(|c: char| c.is_ascii_digit()) => {
            humantime::parse_duration(per).map_err(|_| wrong())?
        }
        Some(per) => humantime::parse_duration(&format!("1{per}")).map_err(|_| wrong())?,
    };
    if per.is_zero() {
        return Err(format!("rate {spec:?} is per no time at all"));
    }
    Ok(count / per.as_secs_f64())
}

/// `--targets`: `URL,URL,...`, at least one, none empty (each URL is checked when it is
/// resolved, as `--target` is).
fn parse_targets(list: &str) -> Result<Vec<String>, String> {
    let targets: Vec<String> = list.split(',').map(|t| t.trim().to_owned()).collect();
    if targets.iter().any(String::is_empty) {
        return Err(format!(
            "{list:?} is not a list of URLs like http://h:8080,http://h:8081"
        ));
    }
    Ok(targets)
}

/// `--scenario`: one kind of request, or a weighted mix of kinds (`--mix`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    One(Kind),
    Mix,
}

fn parse_scenario(name: &str) -> Result<Scenario, String> {
    if name == "mix" {
        return Ok(Scenario::Mix);
    }
    Kind::from_str(name, true)
        .map(Scenario::One)
        .map_err(|_| format!("unknown scenario `{name}`"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PopularityArg {
    Uniform,
    Zipf,
}

impl Cli {
    pub fn into_config(self) -> Result<Config, Error> {
        let bad = |msg: &str| Err(Error::Argument(msg.to_owned()));
        let scenario = match (self.scenario, self.mix) {
            (Scenario::Mix, Some(mix)) => mix,
            (Scenario::Mix, None) => return bad("--scenario mix needs --mix"),
            (_, Some(_)) => return bad("--mix goes with --scenario mix"),
            (Scenario::One(kind), None) => Share::alone(kind),
        };
        let pacing = match (self.rate, self.max, self.interval) {
            (_, true, _) => Pacing::Max,
            (Some(rate), _, _) => Pacing::Rate(rate),
            (None, _, Some(interval)) => {
                let heartbeats = matches!(
                    self.scenario,
                    Scenario::One(Kind::Heartbeat | Kind::WsHeartbeat)
                );
                let population = self.prefill.max(self.prefilled);
                if !heartbeats || population == 0 {
                    return bad(
                        "--interval goes with a heartbeat scenario and a --prefill (or --prefilled)",
                    );
                }
                if self.own_service {
                    // Only the connections' own services are heartbeated: the population's
                    // interval says nothing about their rate.
                    return bad("--interval does not go with --own-service; give a --rate");
                }
                let requests = population.div_ceil(self.batch.max(1));
                Pacing::Rate(requests as f64 / interval.as_secs_f64())
            }
            (None, false, None) => Config::default().pacing,
        };
        let (target, more_targets) = match self.targets {
            Some(mut targets) => (targets.remove(0), targets),
            None => (self.target, Vec::new()),
        };
        Ok(Config {
            target,
            more_targets,
            scenario,
            pacing,
            duration: self.duration,
            warmup: self.warmup,
            timeout: self.timeout,
            connections: self.connections,
            subscribers: self.subscribers,
            cores: self.cores.unwrap_or_else(available_cores),
            prefill: self.prefill,
            prefilled: self.prefilled,
            prefill_batch: self.prefill_batch,
            instances: self.instances,
            services: self.services,
            batch: self.batch,
            own_service: self.own_service,
            gzip: self.gzip,
            region: self.region,
            zone: self.zone,
            discovery_api: self.discovery_api,
            popularity: match self.popularity {
                PopularityArg::Uniform => Popularity::Uniform,
                PopularityArg::Zipf => Popularity::Zipf {
                    exponent: self.zipf_exponent,
                },
            },
            slo: Slo {
                latency: self.slo.unwrap_or_default(),
                max_error_rate: self.max_error_rate,
            },
            seed: self.seed,
            quiet: self.quiet,
            busy_poll: self.busy_poll,
            attack: self.attack.unwrap_or_default(),
            probe: self.probe,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &str) -> Result<Config, Error> {
        let argv = std::iter::once("artemis-loadgen").chain(args.split_whitespace());
        Cli::try_parse_from(argv).unwrap().into_config()
    }

    #[test]
    fn the_documented_invocation_parses() {
        let c = config(
            "--target http://127.0.0.1:8080 --scenario discover --prefill 1000 --rate 2000 \
             --duration 5s --slo p99=500us --json out.json",
        )
        .unwrap();
        assert_eq!(c.pacing, Pacing::Rate(2000.0));
        assert_eq!(c.duration, Duration::from_secs(5));
        assert_eq!(c.prefill, 1000);
        assert_eq!(c.slo.latency[0].limit, Duration::from_micros(500));
        assert_eq!(
            c.scenario,
            vec![Share {
                kind: Kind::Discover,
                weight: 1
            }]
        );
    }

    #[test]
    fn mix_and_interval() {
        let c = config("--scenario mix --mix heartbeat=80,discover=20 --max").unwrap();
        assert_eq!(c.scenario.len(), 2);
        assert_eq!(c.pacing, Pacing::Max);
        let c = config("--scenario heartbeat --prefill 1000 --batch 10 --interval 5s").unwrap();
        assert_eq!(c.pacing, Pacing::Rate(20.0));
        assert!(config("--scenario mix").is_err());
        assert!(config("--mix discover=1").is_err());
        assert!(config("--scenario discover --interval 5s").is_err());
    }

    #[test]
    fn a_shared_population() {
        let c = config("--scenario reregister --prefill 1000 --prefilled 1000").unwrap();
        assert_eq!(
            c.scenario,
            vec![Share {
                kind: Kind::Reregister,
                weight: 1
            }]
        );
        assert_eq!((c.prefill, c.prefilled), (1000, 1000));
        assert_eq!(config("").unwrap().prefilled, 0);
        // Alone, --prefilled is the population, and --interval paces its heartbeats.
        let alone = config("--scenario heartbeat --prefilled 2000 --batch 10 --interval 5s");
        let alone = alone.unwrap();
        assert_eq!((alone.prefill, alone.population()), (0, 2000));
        assert_eq!(alone.pacing, Pacing::Rate(40.0));
        alone.validate().unwrap();
    }

    #[test]
    fn own_service_goes_with_heartbeats_and_a_prefill() {
        let c = config("--scenario ws-heartbeat --prefill 1000 --own-service").unwrap();
        assert!(c.own_service);
        c.validate().unwrap();
        assert!(
            !config("--scenario heartbeat --prefill 1000")
                .unwrap()
                .own_service
        );
        for refused in [
            "--scenario discover --prefill 1000 --own-service",
            "--scenario heartbeat --own-service",
        ] {
            let refused = config(refused).unwrap().validate();
            assert!(matches!(refused, Err(Error::Argument(_))));
        }
        let interval = config("--scenario heartbeat --prefill 1000 --own-service --interval 5s");
        assert!(matches!(interval, Err(Error::Argument(_))));
    }

    #[test]
    fn gzip_goes_with_http_scenarios() {
        assert!(config("--gzip").unwrap().gzip);
        assert!(!config("").unwrap().gzip);
        let ws = config("--scenario ws-heartbeat --prefill 1000 --gzip").unwrap();
        assert!(matches!(ws.validate(), Err(Error::Argument(_))));
    }

    #[test]
    fn attack_and_probe() {
        let c = config("--attack idle=10,slowloris=2@500ms --probe 250ms").unwrap();
        assert_eq!(c.attack.len(), 2);
        assert_eq!(c.attack[1].every, Duration::from_millis(500));
        assert_eq!(c.probe, Some(Duration::from_millis(250)));
        assert!(config("").unwrap().attack.is_empty());
        let argv = ["artemis-loadgen", "--attack", "flood=1"];
        assert!(Cli::try_parse_from(argv).is_err());
    }

    #[test]
    fn rates_per_second_or_per_any_time() {
        for (spec, rate) in [
            ("100", 100.0),
            ("100/s", 100.0),
            ("100/1s", 100.0),
            ("6000/m", 100.0),
            ("6000/1m", 100.0),
            ("50/500ms", 100.0),
            ("360000/h", 100.0),
            ("1/10s", 0.1),
            ("2.5/s", 2.5),
            (" 100 / s ", 100.0),
        ] {
            assert_eq!(parse_rate(spec), Ok(rate), "{spec}");
        }
        for bad in [
            "", "fast", "100/", "100/x", "100/0s", "0/s", "-5", "/s", "inf", "1/2/s",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad:?} was accepted");
        }
        let c = config("--rate 6000/m").unwrap();
        assert_eq!(c.pacing, Pacing::Rate(100.0));
    }

    /// The one line `args` are refused with, as the binary prints it.
    fn refusal(args: &str) -> String {
        let argv = std::iter::once("artemis-loadgen").chain(args.split_whitespace());
        match Cli::try_parse_from(argv) {
            Err(e) => usage_line(&clap_error(&e)),
            Ok(cli) => error_line(&cli.into_config().and_then(|c| c.validate()).unwrap_err()),
        }
    }

    #[test]
    fn every_command_line_error_is_one_line_in_one_style() {
        for (args, what) in [
            (
                "--rate fast",
                r#"invalid value 'fast' for '--rate <RATE>': "fast" is not a rate like 100, 100/s, 100/1s or 6000/m"#,
            ),
            (
                "--rat 5",
                "unexpected argument '--rat' found; a similar argument exists: '--rate'",
            ),
            (
                "--rate 10 --max",
                "the argument '--rate <RATE>' cannot be used with '--max'",
            ),
            (
                "--discovery-api foo",
                "invalid value 'foo' for '--discovery-api <DISCOVERY_API>' \
                 [possible values: post, get, lookup]",
            ),
            (
                "--connections",
                "a value is required for '--connections <CONNECTIONS>' but none was supplied",
            ),
            ("--scenario mix", "--scenario mix needs --mix"),
            (
                "--scenario heartbeat",
                "heartbeat needs --prefill (or --prefilled) of at least one instance per core (1)",
            ),
        ] {
            let line = refusal(&format!("{args} --cores {}", available_cores()[0]));
            assert_eq!(
                line,
                format!("artemis-loadgen: {what} (see --help)"),
                "{args}"
            );
        }
        let unreachable = Error::Unreachable {
            target: "http://h:1".into(),
            reason: "refused".into(),
        };
        assert_eq!(
            error_line(&unreachable),
            "artemis-loadgen: cannot reach http://h:1: refused"
        );
    }

    #[test]
    fn targets_are_a_comma_list_instead_of_target() {
        let c = config("--targets http://a:1,http://b:2/,http://a:1").unwrap();
        assert_eq!(c.target, "http://a:1");
        assert_eq!(c.more_targets, ["http://b:2/", "http://a:1"]);
        assert_eq!(c.targets(), ["http://a:1", "http://b:2/", "http://a:1"]);
        let one = config("--targets http://a:1").unwrap();
        assert_eq!(
            (one.target.as_str(), one.more_targets.len()),
            ("http://a:1", 0)
        );
        let alone = config("--target http://a:1").unwrap();
        assert_eq!(alone.targets(), ["http://a:1"]);
        for refused in ["--targets http://a:1,", "--targets ,http://a:1"] {
            let argv = std::iter::once("artemis-loadgen").chain(refused.split_whitespace());
            assert!(Cli::try_parse_from(argv).is_err(), "{refused}");
        }
        // --targets overrides --target, given or from ARTEMIS_LOADGEN_TARGET.
        let both = config("--target http://a:1 --targets http://b:2").unwrap();
        assert_eq!(both.targets(), ["http://b:2"]);
    }

    #[test]
    fn replication_takes_two_targets() {
        let c =
            config("--scenario replication --targets http://a:1,http://b:2 --rate 100").unwrap();
        assert_eq!(c.scenario[0].kind, Kind::Replication);
        assert_eq!(
            refusal(&format!(
                "--scenario replication --target http://a:1 --cores {}",
                available_cores()[0]
            )),
            "artemis-loadgen: --scenario replication registers on the first of --targets and \
             awaits the pushes on the second: give two of them (the same URL twice to try it on \
             one node) (see --help)"
        );
    }

    #[test]
    fn conflicting_pacing_is_refused() {
        let argv = ["artemis-loadgen", "--rate", "10", "--max"];
        assert!(Cli::try_parse_from(argv).is_err());
    }
}
