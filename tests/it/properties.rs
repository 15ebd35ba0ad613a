//! Property tests of everything that parses input from outside: request
//! validation, the operation-id decoder, the emulator's parameter and
//! signature parsing, the policy globs and the tokens file. Each property
//! is "no panic, and nothing malformed is accepted". A few hundred cases
//! each keeps the whole file around a second; `cargo fuzz` (see fuzz/)
//! runs the same entry points for as long as one likes.

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use sslvpn_gateway::{
    access::policy::{Pattern, Policy},
    access::{TokenStore, tokens},
    cloud::{
        Credentials,
        endpoint::default_host,
        sign::{self, V1Input, V3Input},
    },
    emulator::{
        signature::{Claims, RequestView},
        wire::{self, Params},
    },
    operation::Operation,
    validate::{self, Choice, ModifyInput, RESERVED_PORTS},
};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        // No persistence files in the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Strings that are mostly near-valid: the interesting side of each rule.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z]{2,4}(-[a-z0-9]{1,6}){0,6}",
        "vss-[a-z0-9]{0,12}[A-Z./%-]?",
        "([0-9]{1,3}\\.){3}[0-9]{1,3}/[0-9]{1,2}",
        "(([0-9]{1,3}\\.){3}[0-9]{1,3}/[0-9]{1,2}, ?){1,3}",
        "(https?://)?[a-zA-Z0-9_ .-]{0,110}",
        "[ -~]{0,70}",
    ]
}

fn opt(s: impl Strategy<Value = String>) -> impl Strategy<Value = Option<String>> {
    prop::option::of(s)
}

proptest! {
    #![proptest_config(config())]

    /// Validation never panics, and what it accepts obeys every rule.
    #[test]
    fn validation_accepts_only_clean_values(
        region in field(),
        server in field(),
        token in field(),
        name in opt(field()),
        pool in opt(field()),
        subnet in opt(field()),
        proto in prop::option::of(prop_oneof![
            Just(Choice::Known(sslvpn_gateway::domain::Protocol::Tcp)),
            Just(Choice::Known(sslvpn_gateway::domain::Protocol::Udp)),
            any::<i32>().prop_map(Choice::Unknown),
        ]),
        cipher in prop::option::of(prop_oneof![
            Just(Choice::Known(sslvpn_gateway::domain::Cipher::Aes128Cbc)),
            Just(Choice::Known(sslvpn_gateway::domain::Cipher::None)),
            any::<i32>().prop_map(Choice::Unknown),
        ]),
        port in prop::option::of(prop_oneof![any::<i64>(), 0i64..70_000]),
        compress in any::<Option<bool>>(),
        mfa in any::<Option<bool>>(),
        idaas in opt(field()),
    ) {
        let input = ModifyInput {
            region_id: &region,
            ssl_vpn_server_id: &server,
            client_token: &token,
            name: name.as_deref(),
            client_ip_pool: pool.as_deref(),
            local_subnet: subnet.as_deref(),
            proto,
            cipher,
            port,
            compress,
            enable_multi_factor_auth: mfa,
            idaas_instance_id: idaas.as_deref(),
            idaas_region_id: idaas.as_deref(),
            idaas_application_id: idaas.as_deref(),
        };
        if let Ok(m) = validate::modification(&input) {
            prop_assert!(validate::region_id(m.region_id.as_str()).is_ok());
            prop_assert!(validate::ssl_vpn_server_id(&m.ssl_vpn_server_id).is_ok());
            if let Some(p) = m.changes.port {
                prop_assert!(p >= 1 && !RESERVED_PORTS.contains(&p));
            }
            if let Some(n) = &m.changes.name {
                prop_assert!(validate::name(n).is_ok());
            }
            for (_, value) in m.changes.to_api_params() {
                prop_assert!(!value.chars().any(char::is_control), "{value:?}");
            }
        }
    }

    /// A region id that passes can only ever name an aliyuncs.com host:
    /// no request steers the upstream endpoint.
    #[test]
    fn accepted_region_ids_cannot_steer_the_endpoint(region in field()) {
        if let Ok(region) = validate::region_id(&region) {
            let host = default_host(&region);
            let url = reqwest::Url::parse(&format!("https://{host}/")).unwrap();
            prop_assert_eq!(url.host_str(), Some(host.as_str()));
            let own = format!("vpc.{}.aliyuncs.com", region.as_str());
            prop_assert!(host == "vpc.aliyuncs.com" || host == own, "{}", host);
            prop_assert!(region.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        }
    }

    /// The operation-id decoder: arbitrary text, arbitrary bodies and
    /// arbitrary JSON never panic, and whatever decodes is re-validated.
    #[test]
    fn operation_ids_from_callers(
        text in any::<String>(),
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        json in json_value(),
    ) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        for id in [
            text.clone(),
            format!("op1.{text}"),
            format!("op1.{}", b64.encode(&bytes)),
            format!("op1.{}", b64.encode(json.to_string())),
        ] {
            if let Ok(op) = Operation::decode(&id) {
                prop_assert!(validate::region_id(op.region_id.as_str()).is_ok());
                prop_assert!(validate::ssl_vpn_server_id(&op.ssl_vpn_server_id).is_ok());
                prop_assert!(!op.changes.is_empty() && !op.vpn_gateway_id.is_empty());
            }
        }
    }

    /// Valid ids round-trip; damaged ones decode to a valid operation or
    /// are refused, never panic.
    #[test]
    fn operation_ids_round_trip_and_survive_damage(
        region in "[a-z]{2,3}-[a-z]{3,8}(-[0-9])?",
        server in "vss-[a-z0-9]{1,20}",
        port in 1u16..,
        at in any::<prop::sample::Index>(),
        replacement in any::<char>(),
    ) {
        let m = validate::modification(&ModifyInput {
            region_id: &region,
            ssl_vpn_server_id: &server,
            port: Some(i64::from(port)),
            ..ModifyInput::default()
        });
        prop_assume!(m.is_ok());
        let m = m.unwrap();
        let op = Operation {
            region_id: m.region_id,
            ssl_vpn_server_id: m.ssl_vpn_server_id,
            vpn_gateway_id: "vpn-x".into(),
            changes: m.changes,
            accepted_at_ms: 1_764_000_000_000,
            client_token: "t".into(),
        };
        let id = op.encode();
        let decoded = Operation::decode(&id);
        prop_assert_eq!(decoded.as_ref(), Ok(&op));
        let mut chars: Vec<char> = id.chars().collect();
        let i = at.index(chars.len());
        chars[i] = replacement;
        let damaged: String = chars.into_iter().collect();
        if let Ok(decoded) = Operation::decode(&damaged) {
            prop_assert!(validate::region_id(decoded.region_id.as_str()).is_ok());
            prop_assert!(validate::ssl_vpn_server_id(&decoded.ssl_vpn_server_id).is_ok());
        }
    }

    /// The emulator's parameter parser takes any bytes, and its canonical
    /// form parses back to the same parameters.
    #[test]
    fn emulator_parameters(raw in prop::collection::vec(any::<u8>(), 0..200),
                           pairs in prop::collection::vec((any::<String>(), any::<String>()), 0..8),
                           word in any::<String>()) {
        let parsed = Params::parse(&raw);
        let _ = parsed.canonical();
        let mut params = Params::default();
        for (name, value) in &pairs {
            params.push(name.clone(), value.clone());
        }
        let back = Params::parse(params.canonical().as_bytes());
        let nonempty = |p: &Params| {
            let mut f = p.fingerprint();
            // `=`-less empty pairs are dropped by design.
            f.retain(|(n, v)| !(n.is_empty() && v.is_empty()));
            f
        };
        prop_assert_eq!(nonempty(&back), nonempty(&params));
        let _ = wire::parse_bool(&word);
        let _ = wire::parse_timestamp(&word);
    }

    /// Arbitrary signature claims never panic and never verify.
    #[test]
    fn emulator_rejects_garbage_signatures(
        authorization in prop_oneof![
            "[ -~]{0,120}",
            "ACS3-HMAC-SHA256 Credential=[A-Za-z0-9.]{0,20},SignedHeaders=[a-z;-]{0,60},Signature=[0-9a-f]{0,64}",
        ],
        query in "[ -~]{0,200}",
        body in prop::collection::vec(any::<u8>(), 0..64),
        secret in "[ -~]{0,40}",
        v1 in any::<bool>(),
    ) {
        let mut headers = HeaderMap::new();
        for name in ["host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"] {
            headers.insert(name, HeaderValue::from_static("x"));
        }
        if !v1 && let Ok(value) = HeaderValue::from_str(&authorization) {
            headers.insert("authorization", value);
        }
        let query = Params::parse(query.as_bytes());
        let form = Params::default();
        let view = RequestView { method: "POST", query: &query, form: &form, headers: &headers, body: &body };
        if let Ok(claims) = Claims::read(&view) {
            prop_assert!(claims.verify(&view, &secret).is_err());
        }
    }

    /// A correctly signed request verifies; any change to a signed value,
    /// or another secret, does not.
    #[test]
    fn signed_requests_verify_and_tampered_ones_do_not(
        values in prop::collection::vec(("[A-Za-z]{1,12}", any::<String>()), 1..5),
        secret in "[ -~]{1,40}",
        other in "[ -~]{1,40}",
        token in prop::option::of("[A-Za-z0-9+/=.]{1,40}"),
        v1 in any::<bool>(),
        flip in any::<prop::sample::Index>(),
    ) {
        prop_assume!(secret != other);
        let mut credentials = Credentials::new("LTAI5tPROPERTY", &secret);
        if let Some(t) = &token {
            credentials = credentials.with_security_token(t.clone());
        }
        let params: Vec<(String, String)> = values;
        let date = sign::format_date(std::time::SystemTime::now());
        let nonce = sign::new_nonce();
        let (query, headers) = if v1 {
            let signed = sign::sign_v1(&V1Input {
                method: "GET",
                action: "DescribeVpnGateways",
                version: "2016-04-28",
                params: &params,
                date: &date,
                nonce: &nonce,
                format: "json",
            }, &credentials);
            (Params::parse(signed.url_query().as_bytes()), HeaderMap::new())
        } else {
            let extra = [("x-acs-action".to_owned(), "DescribeVpnGateways".to_owned()),
                         ("x-acs-version".to_owned(), "2016-04-28".to_owned())];
            let signed = sign::sign_v3(&V3Input {
                method: "GET",
                host: "vpc.cn-hangzhou.aliyuncs.com",
                path: "/",
                query: &params,
                headers: &extra,
                body: b"",
                date: &date,
                nonce: &nonce,
            }, &credentials);
            let mut headers = HeaderMap::new();
            for (name, value) in &signed.headers {
                headers.insert(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            (Params::parse(sign::canonical_query(&params).as_bytes()), headers)
        };
        let form = Params::default();
        let view = RequestView { method: "GET", query: &query, form: &form, headers: &headers, body: b"" };
        let claims = Claims::read(&view).unwrap();
        prop_assert!(claims.verify(&view, &secret).is_ok());
        prop_assert!(claims.verify(&view, &other).is_err());
        // Change one operation parameter's value.
        let (name, value) = &params[flip.index(params.len())];
        let mut tampered = Params::default();
        let mut done = false;
        for (n, v) in query.iter() {
            if !done && n == name && v == value {
                tampered.push(n, format!("{v}x"));
                done = true;
            } else {
                tampered.push(n, v);
            }
        }
        prop_assert!(done);
        let view = RequestView { query: &tampered, ..view };
        prop_assert!(claims.verify(&view, &secret).is_err());
    }

    /// The policy's glob matcher (`*` within a segment, `**` across) agrees
    /// with a naive reference, and policy
    /// documents of any shape never panic.
    #[test]
    fn policy_globs_and_documents(
        pattern in "[ab/*]{1,8}",
        text in "[ab/]{0,10}",
        doc in any::<String>(),
        json in json_value(),
    ) {
        let p = Pattern::new(&pattern).unwrap();
        prop_assert_eq!(p.matches(&text), naive(pattern.as_bytes(), text.as_bytes()));
        let _ = Policy::parse(&doc);
        let _ = Policy::parse(&json.to_string());
    }

    /// Tokens files and authorization headers of any shape never panic; a
    /// store verifies exactly its own tokens.
    #[test]
    fn tokens_files_and_headers(
        text in any::<String>(),
        header in prop::collection::vec(any::<u8>(), 0..80),
        tokens_in in prop::collection::vec("[!-~]{8,40}", 1..5),
        probe in "[!-~]{0,40}",
    ) {
        let _ = TokenStore::parse(&text);
        if let Some(token) = tokens::bearer(&header) {
            prop_assert!(!token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()));
        }
        let mut unique = tokens_in.clone();
        unique.sort();
        unique.dedup();
        let file: String = unique
            .iter()
            .enumerate()
            .map(|(i, t)| format!("id{i} sha256:{}\n", hex::encode(tokens::hash(t))))
            .collect();
        let store = TokenStore::parse(&file).unwrap();
        for (i, t) in unique.iter().enumerate() {
            let expected = format!("id{i}");
            let found = store.verify(t);
            prop_assert_eq!(found.as_deref(), Some(expected.as_str()));
        }
        prop_assert_eq!(store.verify(&probe).is_some(), unique.contains(&probe));
    }
}

/// The glob's meaning, written as directly as possible: `**` (any run of
/// stars but one) takes any run of text, `*` any run without a `/`.
fn naive(p: &[u8], t: &[u8]) -> bool {
    let stars = p.iter().take_while(|&&b| b == b'*').count();
    let rest = &p[stars..];
    match (stars, p.first()) {
        (0, None) => t.is_empty(),
        (0, Some(c)) => t.first() == Some(c) && naive(&p[1..], &t[1..]),
        (1, _) => (0..=t.len())
            .take_while(|&i| i == 0 || t[i - 1] != b'/')
            .any(|i| naive(rest, &t[i..])),
        _ => (0..=t.len()).any(|i| naive(rest, &t[i..])),
    }
}

/// Arbitrary JSON, biased towards the shapes the parsers expect.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        Just(json!("*")),
        Just(json!("cn-hangzhou")),
        Just(json!("vss-abc")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let keys = prop_oneof![
            Just("r".to_owned()),
            Just("s".to_owned()),
            Just("g".to_owned()),
            Just("c".to_owned()),
            Just("t".to_owned()),
            Just("k".to_owned()),
            Just("rules".to_owned()),
            Just("identities".to_owned()),
            Just("rpcs".to_owned()),
            Just("port".to_owned()),
            any::<String>(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
