//! Arbitrary bytes as one read into a connection: requests parsed back to back until the bytes
//! run out or an error, each checked (see `artemis_fuzz::http`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| artemis_fuzz::http::request_bytes(data));
