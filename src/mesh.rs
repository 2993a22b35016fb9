//! The cross-core channels every core joins at start (glommio's `channel_mesh`), and the two ways
//! this server uses them safely.
//!
//! A core never stops draining its own inbox to wait for room in a peer's: a message that does
//! not fit at once is handed to a task of its own ([`send_soon`]), so two cores can never wait on
//! each other. Joining is polled again on a timer ([`join`]), because a join on a loaded machine
//! has been seen to sleep through the wake-up it waited for.

use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future::or;
use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers, Senders};
use glommio::timer::sleep;
use glommio::{spawn_local, GlommioError, ResourceType};

/// Messages that may wait between any two cores.
const DEPTH: usize = 1024;

/// How often a mesh join is polled again whether or not it was woken.
const JOIN_REPOLL: Duration = Duration::from_millis(10);

/// A full mesh between `cores` cores, carrying `T`; every core must [`join`] it.
pub(crate) fn full<T: Send + 'static>(cores: usize) -> MeshBuilder<T, Full> {
    MeshBuilder::full(cores, DEPTH)
}

/// Joins `mesh` from this core; every core of the mesh must join before any join returns.
pub(crate) async fn join<T: Send + 'static>(
    mesh: MeshBuilder<T, Full>,
) -> (Senders<T>, Receivers<T>) {
    // A failed join means another core died while starting: nothing can be served then.
    repolled(mesh.join())
        .await
        .expect("joining a cross-core mesh")
}

/// Sends `message` to `peer` now, or from a task of its own when the peer's inbox is full. A peer
/// that has stopped drops the message.
pub(crate) fn send_soon<T: Send + 'static>(peers: &Rc<Senders<T>>, peer: usize, message: T) {
    if let Err(GlommioError::WouldBlock(ResourceType::Channel(message))) =
        peers.try_send_to(peer, message)
    {
        let peers = peers.clone();
        spawn_local(async move {
            // Fails only when the peer has stopped.
            let _ = peers.send_to(peer, message).await;
        })
        .detach();
    }
}

/// Runs `future`, polling it again every `JOIN_REPOLL` even when nothing woke it. On a loaded
/// machine a glommio 0.9 mesh join has been seen to sleep through the cross-core wake-up it waited
/// for (start-ups stalled for tens of seconds); polling again finds the message that arrived.
async fn repolled<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    loop {
        let ready = async { Some(future.as_mut().await) };
        let tick = async {
            sleep(JOIN_REPOLL).await;
            None
        };
        if let Some(output) = or(ready, tick).await {
            return output;
        }
    }
}
