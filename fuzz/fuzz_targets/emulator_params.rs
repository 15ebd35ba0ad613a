//! The emulator's query/form parser: any bytes; the canonical form parses
//! back to the same parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sslvpn_gateway::emulator::wire::{self, Params};

fuzz_target!(|data: &[u8]| {
    let params = Params::parse(data);
    let again = Params::parse(params.canonical().as_bytes());
    let keep = |p: &Params| {
        let mut f = p.fingerprint();
        f.retain(|(n, v)| !(n.is_empty() && v.is_empty()));
        f
    };
    assert_eq!(keep(&again), keep(&params));
    let text = String::from_utf8_lossy(data);
    let _ = wire::parse_bool(&text);
    let _ = wire::parse_timestamp(&text);
});
