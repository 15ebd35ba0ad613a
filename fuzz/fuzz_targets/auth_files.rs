//! The operator-written files and the caller-written header: policy
//! documents, tokens files, `authorization` values; no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sslvpn_gateway::access::{
    TokenStore,
    policy::{Pattern, Policy},
    tokens,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = Policy::parse(&text);
    if let Ok(store) = TokenStore::parse(&text) {
        let _ = store.verify(&text);
    }
    if let Some(token) = tokens::bearer(data) {
        assert!(!token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()));
    }
    if let Some((pattern, subject)) = text.split_once('\n')
        && let Ok(pattern) = Pattern::new(pattern)
    {
        let _ = pattern.matches(subject);
    }
});
