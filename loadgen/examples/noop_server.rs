//! A no-op HTTP/1.1 server for measuring the load generator itself: every request, whatever
//! its path, gets the registry's fixed success reply. Run the load generator and `wrk` against
//! it on the same cores and compare their rates.
//!
//! `cargo run --release -p artemis-loadgen --example noop_server -- [ADDR] [CORES]`
//! (defaults `127.0.0.1:9999` and every core; one epoll thread per core, pinned).

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};

const BODY: &str = r#"{"failedInstances":null,"responseStatus":{"errorCode":"success","message":"","status":"success"}}"#;
const LISTENER: Token = Token(usize::MAX);

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9999".into());
    let cores: Vec<usize> = match args.next() {
        Some(list) => list
            .split(',')
            .map(|c| c.parse().expect("core number"))
            .collect(),
        None => core_affinity::get_core_ids()
            .unwrap_or_default()
            .iter()
            .map(|c| c.id)
            .collect(),
    };
    let reply: &'static [u8] = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    )
    .leak()
    .as_bytes();
    let listener = std::net::TcpListener::bind(&addr).expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    eprintln!("no-op server on {addr}, cores {cores:?}");
    let threads: Vec<_> = cores
        .into_iter()
        .map(|core| {
            let listener = listener.try_clone().expect("clone listener");
            std::thread::spawn(move || {
                core_affinity::set_for_current(core_affinity::CoreId { id: core });
                serve(TcpListener::from_std(listener), reply);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("server thread");
    }
}

/// One thread's event loop: accept what it can, answer every complete request.
fn serve(mut listener: TcpListener, reply: &[u8]) {
    let mut poll = Poll::new().expect("poll");
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .expect("register listener");
    let mut conns: HashMap<usize, (TcpStream, Vec<u8>)> = HashMap::new();
    let mut next = 0;
    let mut events = Events::with_capacity(1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        poll.poll(&mut events, None).expect("poll");
        for event in events.iter() {
            if event.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    stream.set_nodelay(true).expect("nodelay");
                    poll.registry()
                        .register(&mut stream, Token(next), Interest::READABLE)
                        .expect("register");
                    conns.insert(next, (stream, Vec::new()));
                    next += 1;
                }
                continue;
            }
            let Some((stream, pending)) = conns.get_mut(&event.token().0) else {
                continue;
            };
            let open = loop {
                match stream.read(&mut chunk) {
                    Ok(0) => break false,
                    Ok(n) => {
                        pending.extend_from_slice(&chunk[..n]);
                        let answered = answer(pending, stream, reply);
                        pending.drain(..answered);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break true,
                    Err(_) => break false,
                }
            };
            if !open {
                conns.remove(&event.token().0);
            }
        }
    }
}

/// Replies to each complete request in `pending`; returns how many bytes they took.
fn answer(pending: &[u8], stream: &mut TcpStream, reply: &[u8]) -> usize {
    let mut used = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(head)) = request.parse(&pending[used..]) else {
            return used;
        };
        let body = request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
            .unwrap_or(0);
        if pending.len() - used < head + body {
            return used;
        }
        used += head + body;
        // Replies are small and the client waits for each: the socket buffer takes them whole.
        if stream.write_all(reply).is_err() {
            return used;
        }
    }
}
