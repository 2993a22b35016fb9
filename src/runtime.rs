//! Start and stop: one pinned glommio executor per selected core, each with its own
//! `SO_REUSEPORT` listener, accepting connections for the application built on it (the
//! registry, or the benchmark's no-op reference server) over the transport `--io` names (a core
//! whose io_uring ring cannot be created falls back to glommio's, and says so).
//!
//! The first core binds the address (resolving port 0); the others then bind the very same
//! address. Before that, the address must be free: `SO_REUSEPORT` would otherwise let a second
//! server share the port with a running one, and the kernel would split clients between two
//! registries that do not know each other. The main thread only waits for SIGINT/SIGTERM: it then
//! begins the [`Shutdown`], lets requests in flight finish (at most 4 s) and returns, which ends
//! the process. Before any of that, [`uring_probe`] asks once whether io_uring may be used at all,
//! so that a host or container that refuses it gets one line saying why, not a panic per core.

mod uring_probe;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use glommio::timer::sleep;
use glommio::{spawn_local, CpuSet, LocalExecutorBuilder, Placement};
use log::{info, warn};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::CoreList;
use crate::connection::{self, Handler};
use crate::shutdown::Shutdown;
use crate::transport::glommio_tcp::GlommioListener;
use crate::transport::uring::{Ring, UringListener};
pub(crate) use crate::transport::Io;
use crate::transport::Listener;

/// How long the cores may take to start: a start that stalls fails with a clear error (and the
/// supervisor starts the server again) instead of hanging.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long requests in flight may take to finish after a stop signal.
const DRAIN_TIME: Duration = Duration::from_secs(4);

/// How often a core looks whether the server stops (see `serve`).
const STOP_LOOK: Duration = Duration::from_millis(20);

/// How long a core gives its long-lived sessions, once it told them the server stops, to start
/// their goodbyes (they count as in flight while they write them).
const STOP_NOTICE: Duration = Duration::from_millis(10);

/// What runs on the executors: it prepares each core once that core's listener is bound.
pub trait App: Clone + Send + 'static {
    type Core: Handler + 'static;
    /// Sets up one core; `bound` is the address every core listens on.
    async fn start_core(self, bound: SocketAddr, shutdown: Shutdown) -> Rc<Self::Core>;
    /// Tells this core's long-lived tasks (WebSocket sessions) that the server stops.
    fn stop(core: &Self::Core);
    /// What runs on `cores`, for the start-up log line.
    fn describe(&self, cores: &[usize]) -> String;
}

/// Where and how the executors run.
pub struct Layout {
    pub cores: Vec<usize>,
    pub addr: SocketAddr,
    pub spin_before_park: Option<Duration>,
    pub io: Io,
}

/// Why the server did not start or stopped badly.
pub enum Failure {
    /// A setting that cannot work on this machine (exit code 2).
    Usage(String),
    /// Anything else (exit code 1).
    Runtime(String),
}

enum Started {
    Bound(SocketAddr),
    Ready,
    Failed(String),
}

/// The `--cores` list, checked against the online cores; without one, every online core this
/// process may run on (its affinity mask).
pub fn select_cores(wanted: Option<&CoreList>) -> Result<Vec<usize>, Failure> {
    let online =
        CpuSet::online().map_err(|e| Failure::Runtime(format!("cannot list online cores: {e}")))?;
    let mut online: Vec<usize> = online.into_iter().map(|l| l.cpu).collect();
    online.sort_unstable();
    let Some(wanted) = wanted else {
        // Every core this process may run on: in a container limited to a cpuset (Kubernetes'
        // static CPU manager, `docker --cpuset-cpus`), an executor pinned outside it fails.
        let allowed = allowed_cores();
        let usable: Vec<usize> = online
            .iter()
            .copied()
            .filter(|c| allowed.contains(c))
            .collect();
        return Ok(if usable.is_empty() { online } else { usable });
    };
    match wanted.0.iter().find(|c| !online.contains(c)) {
        Some(missing) => Err(Failure::Usage(format!(
            "invalid value for '--cores': core {missing} is not online (online: {online:?})"
        ))),
        None => Ok(wanted.0.clone()),
    }
}

/// The CPUs this process's affinity mask allows (empty when it cannot be read).
fn allowed_cores() -> Vec<usize> {
    // SAFETY: an all-zero `cpu_set_t` is a valid empty set, and sched_getaffinity writes at
    // most `size_of::<cpu_set_t>()` bytes into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// Runs `app` on every core of `layout` until SIGINT or SIGTERM.
pub fn run<A: App>(layout: Layout, app: A) -> Result<(), Failure> {
    uring_probe::check().map_err(|why| Failure::Runtime(why.to_string()))?;
    let mut signals = Signals::new([SIGINT, SIGTERM])
        .map_err(|e| Failure::Runtime(format!("cannot install signal handlers: {e}")))?;
    if layout.addr.port() != 0 {
        ensure_free(layout.addr)?;
    }
    let (started, events) = mpsc::channel();
    let describe = app.describe(&layout.cores);
    let shutdown = Shutdown::default();

    let spawn = |cpu: usize, addr: SocketAddr| {
        let (app, started, io) = (app.clone(), started.clone(), layout.io);
        let shutdown = shutdown.clone();
        let mut builder =
            LocalExecutorBuilder::new(Placement::Fixed(cpu)).name(&format!("artemis-core-{cpu}"));
        if let Some(spin) = layout.spin_before_park {
            builder = builder.spin_before_park(spin);
        }
        builder
            .spawn(move || serve_core(cpu, addr, io, app, shutdown, started))
            .map_err(|e| Failure::Runtime(format!("cannot start an executor on core {cpu}: {e}")))
    };
    let next = |events: &mpsc::Receiver<Started>| match events.recv_timeout(START_TIMEOUT) {
        Ok(Started::Failed(why)) => Err(Failure::Runtime(why)),
        Ok(event) => Ok(event),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Failure::Runtime(format!(
            "the cores did not all become ready within {START_TIMEOUT:?}; start again"
        ))),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(Failure::Runtime("a core stopped while starting".into()))
        }
    };

    let cores = &layout.cores;
    let mut executors = vec![spawn(cores[0], layout.addr)?];
    let bound = loop {
        if let Started::Bound(addr) = next(&events)? {
            break addr;
        }
    };
    for &cpu in &cores[1..] {
        executors.push(spawn(cpu, bound)?);
    }
    let mut ready = 0;
    while ready < cores.len() {
        if let Started::Ready = next(&events)? {
            ready += 1;
        }
    }
    info!("serving on {bound}: {describe}");

    if let Some(signal) = signals.forever().next() {
        info!("signal {signal}: no new connections; finishing requests in flight");
    }
    shutdown.begin();
    let deadline = Instant::now() + DRAIN_TIME;
    while !shutdown.is_drained() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    info!("stopped");
    drop(executors);
    Ok(())
}

/// Refuses to start on an address another process listens on: a socket bound without
/// `SO_REUSEPORT` cannot share the port, so its bind fails exactly then. It is closed at once,
/// and this server's cores bind the address with `SO_REUSEPORT` among themselves.
fn ensure_free(addr: SocketAddr) -> Result<(), Failure> {
    match TcpListener::bind(addr) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(Failure::Runtime(format!(
            "cannot listen on {addr}: address in use by another process"
        ))),
        Err(e) => Err(Failure::Runtime(format!("cannot listen on {addr}: {e}"))),
    }
}

/// The life of one core: set up its transport, then serve on it.
async fn serve_core<A: App>(
    cpu: usize,
    addr: SocketAddr,
    io: Io,
    app: A,
    shutdown: Shutdown,
    started: mpsc::Sender<Started>,
) {
    let start = Start {
        addr,
        app,
        shutdown,
        started,
    };
    if io == Io::Uring {
        match Ring::start() {
            Ok(ring) => {
                info!("core {cpu}: io_uring transport, ring set up with {}", ring.setup());
                return serve(UringListener::bind(ring, addr), start).await;
            }
            Err(e) => warn!(
                "core {cpu}: cannot set up an io_uring ring ({e}); falling back to glommio's TcpStream"
            ),
        }
    } else {
        info!("core {cpu}: glommio TcpStream transport");
    }
    serve(GlommioListener::bind(addr), start).await
}

/// What a core starts with.
struct Start<A> {
    addr: SocketAddr,
    app: A,
    shutdown: Shutdown,
    started: mpsc::Sender<Started>,
}

/// Listen, set up the app, accept until shutdown.
async fn serve<L: Listener + 'static, A: App>(listener: io::Result<L>, start: Start<A>) {
    let Start {
        addr,
        app,
        shutdown,
        started,
    } = start;
    let listener = match listener {
        Ok(listener) => listener,
        Err(e) => {
            let _ = started.send(Started::Failed(format!("cannot listen on {addr}: {e}")));
            return;
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    let _ = started.send(Started::Bound(bound));
    // This core counts as in flight until it has told its sessions that the server stops.
    let running = shutdown.answering();
    let core = app.start_core(bound, shutdown.clone()).await;
    let _ = started.send(Started::Ready);

    let listener = Rc::new(listener);
    let acceptor = spawn_local(accept(listener.clone(), core.clone()));
    let adopter = spawn_local(adopt(listener, core.clone()));
    // Looking every 20 ms whether the server stops also bounds a stall of glommio 0.9, whose
    // executor can park while a task is runnable and sleep until something else wakes it (its
    // `run_task_queues` reports that nothing ran when preemption is due before the first queue
    // runs, and the executor then parks). Waiting for the stop on an eventfd instead, with no
    // timer left on the core, left the no-op server's core unserved for good in about one 4 s
    // saturation run in four: see docs/benchmarks.md, "An executor that parks with work to do".
    while !shutdown.is_stopping() {
        sleep(STOP_LOOK).await;
    }
    drop((acceptor, adopter));
    A::stop(&core);
    sleep(STOP_NOTICE).await;
    drop(running);
    // Connections finish their requests; the main thread ends the process.
    std::future::pending::<()>().await;
}

/// Accepts connections on `listener` and serves each in a task of its own.
///
/// A failing accept (out of file descriptors, say) is retried every 10 ms and logged at most
/// once a second, with the count of failures since the last line, so it cannot flood the log.
async fn accept<L: Listener, H: Handler + 'static>(listener: Rc<L>, core: Rc<H>) {
    let mut failed = 0u64;
    let mut logged: Option<Instant> = None;
    loop {
        match listener.accept().await {
            Ok(conn) => {
                let core = core.clone();
                spawn_local(async move { connection::serve(conn, &*core).await }).detach();
            }
            Err(e) => {
                failed += 1;
                if logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    warn!("accept failed: {e} ({failed} failed accepts since the last such line)");
                    (failed, logged) = (0, Some(Instant::now()));
                }
                sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Serves, each in a task of its own, the connections other cores move to this one.
async fn adopt<L: Listener, H: Handler + 'static>(listener: Rc<L>, core: Rc<H>) {
    loop {
        let moved = core.moved_in().await;
        match listener.adopt(moved.socket) {
            Ok(conn) => {
                let core = core.clone();
                let (kind, input) = (moved.kind, moved.input);
                spawn_local(async move { connection::resume(conn, &*core, kind, input).await })
                    .detach();
            }
            Err(e) => warn!("a connection moved to this core could not be served: {e}"),
        }
    }
}
