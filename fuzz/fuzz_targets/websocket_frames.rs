//! Client bytes of a WebSocket session, under arbitrary limits and cut into arbitrary reads (see
//! `artemis_fuzz::websocket`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| artemis_fuzz::websocket::split_reads(data));
