//! `artemis-noop`: the ceiling this stack can reach on a machine.
//!
//! The registry's own runtime (pinned glommio executors, one `SO_REUSEPORT` listener per core),
//! its transport and its HTTP layer, answering every request with one fixed success reply and
//! doing nothing else. The benchmark runs it beside the registry with the same core layout; each
//! registry figure is quoted as a ratio to this one.

use std::net::SocketAddr;
use std::process::exit;
use std::rc::Rc;
use std::time::Duration;

use std::convert::Infallible;

use artemis::{
    parse_core_list, parse_duration, write_response, App, Connection, ConnectionLimits, CoreList,
    Failure, Handler, Io, Layout, Limit, Limits, Moved, Outcome, Output, ReadBuffer, Reply,
    Request, Shutdown, Terms,
};
use clap::Parser;
use http::StatusCode;

// The registry's allocator: the no-op stays the same stack as the registry, less its work.
#[global_allocator]
static ALLOCATOR: artemis::Allocator = artemis::Allocator;

/// The reply to every request: the registry's success reply to a heartbeat.
const REPLY: &[u8] = br#"{"failedInstances":null,"responseStatus":{"errorCode":"success","message":"","status":"success"}}"#;

#[derive(Parser, Debug)]
#[command(
    name = "artemis-noop",
    about = "No-op reference server on the registry's runtime and HTTP layer"
)]
struct Cli {
    /// Address every core listens on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    addr: SocketAddr,
    /// Cores to serve on [default: all online cores].
    #[arg(long, value_parser = parse_core_list)]
    cores: Option<CoreList>,
    /// Busy-wait this long before an idle core sleeps [default: off].
    #[arg(long, value_parser = parse_duration)]
    spin_before_park: Option<Duration>,
    /// Transport: `uring` (an io_uring ring of our own per core) or `glommio` (glommio's TcpStream).
    #[arg(long, env = "ARTEMIS_IO", value_enum, default_value = "uring")]
    io: Io,
}

#[derive(Clone)]
struct Noop;

struct NoopCore {
    terms: Terms,
}

impl App for Noop {
    type Core = NoopCore;

    async fn start_core(self, _bound: SocketAddr, shutdown: Shutdown) -> Rc<NoopCore> {
        Rc::new(NoopCore {
            terms: Terms {
                limits: Limits::default(),
                connection: ConnectionLimits::default(),
                shutdown,
            },
        })
    }

    fn stop(_core: &NoopCore) {}

    fn describe(&self, cores: &[usize]) -> String {
        format!("no-op reference replies on cores {cores:?}")
    }
}

impl Handler for NoopCore {
    type Upgrade = Infallible;

    fn terms(&self) -> &Terms {
        &self.terms
    }

    async fn answer(
        &self,
        request: Request,
        _buf: &mut [u8],
        output: &mut Output,
    ) -> Outcome<Infallible> {
        write_response(
            output,
            &Reply {
                status: StatusCode::OK,
                content_type: Some("application/json"),
                body: &[REPLY.into()],
                gzip: false,
                keep_alive: request.keep_alive,
                head_only: false,
                allow: None,
            },
        );
        Outcome::after(&request)
    }

    async fn take_over<C: Connection>(&self, _conn: C, upgrade: Infallible, _buffered: ReadBuffer) {
        match upgrade {}
    }

    /// Never asked: every answer keeps its connection here.
    fn move_to(&self, _to: usize, moved: Moved<Infallible>) {
        drop(moved);
    }

    fn refuse(&self, status: StatusCode, _message: &str, output: &mut Output) {
        write_response(
            output,
            &Reply {
                status,
                content_type: None,
                body: &[],
                gzip: false,
                keep_alive: false,
                head_only: false,
                allow: None,
            },
        );
    }

    fn limit_hit(&self, _limit: Limit) {}

    fn admit(&self, _output: &mut Output) -> bool {
        true
    }

    fn connection_moved_in(&self) {}

    fn connection_closed(&self) {}
}

fn main() {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let result = artemis::select_cores(cli.cores.as_ref()).and_then(|cores| {
        let layout = Layout {
            cores,
            addr: cli.addr,
            spin_before_park: cli.spin_before_park,
            io: cli.io,
        };
        artemis::run(layout, Noop)
    });
    match result {
        Ok(()) => {}
        Err(Failure::Usage(why)) => {
            eprintln!("artemis-noop: {why}");
            exit(2);
        }
        Err(Failure::Runtime(why)) => {
            log::error!("{why}");
            exit(1);
        }
    }
}
