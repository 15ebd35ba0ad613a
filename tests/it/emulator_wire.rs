//! The emulator's wire over real HTTP on loopback: both signatures in every
//! placement, the cloud's refusals, garbage, and the admin API.

use std::time::{Duration, SystemTime};

use serde_json::json;
use sslvpn_gateway::emulator::fixtures::{
    DISABLED_ACCESS_KEY_ID, DISABLED_ACCESS_KEY_SECRET, STS_ACCESS_KEY_ID, STS_ACCESS_KEY_SECRET,
    STS_SECURITY_TOKEN,
};

use crate::support::emulator::{Algo, Call, Cloud, raw, sign, to_bytes};

fn describe_gateway() -> Call {
    Call::new(
        "DescribeVpnGateway",
        &[
            ("RegionId", "cn-hangzhou"),
            ("VpnGatewayId", "vpn-hz1primary"),
        ],
    )
}

#[tokio::test]
async fn both_signatures_in_every_placement_are_accepted() {
    let cloud = Cloud::fast().await;
    for algo in [Algo::V3, Algo::V1] {
        for call in [
            describe_gateway().algo(algo),
            describe_gateway().algo(algo).get(),
            describe_gateway().algo(algo).in_form(&["VpnGatewayId"]),
            describe_gateway()
                .algo(algo)
                .key(STS_ACCESS_KEY_ID, STS_ACCESS_KEY_SECRET)
                .token(STS_SECURITY_TOKEN),
        ] {
            let a = cloud.call(&call).await;
            assert_eq!(a.status, 200, "{call:?}: {a:?}");
            assert_eq!(a.json["VpnGatewayId"], "vpn-hz1primary");
            let id = a.json["RequestId"].as_str().unwrap();
            assert_eq!(a.header("x-acs-request-id"), Some(id));
            assert!(
                a.header("content-type")
                    .unwrap()
                    .starts_with("application/json")
            );
        }
    }
    let counters = cloud.handle.counters();
    assert_eq!(counters.requests("DescribeVpnGateway", "Success"), 8);
}

#[tokio::test]
async fn values_needing_encoding_survive_both_signatures() {
    let cloud = Cloud::fast().await;
    for (algo, name) in [(Algo::V3, "a b+c~/ä*"), (Algo::V1, "ä/~ *+x")] {
        let call = Call::new(
            "ModifySslVpnServer",
            &[
                ("RegionId", "cn-hangzhou"),
                ("SslVpnServerId", "vss-hz1peer"),
                ("Name", name),
            ],
        )
        .algo(algo);
        let a = cloud.call(&call).await;
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(cloud.server("vss-hz1peer").await["Name"], name);
        // A form body carries the same value.
        let form = call.clone().in_form(&["Name"]);
        assert_eq!(cloud.call(&form).await.status, 200);
    }
}

#[tokio::test]
async fn plus_in_the_query_is_a_space() {
    let cloud = Cloud::fast().await;
    let call = Call::new(
        "ModifySslVpnServer",
        &[
            ("RegionId", "cn-hangzhou"),
            ("SslVpnServerId", "vss-hz1peer"),
            ("Name", "two words"),
        ],
    )
    .algo(Algo::V1);
    let mut req = sign(&call, &cloud.host());
    // As the Python SDK sends it: urlencode writes spaces as '+'.
    req.target = req.target.replace("two%20words", "two+words");
    let a = raw(cloud.handle.addr(), &to_bytes(&req)).await.unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(cloud.server("vss-hz1peer").await["Name"], "two words");
}

#[tokio::test]
async fn credentials_are_checked_with_the_clouds_codes() {
    let cloud = Cloud::fast().await;
    for algo in [Algo::V3, Algo::V1] {
        let a = cloud
            .call(
                &describe_gateway()
                    .algo(algo)
                    .key("LTAI5tEMULATORDEMOKEY", "wrong"),
            )
            .await;
        assert_eq!((a.status, a.code()), (400, "SignatureDoesNotMatch"));
        for field in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
            assert!(a.json[field].is_string(), "{field} in {}", a.json);
        }
        let a = cloud
            .call(&describe_gateway().algo(algo).key("LTAI5tNOBODY", "x"))
            .await;
        assert_eq!((a.status, a.code()), (404, "InvalidAccessKeyId.NotFound"));
        let a = cloud
            .call(
                &describe_gateway()
                    .algo(algo)
                    .key(DISABLED_ACCESS_KEY_ID, DISABLED_ACCESS_KEY_SECRET),
            )
            .await;
        assert_eq!((a.status, a.code()), (400, "InvalidAccessKeyId.Inactive"));
        let a = cloud
            .call(
                &describe_gateway()
                    .algo(algo)
                    .key(STS_ACCESS_KEY_ID, STS_ACCESS_KEY_SECRET),
            )
            .await;
        assert_eq!(
            (a.status, a.code()),
            (400, "MissingParameter.SecurityToken")
        );
        let a = cloud
            .call(
                &describe_gateway()
                    .algo(algo)
                    .key(STS_ACCESS_KEY_ID, STS_ACCESS_KEY_SECRET)
                    .token("CAIS.forged"),
            )
            .await;
        assert_eq!(a.code(), "InvalidSecurityToken.MismatchWithAccessKey");
    }
}

#[tokio::test]
async fn timestamps_must_be_within_fifteen_minutes() {
    let cloud = Cloud::fast().await;
    let now = SystemTime::now();
    for algo in [Algo::V3, Algo::V1] {
        for skew in [Duration::from_secs(16 * 60)] {
            let old = cloud
                .call(&describe_gateway().algo(algo).at(now - skew))
                .await;
            assert_eq!((old.status, old.code()), (400, "InvalidTimeStamp.Expired"));
            let future = cloud
                .call(&describe_gateway().algo(algo).at(now + skew))
                .await;
            assert_eq!(future.code(), "InvalidTimeStamp.Expired");
        }
        let fine = cloud
            .call(
                &describe_gateway()
                    .algo(algo)
                    .at(now - Duration::from_secs(14 * 60)),
            )
            .await;
        assert_eq!(fine.status, 200);
    }
}

#[tokio::test]
async fn a_nonce_is_good_once() {
    let cloud = Cloud::fast().await;
    for (algo, nonce) in [(Algo::V3, "n-v3"), (Algo::V1, "n-v1")] {
        let call = describe_gateway().algo(algo).nonce(nonce);
        assert_eq!(cloud.call(&call).await.status, 200);
        let replay = cloud.call(&call).await;
        assert_eq!((replay.status, replay.code()), (400, "SignatureNonceUsed"));
    }
}

#[tokio::test]
async fn missing_and_unknown_things() {
    let cloud = Cloud::fast().await;
    let a = cloud
        .call(&Call::new(
            "DescribeVpnGateway",
            &[("VpnGatewayId", "vpn-hz1primary")],
        ))
        .await;
    assert_eq!((a.status, a.code()), (400, "MissingParameter.RegionId"));
    let a = cloud
        .call(&Call::new("DeleteVpc", &[("RegionId", "cn-hangzhou")]))
        .await;
    assert_eq!((a.status, a.code()), (404, "InvalidApi.NotFound"));
    let a = cloud
        .call(&Call::new(
            "ModifySslVpnServer",
            &[
                ("RegionId", "cn-hangzhou"),
                ("SslVpnServerId", "vss-nope"),
                ("Port", "1195"),
            ],
        ))
        .await;
    assert_eq!(
        (a.status, a.code()),
        (404, "InvalidSslVpnServerId.NotFound")
    );

    let addr = cloud.handle.addr();
    let unsigned = raw(
        addr,
        b"POST /?Action=DescribeVpnGateway HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(
        (unsigned.status, unsigned.code()),
        (400, "MissingParameter.AccessKeyId")
    );
    let bad_auth = raw(
        addr,
        b"POST / HTTP/1.1\r\nhost: x\r\nauthorization: ACS3-HMAC-SHA256 nonsense\r\nconnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(
        (bad_auth.status, bad_auth.code()),
        (400, "IncompleteSignature")
    );
    let put = raw(
        addr,
        b"PUT / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!((put.status, put.code()), (400, "UnsupportedHTTPMethod"));
    let elsewhere = raw(
        addr,
        b"GET /v1/things HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(
        (elsewhere.status, elsewhere.code()),
        (404, "InvalidApi.NotFound")
    );
    let counters = cloud.handle.counters();
    assert_eq!(counters.requests("(unknown)", "InvalidApi.NotFound"), 1);
    assert_eq!(
        counters.requests("DescribeVpnGateway", "MissingParameter.AccessKeyId"),
        1
    );
}

#[tokio::test]
async fn garbage_is_refused_and_the_emulator_stays_up() {
    let cloud = Cloud::fast().await;
    let addr = cloud.handle.addr();
    let huge = format!(
        "POST /?a=b HTTP/1.1\r\nhost: x\r\nx-junk: {}\r\nconnection: close\r\n\r\n",
        "y".repeat(200_000)
    );
    let garbage: Vec<Vec<u8>> = vec![
        b"POST /?%%%=%ZZ&&=&Action=%FF%FE&AccessKeyId=%C3 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
        b"POST /?Action=DescribeVpnGateway HTTP/1.1\r\nhost: x\r\nauthorization: \xff\xfe\r\nconnection: close\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 7\r\nconnection: close\r\n\r\n\xff=\xfe&%=%".to_vec(),
        b"POST / HTTP/1.1\r\nhost: x\r\nx-acs-date: \xff\r\nauthorization: ACS3-HMAC-SHA256 Credential=\xc3,SignedHeaders=host,Signature=zz\r\nconnection: close\r\n\r\n".to_vec(),
        b"NOT HTTP AT ALL\r\n\r\n".to_vec(),
        huge.into_bytes(),
    ];
    for bytes in &garbage {
        // Either a refusal or a closed connection; never a crash.
        if let Ok(a) = raw(addr, bytes).await {
            assert!(a.status >= 400, "{a:?}");
        }
    }
    // A V3 request whose signed date is garbage.
    let mut req = sign(&describe_gateway(), &cloud.host());
    for (k, v) in &mut req.headers {
        if k == "x-acs-date" {
            *v = "yesterday".into();
        }
    }
    let a = raw(addr, &to_bytes(&req)).await.unwrap();
    assert_eq!(a.code(), "InvalidTimeStamp.Format");
    assert_eq!(cloud.call(&describe_gateway()).await.status, 200);
}

#[tokio::test]
async fn the_admin_api_sets_the_stage() {
    let cloud = Cloud::fast().await;
    let index = cloud.admin("GET", "/", None).await;
    assert!(index.json["endpoints"].as_array().unwrap().len() >= 10);

    let t = cloud
        .admin("PUT", "/timings", Some(json!({"accept_lag_ms": 7})))
        .await;
    assert_eq!(t.json["accept_lag_ms"], 7);
    assert_eq!(t.json["apply_time_ms"], 150, "untouched fields stay");
    let bad = cloud
        .admin("PUT", "/timings", Some(json!({"accept_lag": 7})))
        .await;
    assert_eq!(bad.status, 400);

    // The world goes out and back in as a fixture document.
    let mut world = cloud.admin("GET", "/fixtures", None).await.json;
    world["ssl_vpn_servers"][0]["name"] = json!("from-a-fixture");
    let first = world["ssl_vpn_servers"][0]["ssl_vpn_server_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        cloud
            .admin("PUT", "/fixtures", Some(world.clone()))
            .await
            .status,
        200
    );
    assert_eq!(cloud.server(&first).await["Name"], "from-a-fixture");
    world["ssl_vpn_servers"][0]["vpn_gateway_id"] = json!("vpn-nowhere");
    let dangling = cloud.admin("PUT", "/fixtures", Some(world)).await;
    assert_eq!(dangling.status, 400, "{dangling:?}");
    assert!(
        dangling.json["error"]
            .as_str()
            .unwrap()
            .contains("vpn-nowhere")
    );

    let f = cloud
        .admin(
            "PUT",
            "/faults",
            Some(json!({"*": {"probabilities": {"internal_error": 0.9, "reset": 0.9}}})),
        )
        .await;
    assert_eq!(f.status, 400, "probabilities over 1 are refused");
    let f = cloud
        .admin(
            "PUT",
            "/faults/DescribeVpnGateway",
            Some(json!({"script": ["system_busy"]})),
        )
        .await;
    assert_eq!(
        f.json["DescribeVpnGateway"]["script"],
        json!(["system_busy"])
    );
    assert_eq!(cloud.call(&describe_gateway()).await.code(), "SystemBusy");

    let counters = cloud.admin("GET", "/counters", None).await.json;
    assert_eq!(counters["requests"]["DescribeVpnGateway"]["SystemBusy"], 1);
    assert_eq!(counters["faults_injected"]["system_busy"], 1);

    // Reset: back to the start, counters included.
    assert_eq!(cloud.admin("POST", "/reset", None).await.status, 200);
    assert_eq!(cloud.server(&first).await["Name"], "hz1peer");
    assert_eq!(
        cloud.admin("GET", "/timings", None).await.json["accept_lag_ms"],
        50
    );
    assert!(
        cloud
            .admin("GET", "/faults", None)
            .await
            .json
            .as_object()
            .unwrap()
            .is_empty()
    );
    let counters = cloud.admin("GET", "/counters", None).await.json;
    assert_eq!(
        counters["requests"].as_object().unwrap().len(),
        1,
        "{counters}"
    );
    let zeroed = cloud.admin("POST", "/counters/reset", None).await.json;
    assert!(zeroed["requests"].as_object().unwrap().is_empty());
}

#[tokio::test]
async fn shutdown_closes_the_listener() {
    let cloud = Cloud::fast().await;
    let addr = cloud.handle.addr();
    assert_eq!(cloud.call(&describe_gateway()).await.status, 200);
    cloud.handle.shutdown().await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
