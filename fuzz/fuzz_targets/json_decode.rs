//! Arbitrary request bodies through every JSON request decoder (see `artemis_fuzz::json`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| artemis_fuzz::json::decode_body(data));
