//! One core of the registry: its view of the node, its link to every shard (its own included),
//! its metrics slot, the rate limits and the connection limits; how it answers a parsed request (route, check the
//! method, hand the request to its endpoint); and how each core is set up at start.

use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use artemis_shards::{Shard, VersionClock};
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::spawn_local;
use glommio::timer::sleep;
use http::{Method, StatusCode};

use crate::api::{self, Input, Response};
use crate::clock::now_ms;
use crate::config::ServerConfig;
use crate::connection::{self, Handler, Outcome};
use crate::http::{self as h1, Body, Limits, Request};
use crate::limits::{ConnectionCap, ConnectionLimits, Limit};
use crate::metrics::{CoreMetrics, Metrics};
use crate::node::Node;
use crate::push::Presence;
use crate::rate_limit::{Limiter, RateLimits};
use crate::router::Endpoint;
use crate::runtime::App;
use crate::shard_link::{Mesh, ShardLink};
use crate::transport::{Connection, ReadBuffer};
use crate::websocket::{self, Start, WsEndpoint};

/// Messages that may wait between any two cores.
const MESH_DEPTH: usize = 1024;
/// How often self-preservation re-evaluates (Java: every 1000 ms).
const SAFETY_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The registry as the runtime starts it: what every core needs to build its `Core`.
#[derive(Clone)]
pub struct Registry {
    config: ServerConfig,
    mesh: Mesh,
    metrics: Arc<Metrics>,
    versions: Arc<VersionClock>,
    presence: Presence,
    rate_limits: Arc<RateLimits>,
    /// Open connections on the node, for `--max-connections`.
    open_connections: Arc<AtomicUsize>,
}

impl Registry {
    pub fn new(config: ServerConfig, cores: usize) -> Registry {
        let limiters: Vec<_> = Limiter::ALL
            .iter()
            .map(|&limiter| (limiter, config.limiter(limiter)))
            .collect();
        let limiters: Vec<_> = limiters.iter().map(|(l, c)| (*l, c)).collect();
        Registry {
            rate_limits: Arc::new(RateLimits::new(config.rate_limit, &limiters, cores)),
            open_connections: Arc::new(AtomicUsize::new(0)),
            config,
            mesh: MeshBuilder::full(cores, MESH_DEPTH),
            metrics: Arc::new(Metrics::new(cores)),
            versions: Arc::new(VersionClock::starting_at(now_ms())),
            presence: (0..cores).map(|_| AtomicUsize::new(0)).collect(),
        }
    }
}

impl App for Registry {
    type Core = Core;

    async fn start_core(self, bound: SocketAddr) -> Rc<Core> {
        let limits = Limits {
            max_head: self.config.max_head,
            max_body: self.config.max_body,
        };
        let connection_limits = self.config.connection_limits();
        let connections = ConnectionCap::new(
            self.config.max_connections_per_core.unwrap_or(usize::MAX),
            self.config.max_connections,
            self.open_connections,
        );
        let node = Node::new(self.config, bound);
        let shard_config = node.shard_config();
        let link = ShardLink::join(self.mesh, self.presence, |_| {
            Shard::new(shard_config, self.versions)
        })
        .await;
        let core = Rc::new(Core {
            node,
            link,
            metrics: self.metrics,
            rate_limits: self.rate_limits,
            limits,
            connection_limits,
            connections,
        });
        keep_leases(&core);
        core
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

pub struct Core {
    pub node: Node,
    pub link: Rc<ShardLink>,
    pub metrics: Arc<Metrics>,
    pub rate_limits: Arc<RateLimits>,
    pub limits: Limits,
    connection_limits: ConnectionLimits,
    connections: ConnectionCap,
}

impl Core {
    /// This core's own counters.
    pub fn counters(&self) -> &CoreMetrics {
        self.metrics.core(self.link.me())
    }
}

impl Handler for Core {
    type Upgrade = Start;

    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn connection_limits(&self) -> &ConnectionLimits {
        &self.connection_limits
    }

    async fn answer(
        &self,
        mut request: Request,
        buf: &mut [u8],
        output: &mut Vec<u8>,
    ) -> Outcome<Start> {
        let started = Instant::now();
        let path = &buf[request.path.clone()];
        if let Some(ws) = WsEndpoint::from_path(path) {
            if websocket::accept(&request, buf, output) {
                return Outcome::Upgrade(Start::Upgraded(ws));
            }
            let refusal =
                Response::refusal(StatusCode::BAD_REQUEST, "Expected a WebSocket upgrade");
            self.refused(refusal.status);
            connection::write(output, &refusal, false, false);
            return Outcome::Close;
        }
        let endpoint = Endpoint::from_path(path);
        let response = match endpoint {
            None => Response::refusal(StatusCode::NOT_FOUND, "No endpoint at this path"),
            Some(_) if request.method == Method::OPTIONS => {
                let echo =
                    |range: &Option<Range<usize>>| range.clone().map_or(&[][..], |r| &buf[r]);
                h1::write_preflight(
                    output,
                    echo(&request.cors_request_method),
                    echo(&request.cors_request_headers),
                    request.keep_alive,
                );
                return Outcome::after(&request);
            }
            Some(endpoint) if !endpoint.allows(&request.method) => Response::refusal(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!(
                    "Method not allowed; this endpoint takes {}",
                    endpoint.allowed_methods()
                ),
            ),
            Some(endpoint) => {
                let mut none = [];
                let (head, body) = match &mut request.body {
                    Body::Empty => (&*buf, &mut none[..]),
                    Body::InBuffer(range) => {
                        let (head, rest) = buf.split_at_mut(range.start);
                        (&*head, &mut rest[..range.len()])
                    }
                    Body::Owned(bytes) => (&*buf, &mut bytes[..]),
                };
                let input = Input {
                    method: &request.method,
                    query: request.query.clone().map(|q| &head[q]),
                    body,
                };
                api::respond(self, endpoint, input).await
            }
        };
        match endpoint {
            Some(endpoint) if response.status.is_success() => {
                self.counters().record_request(endpoint, started.elapsed())
            }
            _ => self.refused(response.status),
        }
        connection::write(output, &response, request.accepts_gzip, request.keep_alive);
        Outcome::after(&request)
    }

    async fn take_over<C: Connection>(&self, conn: C, start: Start, buffered: ReadBuffer) {
        websocket::serve(conn, self, start, buffered).await;
    }

    async fn moved_in(&self) -> (OwnedFd, Start, ReadBuffer) {
        let moved = self.link.moved_in().await;
        (moved.socket, Start::Moved(moved.session), moved.input)
    }

    fn refused(&self, status: StatusCode) {
        self.counters().record_protocol_error(status.as_u16());
    }

    fn limit_hit(&self, limit: Limit) {
        self.counters().record_limit(limit);
    }

    fn connection_opened(&self) -> Result<(), Limit> {
        self.connections.open()?;
        self.counters().connection_opened();
        Ok(())
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
