//! The registry server: what the runtime starts on every core, and how one core answers a parsed
//! request (route it, check its method, hand it to its endpoint, frame the reply).
//!
//! [`Server`] is the node-wide part every core starts from (settings, the meshes, shared
//! counters and limits); [`CoreServer`] is one core's: its view of the node, its link to every
//! shard, its lease timers and its connection limits. Endpoints get only an [`api::Context`].

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use artemis_shards::{Shard, VersionClock};
use glommio::spawn_local;
use glommio::timer::sleep;
use http::{Method, StatusCode};

use crate::api::{self, Input, Part, Response};
use crate::clock::now_ms;
use crate::cluster::{self, Cluster};
use crate::config::ServerConfig;
use crate::connection::{Handler, Moved, Outcome, Terms};
use crate::handoff::{HandoffMesh, Handoffs};
use crate::http::{self as h1, Body, BodyPart, Limits, Reply, Request};
use crate::limits::{ConnectionCap, Limit};
use crate::management::{self, Applier, Management};
use crate::metrics::{CoreMetrics, Metrics};
use crate::node::Node;
use crate::push::Fanout;
use crate::rate_limit::RateLimits;
use crate::replication::Replicator;
use crate::router::{self, Route};
use crate::runtime::{App, Failure};
use crate::shard_link::{ShardLink, ShardMesh};
use crate::shutdown::{Shutdown, StopSignal};
use crate::transport::{Connection, Output, ReadBuffer};
use crate::websocket::{self, SessionContext, Start};

/// How often self-preservation re-evaluates (Java: every 1000 ms).
const SAFETY_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The registry as the runtime starts it: what every core needs to build its `CoreServer`.
#[derive(Clone)]
pub struct Server {
    config: ServerConfig,
    shards: ShardMesh,
    handoffs: HandoffMesh<Moved<Start>>,
    metrics: Arc<Metrics>,
    versions: Arc<VersionClock>,
    fanout: Arc<Fanout>,
    rate_limits: Arc<RateLimits>,
    /// Open connections on the node, for `--max-connections`.
    open_connections: Arc<AtomicUsize>,
    /// Cores, each with its shard.
    cores: usize,
    management: Management,
    /// The cluster, made by the first core to start (the node's URL needs the bound address).
    cluster: Arc<OnceLock<Arc<Cluster>>>,
    /// Each core's end of management state updates, taken by the core that owns the shard.
    appliers: Arc<Mutex<Vec<Option<Applier>>>>,
}

impl Server {
    /// The node's shared parts; starts the management thread over its store, and fails when
    /// the store cannot be opened.
    pub fn new(config: ServerConfig, cores: usize) -> Result<Server, Failure> {
        cluster::check_membership(&config).map_err(Failure::Usage)?;
        let (management, appliers) = management::spawn(config.management(), cores)
            .map_err(|e| Failure::Runtime(format!("cannot open the management store: {e}")))?;
        let store = match &config.management_db {
            Some(_) => "PostgreSQL (--management-db)".to_string(),
            None => format!("{}/management.db", config.data_dir.display()),
        };
        let writers = match config.management_token {
            Some(_) => "clients with the management token",
            None => "loopback clients only (no --management-token)",
        };
        log::info!("management data in {store}; writes accepted from {writers}");
        Ok(Server {
            management,
            cluster: Arc::default(),
            appliers: Arc::new(Mutex::new(appliers.into_iter().map(Some).collect())),
            rate_limits: Arc::new(config.rate_limits(cores)),
            open_connections: Arc::new(AtomicUsize::new(0)),
            fanout: Fanout::new(cores, config.ws_queue_total),
            cores,
            config,
            shards: ShardMesh::new(cores),
            handoffs: HandoffMesh::new(cores),
            metrics: Arc::new(Metrics::new(cores)),
            versions: Arc::new(VersionClock::starting_at(now_ms())),
        })
    }
}

impl App for Server {
    type Core = CoreServer;

    async fn start_core(self, bound: SocketAddr, shutdown: Shutdown) -> Rc<CoreServer> {
        let terms = Terms {
            limits: Limits {
                max_head: self.config.max_head,
                max_body: self.config.max_body,
            },
            connection: self.config.connection_limits(),
            shutdown,
        };
        let connections = ConnectionCap::new(
            self.config.max_connections_per_core.unwrap_or(usize::MAX),
            self.config.max_connections,
            self.open_connections,
        );
        let cluster = self.cluster.get_or_init(|| {
            let me = self.config.node_url(bound);
            Arc::new(Cluster::new(&self.config, me))
        });
        let node = Node::new(self.config, bound, cluster.clone());
        let shard_config = node.config.shard_config(self.cores);
        let link = ShardLink::join(self.shards, self.fanout, |_| {
            Shard::new(shard_config, self.versions)
        })
        .await;
        let moves = Handoffs::join(self.handoffs).await;
        let applier = self.appliers.lock().expect("no core panics holding it")[link.me()]
            .take()
            .expect("each core takes its own applier once");
        let replicator =
            Replicator::new(cluster, &node.config, self.cores, link.me(), &self.metrics);
        let core = Rc::new(CoreServer {
            node,
            link,
            management: self.management,
            moves,
            metrics: self.metrics,
            rate_limits: self.rate_limits,
            terms,
            connections,
            stop: StopSignal::default(),
            kept: api::KeptReplies::default(),
            replicator,
        });
        keep_leases(&core);
        join_cluster(&core);
        for sender in core.replicator.senders() {
            spawn_local(sender).detach();
        }
        let applying = core.clone();
        spawn_local(async move { applier.serve(&applying.link).await }).detach();
        core
    }

    fn stop(core: &CoreServer) {
        core.stop.raise();
    }

    fn describe(&self, cores: &[usize]) -> String {
        format!(
            "{} shards on cores {cores:?}, region {}, zone {} (artemis {})",
            cores.len(),
            self.config.region,
            self.config.zone,
            env!("CARGO_PKG_VERSION"),
        )
    }
}

/// Expiry every clean interval, self-preservation every second, on this core's shard.
fn keep_leases(core: &Rc<CoreServer>) {
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

/// On the first core of a node with peers: the join sync, then the peers' status polls;
/// anti-entropy with each peer; and their host names resolved again.
fn join_cluster(core: &Rc<CoreServer>) {
    let (cluster, config) = (&core.node.cluster, &core.node.config);
    if core.link.me() != 0 || cluster.peers.is_empty() {
        return;
    }
    cluster::spawn_resolver(cluster, config.peer_resolve_interval);
    let every = config.digest_interval;
    cluster::anti_entropy::spawn(cluster, &core.link, every, &core.metrics);
    spawn_local(cluster::join_then_poll(
        cluster.clone(),
        core.link.clone(),
        config.peer_status_interval,
        config.join_timeout,
    ))
    .detach();
}

/// One core of the registry server.
pub struct CoreServer {
    node: Node,
    link: Rc<ShardLink>,
    management: Management,
    moves: Handoffs<Moved<Start>>,
    metrics: Arc<Metrics>,
    rate_limits: Arc<RateLimits>,
    terms: Terms,
    connections: ConnectionCap,
    stop: StopSignal,
    kept: api::KeptReplies,
    replicator: Replicator,
}

impl CoreServer {
    /// What an endpoint may use.
    fn context(&self) -> api::Context<'_> {
        api::Context {
            link: &self.link,
            node: &self.node,
            management: &self.management,
            rate_limits: &self.rate_limits,
            metrics: &self.metrics,
            kept: &self.kept,
            replicator: &self.replicator,
        }
    }

    /// This core's own counters.
    fn counters(&self) -> &CoreMetrics {
        self.metrics.core(self.link.me())
    }

    /// Appends `response` to `request` framed as HTTP (`allow`: a 405's `Allow`), and counts a
    /// refusal.
    fn write(
        &self,
        response: &Response,
        request: &Request,
        allow: Option<&'static str>,
        output: &mut Output,
    ) {
        if !response.status.is_success() {
            self.counters()
                .record_protocol_error(response.status.as_u16());
        }
        let framing = Framing {
            gzip: request.accepts_gzip,
            keep_alive: request.keep_alive,
            head_only: request.method == Method::HEAD,
            allow,
        };
        frame(output, response, framing);
    }
}

/// How a reply is framed beside its status and body.
#[derive(Default)]
struct Framing {
    gzip: bool,
    keep_alive: bool,
    head_only: bool,
    allow: Option<&'static str>,
}

/// Appends `response` framed as HTTP; with the default framing, the last reply of a connection.
fn frame(output: &mut Output, response: &Response, framing: Framing) {
    let parts: Vec<BodyPart> = response.parts.iter().map(Part::body_part).collect();
    h1::write_response(
        output,
        &Reply {
            status: response.status,
            content_type: Some(response.content_type),
            body: &parts,
            gzip: framing.gzip,
            keep_alive: framing.keep_alive,
            head_only: framing.head_only,
            allow: framing.allow,
        },
    );
}

impl Handler for CoreServer {
    type Upgrade = Start;

    fn terms(&self) -> &Terms {
        &self.terms
    }

    async fn answer(
        &self,
        mut request: Request,
        buf: &mut [u8],
        output: &mut Output,
    ) -> Outcome<Start> {
        let started = Instant::now();
        let endpoint = match router::route(&request, &buf[request.path.clone()]) {
            Route::Endpoint(endpoint) => endpoint,
            Route::WebSocket(ws) => {
                if websocket::accept(&request, buf, output) {
                    return Outcome::Upgrade(Start::Upgraded(ws));
                }
                let refusal =
                    Response::refusal(StatusCode::BAD_REQUEST, "Expected a WebSocket upgrade");
                self.counters()
                    .record_protocol_error(refusal.status.as_u16());
                let framing = Framing {
                    head_only: request.method == Method::HEAD,
                    ..Framing::default()
                };
                frame(output, &refusal, framing);
                return Outcome::Close;
            }
            Route::Preflight => {
                router::write_preflight_reply(&request, buf, output);
                return Outcome::after(&request);
            }
            Route::Refused(status, why) => {
                let refusal = Response::refusal(status, &why.message());
                self.write(&refusal, &request, why.allowed(), output);
                return Outcome::after(&request);
            }
        };
        let mut none = [];
        let (head, body) = match &mut request.body {
            Body::Empty => (&*buf, &mut none[..]),
            Body::InBuffer(range) => {
                let (head, rest) = buf.split_at_mut(range.start);
                (&*head, &mut rest[..range.len()])
            }
            Body::Owned(bytes) => (&*buf, &mut bytes[..]),
        };
        // A HEAD is answered as its GET, without the body.
        let method = match request.method {
            Method::HEAD => &Method::GET,
            ref method => method,
        };
        let input = Input {
            method,
            query: request.query.clone().map(|q| &head[q]),
            body,
            peer: request.peer,
            authorization: request.authorization.clone().map(|a| &head[a]),
        };
        let ctx = self.context();
        let (response, owner) = api::respond(&ctx, endpoint, input).await;
        if response.status.is_success() {
            let took = started.elapsed();
            self.counters()
                .record_request(endpoint, response.outcome, took);
        }
        self.write(&response, &request, None, output);
        match owner.filter(|&to| request.keep_alive && ctx.may_move_to(to)) {
            Some(to) => Outcome::MoveTo(to),
            None => Outcome::after(&request),
        }
    }

    async fn take_over<C: Connection>(&self, conn: C, start: Start, buffered: ReadBuffer) {
        let ctx = SessionContext {
            api: self.context(),
            moves: &self.moves,
            shutdown: &self.terms.shutdown,
            stop: &self.stop,
        };
        websocket::serve(conn, ctx, start, buffered).await;
    }

    fn move_to(&self, to: usize, moved: Moved<Start>) {
        self.counters().connection_moved();
        self.context().moving_out();
        self.moves.send(to, moved);
    }

    async fn moved_in(&self) -> Moved<Start> {
        self.moves.arrival().await
    }

    fn refuse(&self, status: StatusCode, message: &str, output: &mut Output) {
        self.counters().record_protocol_error(status.as_u16());
        frame(
            output,
            &Response::refusal(status, message),
            Framing::default(),
        );
    }

    fn limit_hit(&self, limit: Limit) {
        self.counters().record_limit(limit);
    }

    fn admit(&self, output: &mut Output) -> bool {
        match self.connections.open() {
            Ok(()) => {
                self.counters().connection_opened();
                true
            }
            Err(limit) => {
                self.limit_hit(limit);
                let busy = "Too many connections on this node; try another node.";
                frame(output, &Response::unavailable(busy), Framing::default());
                false
            }
        }
    }

    fn connection_moved_in(&self) {
        self.connections.adopt();
        self.counters().connection_moved_in();
    }

    fn connection_closed(&self) {
        self.connections.close();
        self.counters().connection_closed();
    }
}
