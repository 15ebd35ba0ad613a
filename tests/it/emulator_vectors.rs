//! The official SDK's captured requests (wire reference §2 plus two GET
//! captures), replayed byte for byte over TCP against an emulator whose
//! clock is pinned at each capture time: every one must get past
//! authentication and be answered by its action.

use std::{collections::BTreeMap, time::SystemTime};

use sslvpn_gateway::emulator::{
    self, Clock, EmulatorConfig, Fixtures, Timings,
    fixtures::{AccessKey, VpnGateway},
};

use crate::support::emulator::raw;

const VECTORS: &str = include_str!("../../src/emulator/signature/vectors.http");
const KEY_ID: &str = "LTAI5tFAKEACCESSKEYID";
const SECRET: &str = "FakeSecret0123456789abcdefABCDEF";
const STS_TOKEN: &str = "CAIS.FAKE+STS/Token==";
/// The gateway id the captures use.
const GATEWAY: &str = "vpn-bp1q8bgx4xnkm2ogj****";

/// The request as bytes on the wire (CRLF restored, `Connection: close`),
/// and its capture time.
fn wire(block: &str) -> (Vec<u8>, SystemTime) {
    let (head, body) = block.split_once("\n\n").unwrap_or((block, ""));
    let mut out = String::new();
    let mut stamp = None;
    for (i, line) in head.lines().enumerate() {
        if i > 0 && line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        if let Some(date) = line.strip_prefix("x-acs-date: ") {
            stamp = humantime::parse_rfc3339(date).ok();
        }
        if i == 0
            && let Some(start) = line.find("Timestamp=")
        {
            let value = &line[start + 10..start + 10 + 24];
            stamp = humantime::parse_rfc3339(&value.replace("%3A", ":")).ok();
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out.push_str(body);
    (out.into_bytes(), stamp.expect("a capture time"))
}

fn fixtures(sts: bool) -> Fixtures {
    let mut f = Fixtures::default_set();
    f.access_keys.push(AccessKey {
        security_token: sts.then(|| STS_TOKEN.to_owned()),
        ..AccessKey::new(KEY_ID, SECRET)
    });
    let mut gw: VpnGateway = f.vpn_gateways[0].clone();
    gw.vpn_gateway_id = GATEWAY.into();
    gw.tags = BTreeMap::from([("env".into(), "test".into())]);
    f.vpn_gateways.push(gw);
    f
}

#[tokio::test]
async fn every_captured_request_is_answered_by_its_action() {
    let blocks: Vec<&str> = VECTORS
        .split("\n#####\n")
        .filter(|b| !b.starts_with('#'))
        .collect();
    assert_eq!(blocks.len(), 15);
    // (HTTP status, Code) each capture must get once authenticated.
    let expected: [(u16, &str); 15] = [
        (400, "InvalidParameter.SslVpnServerId"), // V3 modify of a "vss-…****" id
        (200, ""),                                // V3 DescribeVpnGateway
        (200, ""),                                // V3 DescribeVpnGateways
        (200, ""),                                // V3 DescribeSslVpnServers
        (400, "InvalidParameter.SslVpnServerId"), // V1 modify
        (200, ""),
        (200, ""),
        (200, ""),
        (200, ""),                                // STS, V3
        (200, ""),                                // STS, V1
        (400, "InvalidParameter.SslVpnServerId"), // V3, form body
        (400, "InvalidParameter.SslVpnServerId"), // V1, form body
        (404, "InvalidSslVpnServerId.NotFound"),  // legacy SDK, vss-x
        (200, ""),                                // V3 GET
        (200, ""),                                // V1 GET
    ];
    for (i, block) in blocks.iter().enumerate() {
        let (bytes, captured_at) = wire(block);
        let handle = emulator::spawn(EmulatorConfig {
            fixtures: fixtures(i == 8 || i == 9),
            timings: Timings::fast(),
            clock: Clock::starting_at(captured_at),
            ..EmulatorConfig::default()
        })
        .await
        .unwrap();
        let a = raw(handle.addr(), &bytes).await.unwrap();
        assert_eq!((a.status, a.code()), expected[i], "capture {i}: {}", a.json);
        if i == 2 || i == 6 {
            // Filtered by the captured Tag.1.Key=env&Tag.1.Value=test.
            assert_eq!(a.json["TotalCount"], 1, "capture {i}");
            assert_eq!(
                a.json["VpnGateways"]["VpnGateway"][0]["VpnGatewayId"],
                GATEWAY
            );
        }
        // Replayed once more: the nonce is spent.
        let again = raw(handle.addr(), &bytes).await.unwrap();
        assert_eq!(again.code(), "SignatureNonceUsed", "capture {i}");
        handle.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn captured_requests_expire_with_the_clock() {
    let (bytes, captured_at) = wire(VECTORS.split("\n#####\n").nth(2).unwrap());
    let handle = emulator::spawn(EmulatorConfig {
        fixtures: fixtures(false),
        clock: Clock::starting_at(captured_at + std::time::Duration::from_secs(15 * 60 + 1)),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let a = raw(handle.addr(), &bytes).await.unwrap();
    assert_eq!((a.status, a.code()), (400, "InvalidTimeStamp.Expired"));
}
