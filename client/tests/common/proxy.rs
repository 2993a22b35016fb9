//! A TCP proxy between a client and a server that a test can cut (every connection dropped,
//! new ones refused) and heal: how a client is made to miss pushes without restarting the
//! server.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

pub(crate) struct Proxy {
    pub(crate) port: u16,
    open: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    accepting: AbortHandle,
}

impl Proxy {
    /// A proxy to `127.0.0.1:upstream`. The server behind it must give the proxy's URL as its
    /// `--node-url`, or clients learn the server's own address from the node list and go
    /// around the proxy.
    pub(crate) async fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (is_open, all) = (open.clone(), links.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                // Decided under the lock `cut` takes: no link outlives a cut.
                let mut links = all.lock().unwrap();
                if !is_open.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees its connection closed
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                links.push(link.abort_handle());
            }
        })
        .abort_handle();
        Proxy {
            port,
            open,
            links,
            accepting,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Drops every connection and refuses new ones until [`Proxy::heal`].
    pub(crate) fn cut(&self) {
        let mut links = self.links.lock().unwrap();
        self.open.store(false, Ordering::SeqCst);
        for link in links.drain(..) {
            link.abort();
        }
    }

    pub(crate) fn heal(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut();
    }
}
