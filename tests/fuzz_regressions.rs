//! The fuzz corpus, replayed on stable: every committed seed (`fuzz/seeds/<target>/`) and every
//! input that once failed (`fuzz/regressions/<target>/`) goes through the same property checks
//! the cargo-fuzz targets run, compiled here from the fuzz crate's own modules.

// The fuzz crate's own modules, public there for its targets.
#[allow(unreachable_pub)]
#[path = "../fuzz/src/http.rs"]
mod http;
#[allow(unreachable_pub)]
#[path = "../fuzz/src/json.rs"]
mod json;
#[allow(unreachable_pub)]
#[path = "../fuzz/src/websocket.rs"]
mod websocket;

use std::fs;
use std::path::Path;

/// Runs `check` on every input committed for `target`; panics name the input that failed.
fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for kind in ["seeds", "regressions"] {
        let Ok(dir) = fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for entry in dir {
            let path = entry.expect("a corpus entry").path();
            let input = fs::read(&path).expect("a corpus file");
            let outcome = std::panic::catch_unwind(|| check(&input));
            assert!(outcome.is_ok(), "{} fails", path.display());
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no corpus for {target}");
}

#[test]
fn http_request_corpus() {
    replay("http_request", http::request_bytes);
}

#[test]
fn http_split_corpus() {
    replay("http_split", http::split_reads);
}

#[test]
fn json_decode_corpus() {
    replay("json_decode", json::decode_body);
}

#[test]
fn websocket_frames_corpus() {
    replay("websocket_frames", websocket::split_reads);
}
