//! Arbitrary bytes under arbitrary limits, cut into arbitrary reads: the same requests and the
//! same error as when read at once (see `artemis_fuzz::http::split_reads` for the input layout).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| artemis_fuzz::http::split_reads(data));
