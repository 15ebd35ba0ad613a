//! Each documented rule at both sides of each boundary.

use super::*;

fn base() -> ModifyInput<'static> {
    ModifyInput {
        region_id: "cn-hangzhou",
        ssl_vpn_server_id: "vss-bp18q7hzj6largv4v1234",
        ..ModifyInput::default()
    }
}

fn codes(input: &ModifyInput<'_>) -> Vec<(&'static str, String)> {
    match modification(input) {
        Ok(_) => Vec::new(),
        Err(v) => v
            .as_slice()
            .iter()
            .map(|v| (v.field.proto_name(), v.code.clone()))
            .collect(),
    }
}

fn pool(s: &str) -> Result<Ipv4Net, String> {
    client_ip_pool(s).map_err(|v| v.code)
}

#[test]
fn a_valid_request_becomes_a_modification() {
    let m = modification(&ModifyInput {
        client_token: "02fb3da4-130e-11e9-8e44-0016e04115b",
        name: Some("office"),
        client_ip_pool: Some("10.30.30.0/24"),
        local_subnet: Some("10.20.20.0/24, 172.16.1.0/24"),
        proto: Some(Choice::Known(Protocol::Udp)),
        cipher: Some(Choice::Known(Cipher::Aes256Cbc)),
        port: Some(1194),
        compress: Some(false),
        ..base()
    })
    .expect("valid");
    assert_eq!(m.region_id.as_str(), "cn-hangzhou");
    assert_eq!(
        m.client_token.as_deref(),
        Some("02fb3da4-130e-11e9-8e44-0016e04115b")
    );
    assert_eq!(m.changes.port, Some(1194));
    assert_eq!(m.changes.proto, Some(Protocol::Udp));
    assert_eq!(m.changes.cipher, Some(Cipher::Aes256Cbc));
    assert_eq!(
        m.changes
            .local_subnet
            .as_deref()
            .map(crate::domain::format_subnets),
        Some("10.20.20.0/24,172.16.1.0/24".to_owned())
    );
}

#[test]
fn name_length_boundaries() {
    assert!(name(&"a".repeat(100)).is_ok());
    assert!(name("a").is_ok());
    assert_eq!(name(&"a".repeat(101)).unwrap_err().code, "InvalidName");
    assert_eq!(name("").unwrap_err().code, "InvalidName");
    // Characters, not bytes: 100 two-byte characters are fine.
    assert!(name(&"ä".repeat(100)).is_ok());
    assert_eq!(name(&"ä".repeat(101)).unwrap_err().code, "InvalidName");
}

#[test]
fn name_must_not_start_with_a_url_scheme() {
    for bad in ["http://x", "https://x", "HTTP://x", "https://"] {
        assert_eq!(name(bad).unwrap_err().code, "InvalidName", "{bad}");
    }
    for good in ["http:/x", "xhttp://", "https", "office http://"] {
        assert!(name(good).is_ok(), "{good}");
    }
}

#[test]
fn client_pool_mask_boundaries() {
    assert_eq!(
        pool("10.0.0.0/15"),
        Err("ClientIpPool.NetmaskInvalid".into())
    );
    assert!(pool("10.0.0.0/16").is_ok());
    assert!(pool("10.0.0.0/29").is_ok());
    assert_eq!(
        pool("10.0.0.0/30"),
        Err("ClientIpPool.NetmaskInvalid".into())
    );
    assert_eq!(
        pool("10.0.0.0/32"),
        Err("ClientIpPool.NetmaskInvalid".into())
    );
}

#[test]
fn client_pool_must_be_a_network_address() {
    assert_eq!(
        pool("10.0.0.1/24"),
        Err("InvalidParameter.ClientIpPool".into())
    );
    assert_eq!(
        pool("10.0.0.0"),
        Err("InvalidParameter.ClientIpPool".into())
    );
    assert_eq!(
        pool("not a cidr"),
        Err("InvalidParameter.ClientIpPool".into())
    );
    assert_eq!(
        pool("fd00::/64"),
        Err("InvalidParameter.ClientIpPool".into())
    );
    assert_eq!(
        pool("010.0.0.0/24"),
        Err("InvalidParameter.ClientIpPool".into())
    );
}

#[test]
fn client_pool_reserved_ranges_at_first_and_last_address() {
    // The first and the last /29 of each unsupported range, and the /29 just
    // outside each end.
    let cases = [
        (
            "100.64.0.0/29",
            "100.127.255.248/29",
            "100.63.255.248/29",
            "100.128.0.0/29",
        ),
        (
            "127.0.0.0/29",
            "127.255.255.248/29",
            "126.255.255.248/29",
            "128.0.0.0/29",
        ),
        (
            "169.254.0.0/29",
            "169.254.255.248/29",
            "169.253.255.248/29",
            "169.255.0.0/29",
        ),
        (
            "224.0.0.0/29",
            "239.255.255.248/29",
            "223.255.255.248/29",
            "240.0.0.0/29",
        ),
        (
            "255.0.0.0/29",
            "255.255.255.248/29",
            "254.255.255.248/29",
            "254.0.0.0/29",
        ),
    ];
    for (first, last, before, after) in cases {
        assert_eq!(
            pool(first),
            Err("ClientIpPool.SubnetInvalid".into()),
            "{first}"
        );
        assert_eq!(
            pool(last),
            Err("ClientIpPool.SubnetInvalid".into()),
            "{last}"
        );
        assert!(pool(before).is_ok(), "{before}");
        assert!(pool(after).is_ok(), "{after}");
    }
}

#[test]
fn local_subnet_mask_boundaries() {
    let code = |s: &str| local_subnet(s).map_err(|v| v[0].code.clone());
    assert_eq!(
        code("10.0.0.0/7"),
        Err("InvalidParameter.LocalSubnet".into())
    );
    assert!(code("10.0.0.0/8").is_ok());
    assert!(code("10.1.2.3/32").is_ok());
    assert_eq!(
        code("10.0.0.0/33"),
        Err("InvalidParameter.LocalSubnet".into())
    );
}

#[test]
fn local_subnet_reserved_ranges_at_first_and_last_address() {
    let cases = [
        (
            "127.0.0.0/32",
            "127.255.255.255/32",
            "126.255.255.255/32",
            "128.0.0.0/32",
        ),
        (
            "169.254.0.0/32",
            "169.254.255.255/32",
            "169.253.255.255/32",
            "169.255.0.0/32",
        ),
        (
            "224.0.0.0/32",
            "239.255.255.255/32",
            "223.255.255.255/32",
            "240.0.0.0/32",
        ),
        (
            "255.0.0.0/32",
            "255.255.255.255/32",
            "254.255.255.255/32",
            "254.0.0.0/32",
        ),
    ];
    for (first, last, before, after) in cases {
        assert!(local_subnet(first).is_err(), "{first}");
        assert!(local_subnet(last).is_err(), "{last}");
        assert!(local_subnet(before).is_ok(), "{before}");
        assert!(local_subnet(after).is_ok(), "{after}");
    }
    // A block containing a reserved range is refused too; 100.64/10 is fine
    // for local subnets (only the client pool excludes it).
    assert!(local_subnet("169.0.0.0/8").is_err());
    assert!(local_subnet("100.64.0.0/10").is_ok());
}

#[test]
fn local_subnet_lists_report_every_bad_entry() {
    let violations =
        local_subnet("10.0.0.0/24,,127.0.0.0/8, 10.0.0.1/24,172.16.0.0/12").unwrap_err();
    assert_eq!(violations.len(), 3);
    assert!(violations.iter().all(|v| v.field == Field::LocalSubnet));
    assert_eq!(
        local_subnet(" 10.0.0.0/24 ,172.16.0.0/12").unwrap(),
        vec![
            "10.0.0.0/24".parse::<Ipv4Net>().unwrap(),
            "172.16.0.0/12".parse().unwrap()
        ]
    );
    assert!(local_subnet("").is_err());
    assert!(local_subnet("10.0.0.0/24,").is_err());
}

#[test]
fn client_pool_must_not_overlap_a_local_subnet() {
    let overlapping = codes(&ModifyInput {
        client_ip_pool: Some("10.0.0.0/24"),
        local_subnet: Some("192.168.0.0/16,10.0.0.128/25"),
        ..base()
    });
    assert_eq!(
        overlapping,
        vec![("client_ip_pool", "IpConflict".to_owned())]
    );
    let containing = codes(&ModifyInput {
        client_ip_pool: Some("10.0.0.0/24"),
        local_subnet: Some("10.0.0.0/8"),
        ..base()
    });
    assert_eq!(
        containing,
        vec![("client_ip_pool", "IpConflict".to_owned())]
    );
    let adjacent = codes(&ModifyInput {
        client_ip_pool: Some("10.0.0.0/24"),
        local_subnet: Some("10.0.1.0/24"),
        ..base()
    });
    assert!(adjacent.is_empty());
}

#[test]
fn port_boundaries_and_every_reserved_port() {
    assert_eq!(port(0).unwrap_err().code, "SslVpnServerPort.Illegal");
    assert_eq!(port(1), Ok(1));
    assert_eq!(port(65535), Ok(65535));
    assert_eq!(port(65536).unwrap_err().code, "SslVpnServerPort.Illegal");
    assert_eq!(port(-1).unwrap_err().code, "SslVpnServerPort.Illegal");
    for reserved in RESERVED_PORTS {
        assert_eq!(
            port(i64::from(reserved)).unwrap_err().code,
            "InvalidParameter.Port",
            "{reserved}"
        );
        assert!(port(i64::from(reserved) + 1).is_ok() || RESERVED_PORTS.contains(&(reserved + 1)));
    }
    assert_eq!(RESERVED_PORTS.len(), 16);
}

#[test]
fn enabling_mfa_needs_the_instance_and_its_region() {
    let missing_all = codes(&ModifyInput {
        enable_multi_factor_auth: Some(true),
        ..base()
    });
    assert_eq!(
        missing_all,
        vec![
            (
                "idaas_instance_id",
                "MissingParameter.IDaaSInstanceId".to_owned()
            ),
            ("idaas_region_id", "MissingParam.IDaaSRegionId".to_owned()),
        ]
    );
    let empty_ids = codes(&ModifyInput {
        enable_multi_factor_auth: Some(true),
        idaas_instance_id: Some(""),
        idaas_region_id: Some(""),
        idaas_application_id: Some(""),
        ..base()
    });
    assert_eq!(empty_ids, missing_all, "an empty id is no id");
    let complete = codes(&ModifyInput {
        enable_multi_factor_auth: Some(true),
        idaas_instance_id: Some("idaas-cn-hangzhou-abc123"),
        idaas_region_id: Some("cn-hangzhou"),
        idaas_application_id: Some("app_my6g4qmvnwxzj2f1234"),
        ..base()
    });
    assert!(complete.is_empty());
    // An EIAM 1.0 instance takes no application: only the cloud knows the
    // instance's version, and answers MissingParam.IDaaSApplicationId for
    // a 2.0 instance itself.
    let without_application = codes(&ModifyInput {
        enable_multi_factor_auth: Some(true),
        idaas_instance_id: Some("idaas-cn-hangzhou-eiam1"),
        idaas_region_id: Some("cn-hangzhou"),
        ..base()
    });
    assert!(without_application.is_empty(), "{without_application:?}");
    let disabling = codes(&ModifyInput {
        enable_multi_factor_auth: Some(false),
        ..base()
    });
    assert!(disabling.is_empty());
}

#[test]
fn client_token_is_ascii_and_at_most_64() {
    assert_eq!(client_token(""), Ok(None));
    assert!(client_token(&"t".repeat(64)).is_ok());
    assert_eq!(
        client_token(&"t".repeat(65)).unwrap_err().code,
        "InvalidParameter.ClientToken"
    );
    assert!(client_token("tökén").is_err());
    assert!(client_token("a\nb").is_err());
}

#[test]
fn region_ids_cannot_inject_into_a_host_name() {
    for good in [
        "cn-hangzhou",
        "ap-southeast-1",
        "cn-shanghai-finance-1",
        "cn-zhangjiakou-na62-a01",
    ] {
        assert!(region_id(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "cn",
        "CN-HANGZHOU",
        "cn-hangzhou.evil.com",
        "cn-hangzhou/x",
        "cn-hangzhou:80",
        "cn--hangzhou",
        "cn-hangzhou-",
        "-cn",
        "cn hangzhou",
        "cn-hangzhou@evil",
        "a-b-c-d-e-f-g",
    ] {
        assert!(region_id(bad).is_err(), "{bad:?}");
    }
    assert_eq!(region_id("").unwrap_err().code, "MissingParameter.RegionId");
}

#[test]
fn server_ids_are_well_formed() {
    assert!(ssl_vpn_server_id("vss-bp18q7hzj6largv4v1234").is_ok());
    for bad in [
        "",
        "vss-",
        "vpn-abc",
        "vss-ABC",
        "vss-a/b",
        "vss-bp18q7hzj6largv4v****",
    ] {
        assert!(ssl_vpn_server_id(bad).is_err(), "{bad:?}");
    }
    assert!(ssl_vpn_server_id(&format!("vss-{}", "a".repeat(61))).is_err());
}

#[test]
fn a_request_that_changes_nothing_is_refused() {
    assert_eq!(codes(&base()), vec![("", "MissingParameter".to_owned())]);
}

#[test]
fn enum_numbers_the_contract_does_not_define_are_refused() {
    let got = codes(&ModifyInput {
        proto: Some(Choice::Unknown(9)),
        cipher: Some(Choice::Unknown(-1)),
        ..base()
    });
    assert_eq!(
        got,
        vec![
            ("proto", "InvalidParameter.Proto".to_owned()),
            ("cipher", "InvalidParameter.Cipher".to_owned()),
        ]
    );
}

#[test]
fn every_violation_is_reported_at_once_in_field_order() {
    let got = codes(&ModifyInput {
        region_id: "CN",
        ssl_vpn_server_id: "",
        client_token: &"x".repeat(80),
        name: Some("https://evil"),
        client_ip_pool: Some("10.0.0.0/30"),
        local_subnet: Some("127.0.0.0/8"),
        port: Some(443),
        enable_multi_factor_auth: Some(true),
        idaas_instance_id: Some("idaas-1"),
        idaas_region_id: Some("cn-hangzhou"),
        ..base()
    });
    assert_eq!(
        got,
        vec![
            ("region_id", "InvalidParameter.RegionId".to_owned()),
            (
                "ssl_vpn_server_id",
                "MissingParameter.SslVpnServerId".to_owned()
            ),
            ("client_token", "InvalidParameter.ClientToken".to_owned()),
            ("name", "InvalidName".to_owned()),
            ("client_ip_pool", "ClientIpPool.NetmaskInvalid".to_owned()),
            ("local_subnet", "InvalidParameter.LocalSubnet".to_owned()),
            ("port", "InvalidParameter.Port".to_owned()),
        ]
    );
}

#[test]
fn pool_capacity_needs_four_addresses_per_connection() {
    let net = |s: &str| s.parse::<Ipv4Net>().unwrap();
    // A /27 holds 32 addresses: enough for 8 connections, not 9.
    assert!(pool_capacity(net("10.0.0.0/27"), 8).is_ok());
    assert_eq!(
        pool_capacity(net("10.0.0.0/27"), 9).unwrap_err().code,
        "InvalidParameter.ClientIpPool"
    );
    assert!(pool_capacity(net("10.0.0.0/16"), 16384).is_ok());
    assert!(pool_capacity(net("10.0.0.0/16"), 16385).is_err());
}

#[test]
fn server_ref_reports_both_fields() {
    let err = server_ref("", "nope").unwrap_err();
    let fields: Vec<_> = err.as_slice().iter().map(|v| v.field).collect();
    assert_eq!(fields, vec![Field::RegionId, Field::SslVpnServerId]);
}
