//! The operation-id decoder: callers hand these back; no panic, and what
//! decodes is valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sslvpn_gateway::{operation::Operation, validate};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Both the raw text and a well-prefixed body, so the JSON layer is
    // reached without the fuzzer having to learn base64 first.
    use base64::Engine;
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data);
    for id in [text.into_owned(), format!("op1.{body}")] {
        if let Ok(op) = Operation::decode(&id) {
            assert!(validate::region_id(op.region_id.as_str()).is_ok());
            assert!(validate::ssl_vpn_server_id(&op.ssl_vpn_server_id).is_ok());
            assert_eq!(Operation::decode(&op.encode()).as_ref(), Ok(&op));
        }
    }
});
