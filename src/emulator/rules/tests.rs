//! The rules that need no state, one parameter at a time, at the document's
//! boundaries; and the emulator's independence from the gateway's code.

use super::*;

/// The answer to a request changing `params` of a well-formed server id.
fn check(params: &[(&str, &str)]) -> Result<Modification, (u16, String, String)> {
    let mut p = Params::default();
    for (k, v) in params {
        p.push(*k, *v);
    }
    modification(&p, "vss-hz1primary")
        .map_err(|e| (e.status.as_u16(), e.code.into_owned(), e.message))
}

fn code(params: &[(&str, &str)]) -> Option<String> {
    check(params).err().map(|(_, code, _)| code)
}

fn passes(params: &[(&str, &str)]) -> bool {
    check(params).is_ok()
}

#[test]
fn names_are_1_to_100_characters() {
    assert!(passes(&[("Name", "a")]));
    assert!(passes(&[("Name", &"n".repeat(100))]));
    // Characters, not bytes.
    assert!(passes(&[("Name", &"é".repeat(100))]));
    assert!(passes(&[("Name", "名前 with spaces_and-dashes.")]));
    for bad in [
        String::new(),
        "n".repeat(101),
        "http://a".into(),
        "https://".into(),
    ] {
        assert_eq!(
            check(&[("Name", &bad)]).unwrap_err(),
            (400, "InvalidName".into(), "The name is not valid".into()),
            "{bad:?}"
        );
    }
    // Only a prefix is refused.
    assert!(passes(&[("Name", "see http://x")]));
}

#[test]
fn client_pool_masks_are_16_to_29() {
    for ok in ["10.0.0.0/16", "10.0.0.0/29", " 192.168.0.0/24 "] {
        assert!(passes(&[("ClientIpPool", ok)]), "{ok}");
    }
    for bad in ["10.0.0.0/15", "10.0.0.0/30", "0.0.0.0/0", "10.0.0.1/32"] {
        let (status, code, message) = check(&[("ClientIpPool", bad)]).unwrap_err();
        assert_eq!(
            (status, code.as_str()),
            (400, "ClientIpPool.NetmaskInvalid"),
            "{bad}"
        );
        assert_eq!(
            message,
            "The netmask length of client IP pool must be greater than or equal to 16 and less than or equal to 29."
        );
    }
}

#[test]
fn client_pools_avoid_the_unsupported_ranges() {
    for bad in [
        "100.64.0.0/16",
        "100.127.255.248/29",
        "127.0.0.0/16",
        "169.254.0.0/16",
        "224.0.0.0/24",
        "239.255.0.0/16",
        "255.255.255.0/24",
    ] {
        assert_eq!(
            check(&[("ClientIpPool", bad)]).unwrap_err(),
            (
                400,
                "ClientIpPool.SubnetInvalid".into(),
                "The specified client IP pool cannot be used.".into()
            ),
            "{bad}"
        );
    }
    // Just outside them; public blocks are the caller's business.
    for ok in [
        "100.63.255.0/24",
        "100.128.0.0/16",
        "126.255.255.0/24",
        "128.0.0.0/16",
        "169.253.0.0/16",
        "169.255.0.0/16",
        "223.255.255.0/24",
        "240.0.0.0/16",
        "254.255.255.0/24",
        "47.98.0.0/16",
    ] {
        assert!(passes(&[("ClientIpPool", ok)]), "{ok}");
    }
}

#[test]
fn local_subnets_are_masks_8_to_32_outside_four_ranges() {
    for ok in [
        "10.0.0.0/8",
        "10.0.0.1/32",
        "10.0.0.0/24,10.1.0.0/16",
        "10.0.0.0/24 , 10.1.0.0/16",
        // The client pool's shared range is not refused here.
        "100.64.0.0/10",
    ] {
        assert!(passes(&[("LocalSubnet", ok)]), "{ok}");
    }
    for bad in [
        "10.0.0.0/7",
        "10.0.0.0/33",
        "127.0.0.1/32",
        "169.254.169.254/32",
        // Contains 169.254.0.0~169.254.255.255.
        "169.0.0.0/8",
        "224.0.0.0/8",
        "255.255.255.255/32",
        "10.0.0.0/24,",
        "10.0.0.0/24,,10.1.0.0/16",
        "",
        "10.0.0.0/24;10.1.0.0/16",
    ] {
        assert_eq!(
            code(&[("LocalSubnet", bad)]).as_deref(),
            Some("InvalidParameter.LocalSubnet"),
            "{bad:?}"
        );
    }
    let stored = check(&[("LocalSubnet", " 10.0.0.0/24 ,10.1.0.0/16")]).unwrap();
    assert_eq!(
        stored.changes.local_subnet.unwrap(),
        [
            "10.0.0.0/24".parse::<Ipv4Net>().unwrap(),
            "10.1.0.0/16".parse().unwrap()
        ]
    );
}

#[test]
fn a_cidr_block_has_one_spelling() {
    for bad in [
        "10.0.0.1/24",
        "010.0.0.0/24",
        "10.0.0.0/024",
        "10.0.0/24",
        "10.0.0.0.0/24",
        "10.0.0.256/32",
        "10.0.0.0",
        "10.0.0.0/",
        "10.0.0.0/+8",
        "a.b.c.d/24",
        "::1/128",
        "10.0.0.0 /24",
    ] {
        assert_eq!(
            code(&[("ClientIpPool", bad)]).as_deref(),
            Some("InvalidParameter.ClientIpPool"),
            "{bad:?}"
        );
    }
    let (_, _, message) = check(&[("ClientIpPool", "10.0.0.1/24")]).unwrap_err();
    assert!(message.contains("network address is 10.0.0.0"), "{message}");
}

#[test]
fn ports_are_1_to_65535_without_the_unsupported() {
    for ok in [
        "1",
        "1194",
        "65535",
        " 443 ".replace("443", "8443").as_str(),
    ] {
        assert!(passes(&[("Port", ok)]), "{ok}");
    }
    for p in [
        22, 2222, 22222, 9000, 9001, 9002, 7505, 80, 443, 53, 68, 123, 4510, 4560, 500, 4500,
    ] {
        assert_eq!(
            code(&[("Port", &p.to_string())]).as_deref(),
            Some("InvalidParameter.Port"),
            "{p}"
        );
    }
    // Their neighbours are fine.
    for p in [21, 23, 79, 81, 442, 444, 4499, 4501, 8999, 9003] {
        assert!(passes(&[("Port", &p.to_string())]), "{p}");
    }
    for bad in ["0", "65536", "-1"] {
        assert_eq!(
            code(&[("Port", bad)]).as_deref(),
            Some("SslVpnServerPort.Illegal"),
            "{bad}"
        );
    }
    for bad in ["", "1194.0", "0x4aa", "eleven", "99999999999"] {
        assert_eq!(
            code(&[("Port", bad)]).as_deref(),
            Some("InvalidParameter.Port"),
            "{bad:?}"
        );
    }
}

#[test]
fn enumerations_are_spelled_as_the_document_does() {
    for (proto, want) in [("TCP", Proto::Tcp), ("UDP", Proto::Udp)] {
        assert_eq!(
            check(&[("Proto", proto)]).unwrap().changes.proto,
            Some(want)
        );
        assert_eq!(want.as_wire(), proto);
    }
    for bad in ["tcp", "Udp", "SCTP", ""] {
        assert_eq!(
            code(&[("Proto", bad)]).as_deref(),
            Some("InvalidParameter.Proto")
        );
    }
    for c in ["AES-128-CBC", "AES-192-CBC", "AES-256-CBC", "none"] {
        let parsed = check(&[("Cipher", c)]).unwrap().changes.cipher.unwrap();
        assert_eq!(parsed.as_wire(), c);
    }
    for bad in ["aes-128-cbc", "None", "AES-256-GCM", ""] {
        assert_eq!(
            code(&[("Cipher", bad)]).as_deref(),
            Some("InvalidParameter.Cipher")
        );
    }
    assert_eq!(
        check(&[("Compress", "False")]).unwrap().changes.compress,
        Some(false)
    );
    assert_eq!(
        code(&[("Compress", "0")]).as_deref(),
        Some("InvalidParameter.Compress")
    );
}

#[test]
fn enabling_two_factor_authentication_names_the_instance_and_its_region() {
    let (status, code, message) = check(&[("EnableMultiFactorAuth", "true")]).unwrap_err();
    assert_eq!(
        (status, code.as_str()),
        (400, "MissingParameter.IDaaSInstanceId")
    );
    assert_eq!(
        message,
        "The input parameter IDaaSInstanceId is mandatory when enable multi-factor authentication."
    );
    // Empty is not given.
    assert_eq!(
        check(&[
            ("EnableMultiFactorAuth", "true"),
            ("IDaaSInstanceId", "idaas-x"),
            ("IDaaSRegionId", ""),
        ])
        .unwrap_err()
        .1,
        "MissingParam.IDaaSRegionId"
    );
    // The application is the instance's business (EIAM 2.0 only).
    assert!(passes(&[
        ("EnableMultiFactorAuth", "true"),
        ("IDaaSInstanceId", "idaas-x"),
        ("IDaaSRegionId", "cn-hangzhou"),
    ]));
    // Disabling needs nothing.
    assert!(passes(&[("EnableMultiFactorAuth", "false")]));
}

#[test]
fn a_request_must_change_something() {
    for params in [
        &[][..],
        &[("ClientToken", "t")],
        &[("IDaaSInstanceId", "")],
        &[("DryRun", "true")],
    ] {
        assert_eq!(
            code(params).as_deref(),
            Some("MissingParameter"),
            "{params:?}"
        );
    }
    let only_name = check(&[("Name", "n"), ("ClientToken", "t")]).unwrap();
    assert!(only_name.changes.is_name_only());
    assert_eq!(only_name.client_token.as_deref(), Some("t"));
    assert!(
        !check(&[("Name", "n"), ("Port", "1195")])
            .unwrap()
            .changes
            .is_name_only()
    );
    assert!(!check(&[("Port", "1195")]).unwrap().changes.is_name_only());
}

#[test]
fn server_ids_have_the_clouds_shape() {
    for ok in ["vss-a", "vss-bp18q7hzj6largv4v1234"] {
        assert!(is_server_id(ok), "{ok}");
    }
    for bad in [
        "vss-", "vpn-abc", "VSS-abc", "vss-ABC", "vss-a_b", "vss-a-b", " vss-a",
    ] {
        assert!(!is_server_id(bad), "{bad}");
    }
    let mut p = Params::default();
    p.push("Port", "1195");
    assert_eq!(
        modification(&p, "vss-Bad").unwrap_err().code,
        "InvalidParameter.SslVpnServerId"
    );
}

#[test]
fn blocks_overlap_when_they_share_an_address() {
    let net = |s: &str| s.parse::<Ipv4Net>().unwrap();
    assert!(overlap(net("10.0.0.0/16"), net("10.0.255.0/24")));
    assert!(overlap(net("10.0.255.0/24"), net("10.0.0.0/16")));
    assert!(overlap(net("10.0.0.0/24"), net("10.0.0.0/24")));
    assert!(!overlap(net("10.0.0.0/24"), net("10.0.1.0/24")));
    assert!(!overlap(net("10.0.1.0/24"), net("10.0.0.0/24")));
}
