//! The emulator's signature parsing: an Authorization header, a query and
//! a body from the input (split on 0xFF); no panic, and garbage never
//! verifies.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use sslvpn_gateway::emulator::{
    signature::{Claims, RequestView},
    wire::Params,
};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0xFF);
    let authorization = parts.next().unwrap_or_default();
    let query = Params::parse(parts.next().unwrap_or_default());
    let body = parts.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for name in [
        "host",
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    ] {
        headers.insert(name, HeaderValue::from_static("x"));
    }
    if let Ok(value) = HeaderValue::from_bytes(authorization) {
        headers.insert("authorization", value);
    }
    let form = Params::parse(body);
    for headers in [headers.clone(), HeaderMap::new()] {
        let view = RequestView {
            method: "POST",
            query: &query,
            form: &form,
            headers: &headers,
            body,
        };
        if let Ok(claims) = Claims::read(&view) {
            assert!(claims.verify(&view, "fuzz-secret").is_err());
            let _ = claims.operation_params(&view);
        }
    }
});
