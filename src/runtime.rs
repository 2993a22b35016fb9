//! Start and stop: one pinned glommio executor per selected core, each with its own
//! `SO_REUSEPORT` listener, its own shard, and its place in the shard mesh.
//!
//! The first core binds the address (resolving port 0); the others then bind the very same
//! address. The main thread only waits for SIGINT/SIGTERM: it then stops the accept loops, lets
//! requests in flight finish (at most 4 s) and returns, which ends the process.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use artemis_shards::Shard;
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::timer::sleep;
use glommio::{spawn_local, CpuSet, LocalExecutorBuilder, Placement};
use log::{info, warn};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::clock::now_ms;
use crate::config::ServerConfig;
use crate::connection;
use crate::http::Limits;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::per_core::Core;
use crate::shard_link::{Mesh, ShardLink};
use crate::transport::glommio_tcp::GlommioListener;
use crate::transport::Listener;

/// Set once a stop signal arrives: cores stop accepting, connections close after their reply.
pub static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);
/// Read batches being answered right now, over all cores.
pub static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// How long requests in flight may take to finish after a stop signal.
const DRAIN_TIME: Duration = Duration::from_secs(4);
/// Messages that may wait between any two cores.
const MESH_DEPTH: usize = 1024;
/// How often self-preservation re-evaluates (Java: every 1000 ms).
const SAFETY_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Largest request head (431 beyond).
const MAX_HEAD: usize = 16 * 1024;

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

/// Runs the server until SIGINT or SIGTERM.
pub fn run(config: ServerConfig) -> Result<(), Failure> {
    let cores = select_cores(&config)?;
    let mut signals = Signals::new([SIGINT, SIGTERM])
        .map_err(|e| Failure::Runtime(format!("cannot install signal handlers: {e}")))?;
    let mesh: Mesh = MeshBuilder::full(cores.len(), MESH_DEPTH);
    let metrics = Arc::new(Metrics::new(cores.len()));
    let (started, events) = mpsc::channel();

    let spawn = |cpu: usize, addr: SocketAddr| {
        let (config, mesh, metrics, started) = (
            config.clone(),
            mesh.clone(),
            metrics.clone(),
            started.clone(),
        );
        let mut builder =
            LocalExecutorBuilder::new(Placement::Fixed(cpu)).name(&format!("artemis-core-{cpu}"));
        if let Some(spin) = config.spin_before_park {
            builder = builder.spin_before_park(spin);
        }
        builder
            .spawn(move || serve_core(addr, config, mesh, metrics, started))
            .map_err(|e| Failure::Runtime(format!("cannot start an executor on core {cpu}: {e}")))
    };
    let next = |events: &mpsc::Receiver<Started>| match events.recv() {
        Ok(Started::Failed(why)) => Err(Failure::Runtime(why)),
        Ok(event) => Ok(event),
        Err(_) => Err(Failure::Runtime("a core stopped while starting".into())),
    };

    let mut executors = vec![spawn(cores[0], config.addr)?];
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
    info!(
        "artemis {} serving on {bound}: {} shards on cores {cores:?}, region {}, zone {}",
        env!("CARGO_PKG_VERSION"),
        cores.len(),
        config.region,
        config.zone
    );

    if let Some(signal) = signals.forever().next() {
        info!("signal {signal}: no new connections; finishing requests in flight");
    }
    SHUTTING_DOWN.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + DRAIN_TIME;
    while IN_FLIGHT.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    info!("stopped");
    drop(executors);
    Ok(())
}

/// The `--cores` list, checked against the online cores; all online cores by default.
fn select_cores(config: &ServerConfig) -> Result<Vec<usize>, Failure> {
    let online =
        CpuSet::online().map_err(|e| Failure::Runtime(format!("cannot list online cores: {e}")))?;
    let mut online: Vec<usize> = online.into_iter().map(|l| l.cpu).collect();
    online.sort_unstable();
    let Some(wanted) = &config.cores else {
        return Ok(online);
    };
    match wanted.0.iter().find(|c| !online.contains(c)) {
        Some(missing) => Err(Failure::Usage(format!(
            "invalid value for '--cores': core {missing} is not online (online: {online:?})"
        ))),
        None => Ok(wanted.0.clone()),
    }
}

/// The life of one core: listen, join the mesh, keep leases, accept until shutdown.
async fn serve_core(
    addr: SocketAddr,
    config: ServerConfig,
    mesh: Mesh,
    metrics: Arc<Metrics>,
    started: mpsc::Sender<Started>,
) {
    let listener = match GlommioListener::bind(addr) {
        Ok(listener) => listener,
        Err(e) => {
            let _ = started.send(Started::Failed(format!("cannot listen on {addr}: {e}")));
            return;
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    let _ = started.send(Started::Bound(bound));
    let limits = Limits {
        max_head: MAX_HEAD,
        max_body: config.max_body,
    };
    let node = Node::new(config, bound);
    let shard_config = node.shard_config();
    let link = ShardLink::join(mesh, |_| Shard::new(shard_config)).await;
    let core = Rc::new(Core {
        node,
        link,
        metrics,
        limits,
    });
    keep_leases(&core);
    let _ = started.send(Started::Ready);

    let acceptor = spawn_local(accept(listener, core.clone()));
    while !SHUTTING_DOWN.load(Ordering::Relaxed) {
        sleep(Duration::from_millis(20)).await;
    }
    drop(acceptor);
    // Connections finish their requests; the main thread ends the process.
    std::future::pending::<()>().await;
}

/// Expiry every clean interval, self-preservation every second, on this core's shard.
fn keep_leases(core: &Rc<Core>) {
    let clean_interval = core.node.config.clean_interval;
    let cleaner = core.clone();
    spawn_local(async move {
        loop {
            sleep(clean_interval).await;
            cleaner.link.with_local(|shard| shard.evict(now_ms()));
        }
    })
    .detach();
    let checker = core.clone();
    spawn_local(async move {
        loop {
            sleep(SAFETY_CHECK_INTERVAL).await;
            checker
                .link
                .with_local(|shard| shard.check_safety(now_ms()));
        }
    })
    .detach();
}

async fn accept(listener: GlommioListener, core: Rc<Core>) {
    loop {
        match listener.accept().await {
            Ok(conn) => {
                let core = core.clone();
                spawn_local(async move { connection::serve(conn, &core).await }).detach();
            }
            Err(e) => {
                warn!("accept failed: {e}");
                sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
