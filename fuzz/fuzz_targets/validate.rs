//! Request validation: fields split on 0xFF; no panic, and what passes
//! obeys the rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sslvpn_gateway::validate::{self, ModifyInput, RESERVED_PORTS};

fuzz_target!(|data: &[u8]| {
    let parts: Vec<String> = data
        .split(|&b| b == 0xFF)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let get = |i: usize| parts.get(i).map(String::as_str);
    let port = get(6).and_then(|p| p.trim().parse::<i64>().ok());
    let input = ModifyInput {
        region_id: get(0).unwrap_or(""),
        ssl_vpn_server_id: get(1).unwrap_or(""),
        client_token: get(2).unwrap_or(""),
        name: get(3),
        client_ip_pool: get(4),
        local_subnet: get(5),
        port,
        proto: get(7),
        cipher: get(8),
        idaas_instance_id: get(9),
        idaas_region_id: get(10),
        idaas_application_id: get(11),
        compress: data.first().map(|b| b & 1 == 1),
        enable_multi_factor_auth: data.last().map(|b| b & 1 == 1),
    };
    if let Ok(m) = validate::modification(&input) {
        assert!(validate::region_id(m.region_id.as_str()).is_ok());
        assert!(validate::ssl_vpn_server_id(&m.ssl_vpn_server_id).is_ok());
        if let Some(p) = m.changes.port {
            assert!(p >= 1 && !RESERVED_PORTS.contains(&p));
        }
    }
});
