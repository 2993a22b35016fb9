//! Handing a connection from one core to another.
//!
//! A keep-alive HTTP connection moves to the core that owns its writes (see `connection`), and a
//! WebSocket heartbeat session to the core that owns its instances (see `websocket`); what
//! travels is the socket, the bytes received and not yet read, and a session's state. This
//! module only carries such parcels between cores, over a mesh of its own, and queues them for the
//! receiving core's adopter; it knows nothing of what they hold.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use glommio::channels::channel_mesh::{Full, MeshBuilder, Senders};
use glommio::spawn_local;

use crate::mesh;

/// The mesh parcels of type `T` travel over; every core joins it at start.
pub(crate) struct HandoffMesh<T: Send + 'static>(MeshBuilder<T, Full>);

impl<T: Send + 'static> HandoffMesh<T> {
    pub(crate) fn new(cores: usize) -> HandoffMesh<T> {
        HandoffMesh(mesh::full(cores))
    }
}

impl<T: Send + 'static> Clone for HandoffMesh<T> {
    fn clone(&self) -> Self {
        HandoffMesh(self.0.clone())
    }
}

/// This core's end of the handoff mesh: send parcels away, receive the ones sent here.
pub(crate) struct Handoffs<T: Send + 'static> {
    peers: Rc<Senders<T>>,
    arrived: Rc<Arrivals<T>>,
}

struct Arrivals<T> {
    queue: RefCell<VecDeque<T>>,
    waiter: RefCell<Option<Waker>>,
}

impl<T: Send + 'static> Handoffs<T> {
    /// Joins the mesh (every core must) and starts taking the parcels other cores send here.
    pub(crate) async fn join(mesh: HandoffMesh<T>) -> Handoffs<T> {
        let (peers, mut inbox) = mesh::join(mesh.0).await;
        let arrived = Rc::new(Arrivals {
            queue: RefCell::new(VecDeque::new()),
            waiter: RefCell::new(None),
        });
        for (_, receiver) in inbox.streams() {
            let arrived = arrived.clone();
            spawn_local(async move {
                while let Some(parcel) = receiver.recv().await {
                    arrived.queue.borrow_mut().push_back(parcel);
                    if let Some(waiter) = arrived.waiter.borrow_mut().take() {
                        waiter.wake();
                    }
                }
            })
            .detach();
        }
        Handoffs {
            peers: Rc::new(peers),
            arrived,
        }
    }

    /// Hands `parcel` to core `to`; it is dropped (a socket in it closes) if that core stopped.
    pub(crate) fn send(&self, to: usize, parcel: T) {
        mesh::send_soon(&self.peers, to, parcel);
    }

    /// The next parcel another core sent here.
    pub(crate) async fn arrival(&self) -> T {
        poll_fn(|cx| match self.arrived.queue.borrow_mut().pop_front() {
            Some(parcel) => Poll::Ready(parcel),
            None => {
                *self.arrived.waiter.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}
