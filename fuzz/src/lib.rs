//! The properties the fuzz targets check, one module per input the server reads. They live in
//! this library, not in the targets, because `tests/fuzz_regressions.rs` compiles the same
//! modules on stable to replay the committed corpus.

pub mod http;
pub mod json;
pub mod websocket;
