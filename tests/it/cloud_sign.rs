//! The signer against the requests the official SDK put on the wire
//! (alibaba-openapi-wire.md §2): every signature, and for the first request
//! the canonical request and the string to sign, must come out byte for
//! byte. The captured blocks are pasted verbatim and parsed here, so the
//! inputs are exactly what the SDK sent.

use sslvpn_gateway::cloud::{
    Credentials,
    sign::{self, V1Input, V3Input},
};

use crate::support::wire::decode_query;

const AK: &str = "LTAI5tFAKEACCESSKEYID";
const SECRET: &str = "FakeSecret0123456789abcdefABCDEF";
const STS_TOKEN: &str = "CAIS.FAKE+STS/Token==";

fn ak() -> Credentials {
    Credentials::new(AK, SECRET)
}

fn sts() -> Credentials {
    Credentials::new(AK, SECRET).with_security_token(STS_TOKEN)
}

/// A captured request: method, decoded query, headers, body.
struct Captured {
    method: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: String,
}

impl Captured {
    fn parse(block: &str) -> Self {
        let (head, body) = block.split_once("\n\n").unwrap_or((block, ""));
        let mut lines = head.lines();
        let request_line = lines.next().unwrap();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap().to_owned();
        let target = parts.next().unwrap();
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let headers = lines
            .map(|l| {
                let (k, v) = l.split_once(": ").unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect();
        Self {
            method,
            query: decode_query(query),
            headers,
            body: body.trim_end_matches('\n').to_owned(),
        }
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no header {name}"))
    }

    fn param(&self, name: &str) -> &str {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no parameter {name}"))
    }
}

/// Signs a captured V3 request with the same inputs and returns the result
/// with the captured Authorization header.
fn resign_v3(block: &str, credentials: &Credentials) -> (sign::V3Signed, String) {
    let req = Captured::parse(block);
    let authorization = req.header("Authorization").to_owned();
    let signed_list = authorization
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap();
    // The headers the signer adds itself are left out of its input.
    let added = [
        "host",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
        "x-acs-accesskey-id",
        "x-acs-security-token",
    ];
    let extra: Vec<(String, String)> = signed_list
        .split(';')
        .filter(|h| !added.contains(h))
        .map(|h| (h.to_owned(), req.header(h).to_owned()))
        .collect();
    let signed = sign::sign_v3(
        &V3Input {
            method: &req.method,
            host: req.header("host"),
            path: "/",
            query: &req.query,
            headers: &extra,
            body: req.body.as_bytes(),
            date: req.header("x-acs-date"),
            nonce: req.header("x-acs-signature-nonce"),
        },
        credentials,
    );
    assert_eq!(
        signed
            .headers
            .iter()
            .find(|(k, _)| k == "x-acs-content-sha256")
            .map(|(_, v)| v.as_str()),
        Some(req.header("x-acs-content-sha256")),
        "payload hash"
    );
    (signed, authorization)
}

const V1_COMMON: [&str; 10] = [
    "Action",
    "Format",
    "Version",
    "Timestamp",
    "SignatureNonce",
    "SignatureMethod",
    "SignatureVersion",
    "AccessKeyId",
    "SecurityToken",
    "Signature",
];

/// Signs a captured V1 request from its operation parameters (plus any form
/// body) and checks the signer added exactly the captured common ones.
fn resign_v1(block: &str, credentials: &Credentials) -> (sign::V1Signed, String) {
    let req = Captured::parse(block);
    let mut params: Vec<(String, String)> = req
        .query
        .iter()
        .filter(|(k, _)| !V1_COMMON.contains(&k.as_str()))
        .cloned()
        .collect();
    params.extend(decode_query(&req.body));
    let signed = sign::sign_v1(
        &V1Input {
            method: &req.method,
            action: req.param("Action"),
            version: req.param("Version"),
            params: &params,
            date: req.param("Timestamp"),
            nonce: req.param("SignatureNonce"),
            format: req.param("Format"),
        },
        credentials,
    );
    let mut sent: Vec<(String, String)> = req
        .query
        .iter()
        .filter(|(k, _)| k != "Signature")
        .cloned()
        .chain(decode_query(&req.body))
        .collect();
    sent.sort();
    assert_eq!(signed.params, sent, "signed parameter set");
    (signed, req.param("Signature").to_owned())
}

const V3_MODIFY: &str = "POST /?Cipher=AES-128-CBC&ClientIpPool=10.10.0.0%2F24&ClientToken=02fb3da4-130e-11e9-8e44-001%2A%2A%2A%2A&Compress=False&LocalSubnet=192.168.0.0%2F24%2C172.16.1.0%2F24&Name=sslvpn+test~%2F%C3%A4&Port=1194&Proto=UDP&RegionId=cn-hangzhou&SslVpnServerId=vss-bp18q7hzj6largv4v%2A%2A%2A%2A HTTP/1.1
Accept-Encoding: identity
host: 127.0.0.1:18080
x-acs-version: 2016-04-28
x-acs-action: ModifySslVpnServer
user-agent: AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2
x-acs-date: 2026-11-25T18:02:52Z
x-acs-signature-nonce: b58c21b11619bcb8bfdc6c9465362c6b
accept: application/json
x-acs-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
x-acs-credentials-provider: static_ak
Authorization: ACS3-HMAC-SHA256 Credential=LTAI5tFAKEACCESSKEYID,SignedHeaders=accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=3ce19c2932d4c3f89f5977daa3f86a750ffb61dd244d6749439e2f496a5f7e5b
Content-Length: 0
";

const V3_MODIFY_CANONICAL: &str = "POST
/
Cipher=AES-128-CBC&ClientIpPool=10.10.0.0%2F24&ClientToken=02fb3da4-130e-11e9-8e44-001%2A%2A%2A%2A&Compress=False&LocalSubnet=192.168.0.0%2F24%2C172.16.1.0%2F24&Name=sslvpn%20test~%2F%C3%A4&Port=1194&Proto=UDP&RegionId=cn-hangzhou&SslVpnServerId=vss-bp18q7hzj6largv4v%2A%2A%2A%2A
accept:application/json
host:127.0.0.1:18080
user-agent:AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2
x-acs-action:ModifySslVpnServer
x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
x-acs-credentials-provider:static_ak
x-acs-date:2026-11-25T18:02:52Z
x-acs-signature-nonce:b58c21b11619bcb8bfdc6c9465362c6b
x-acs-version:2016-04-28

accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version
e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const V3_DESCRIBE_GATEWAY: &str = "POST /?RegionId=cn-hangzhou&VpnGatewayId=vpn-bp1q8bgx4xnkm2ogj%2A%2A%2A%2A HTTP/1.1
Accept-Encoding: identity
host: 127.0.0.1:18080
x-acs-version: 2016-04-28
x-acs-action: DescribeVpnGateway
user-agent: AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2
x-acs-date: 2026-11-25T18:02:53Z
x-acs-signature-nonce: c323f701ee389c24d2b0cda1199888cc
accept: application/json
x-acs-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
x-acs-credentials-provider: static_ak
Authorization: ACS3-HMAC-SHA256 Credential=LTAI5tFAKEACCESSKEYID,SignedHeaders=accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=2354f4a8c794e6be2bcf61969ec05e3bb25dd451f4ea2e53137a7d23d1d3b4ef
Content-Length: 0
";

const V3_DESCRIBE_GATEWAYS: &str = "POST /?PageNumber=1&PageSize=50&RegionId=cn-hangzhou&Tag.1.Key=env&Tag.1.Value=test&VpnGatewayId=vpn-bp1q8bgx4xnkm2ogj%2A%2A%2A%2A HTTP/1.1
Accept-Encoding: identity
host: 127.0.0.1:18080
x-acs-version: 2016-04-28
x-acs-action: DescribeVpnGateways
user-agent: AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2
x-acs-date: 2026-11-25T18:02:53Z
x-acs-signature-nonce: ab3d48a130f957eefd0cc1f2c3cc2607
accept: application/json
x-acs-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
x-acs-credentials-provider: static_ak
Authorization: ACS3-HMAC-SHA256 Credential=LTAI5tFAKEACCESSKEYID,SignedHeaders=accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=c16389db31b7f642c56611b2cef84df082a932d640b06ccb9ecfc3bf23b3d195
Content-Length: 0
";

const V3_DESCRIBE_SERVERS: &str = "POST /?PageNumber=1&PageSize=50&RegionId=cn-hangzhou&VpnGatewayId=vpn-bp1q8bgx4xnkm2ogj%2A%2A%2A%2A HTTP/1.1
Accept-Encoding: identity
host: 127.0.0.1:18080
x-acs-version: 2016-04-28
x-acs-action: DescribeSslVpnServers
user-agent: AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2
x-acs-date: 2026-11-25T18:02:54Z
x-acs-signature-nonce: 5f50162e498b481ce64e7d4f42d16a85
accept: application/json
x-acs-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
x-acs-credentials-provider: static_ak
Authorization: ACS3-HMAC-SHA256 Credential=LTAI5tFAKEACCESSKEYID,SignedHeaders=accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=622f7f6aa2b834174b65077b69156bc28c4cc5b4c9693f29cbb55cac28be89cb
Content-Length: 0
";

const V3_STS: &str = "POST /?RegionId=cn-hangzhou&VpnGatewayId=vpn-bp1q8bgx4xnkm2ogj%2A%2A%2A%2A HTTP/1.1
Accept-Encoding: identity
host: 127.0.0.1:18080
x-acs-version: 2016-04-28
x-acs-action: DescribeVpnGateway
user-agent: AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2
x-acs-date: 2026-11-25T18:06:37Z
x-acs-signature-nonce: 694b4108cc4725cf7ae6f1143b344f63
accept: application/json
x-acs-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
x-acs-credentials-provider: static_sts
x-acs-accesskey-id: LTAI5tFAKEACCESSKEYID
x-acs-security-token: CAIS.FAKE+STS/Token==
Authorization: ACS3-HMAC-SHA256 Credential=LTAI5tFAKEACCESSKEYID,SignedHeaders=accept;host;user-agent;x-acs-accesskey-id;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-security-token;x-acs-signature-nonce;x-acs-version,Signature=d179d84854c3e53fd2cbfa70bf19160010a3df744b61a178c72b112c62bc5116
Content-Length: 0
";

const V3_FORM_BODY: &str = "POST /?RegionId=cn-hangzhou&SslVpnServerId=vss-bp18q7hzj6largv4v%2A%2A%2A%2A HTTP/1.1
Accept-Encoding: identity
host: 127.0.0.1:18080
x-acs-version: 2016-04-28
x-acs-action: ModifySslVpnServer
user-agent: AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2
x-acs-date: 2026-11-25T18:03:26Z
x-acs-signature-nonce: 4fac7a12a0ed89ad831e007a886f8a1b
accept: application/json
content-type: application/x-www-form-urlencoded
x-acs-content-sha256: 9a890038d88f172f8ac53768f355e66fcb26e1f405731119eb2e5fb601a40be9
x-acs-credentials-provider: static_ak
Authorization: ACS3-HMAC-SHA256 Credential=LTAI5tFAKEACCESSKEYID,SignedHeaders=accept;content-type;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=8446a1082d4218585101c33ea19d4132352e47666ffe2b31b8924b525e6a2e3c
Content-Length: 63

LocalSubnet=192.168.0.0%2F24%2C172.16.1.0%2F24&Name=sslvpn+test
";

const V1_MODIFY: &str = "POST /?Action=ModifySslVpnServer&Format=json&Version=2016-04-28&Timestamp=2026-11-25T18%3A02%3A54Z&SignatureNonce=f2584fa2b16c66368d07030196512e75&Cipher=AES-128-CBC&ClientIpPool=10.10.0.0%2F24&ClientToken=02fb3da4-130e-11e9-8e44-001%2A%2A%2A%2A&Compress=False&LocalSubnet=192.168.0.0%2F24%2C172.16.1.0%2F24&Name=sslvpn+test~%2F%C3%A4&Port=1194&Proto=UDP&RegionId=cn-hangzhou&SslVpnServerId=vss-bp18q7hzj6largv4v%2A%2A%2A%2A&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&AccessKeyId=LTAI5tFAKEACCESSKEYID&Signature=1Js3KPVHlu6BXcyyjWZYryQWu64%3D HTTP/1.1
host: 127.0.0.1:18080
";

const V1_MODIFY_STRING_TO_SIGN: &str = "POST&%2F&AccessKeyId%3DLTAI5tFAKEACCESSKEYID%26Action%3DModifySslVpnServer%26Cipher%3DAES-128-CBC%26ClientIpPool%3D10.10.0.0%252F24%26ClientToken%3D02fb3da4-130e-11e9-8e44-001%252A%252A%252A%252A%26Compress%3DFalse%26Format%3Djson%26LocalSubnet%3D192.168.0.0%252F24%252C172.16.1.0%252F24%26Name%3Dsslvpn%2520test~%252F%25C3%25A4%26Port%3D1194%26Proto%3DUDP%26RegionId%3Dcn-hangzhou%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3Df2584fa2b16c66368d07030196512e75%26SignatureVersion%3D1.0%26SslVpnServerId%3Dvss-bp18q7hzj6largv4v%252A%252A%252A%252A%26Timestamp%3D2026-11-25T18%253A02%253A54Z%26Version%3D2016-04-28";

const V1_DESCRIBE_GATEWAY: &str = "POST /?Action=DescribeVpnGateway&Format=json&Version=2016-04-28&Timestamp=2026-11-25T18%3A02%3A55Z&SignatureNonce=1d8ec8c86810975420b5167f7793eb39&RegionId=cn-hangzhou&VpnGatewayId=vpn-bp1q8bgx4xnkm2ogj%2A%2A%2A%2A&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&AccessKeyId=LTAI5tFAKEACCESSKEYID&Signature=nBTVFHZm1BvJeapPKcgOALbSrr4%3D HTTP/1.1
host: 127.0.0.1:18080
";

const V1_DESCRIBE_GATEWAYS: &str = "POST /?Action=DescribeVpnGateways&Format=json&Version=2016-04-28&Timestamp=2026-11-25T18%3A02%3A55Z&SignatureNonce=0c07ea6cd4c03b1521c60106998a1681&PageNumber=1&PageSize=50&RegionId=cn-hangzhou&Tag.1.Key=env&Tag.1.Value=test&VpnGatewayId=vpn-bp1q8bgx4xnkm2ogj%2A%2A%2A%2A&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&AccessKeyId=LTAI5tFAKEACCESSKEYID&Signature=5dzviGREopPduy3G5Gsz7lQr2R8%3D HTTP/1.1
host: 127.0.0.1:18080
";

const V1_DESCRIBE_SERVERS: &str = "POST /?Action=DescribeSslVpnServers&Format=json&Version=2016-04-28&Timestamp=2026-11-25T18%3A02%3A55Z&SignatureNonce=26134f43f6ece7464ea9ee5def49f77a&PageNumber=1&PageSize=50&RegionId=cn-hangzhou&VpnGatewayId=vpn-bp1q8bgx4xnkm2ogj%2A%2A%2A%2A&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&AccessKeyId=LTAI5tFAKEACCESSKEYID&Signature=2CI8umPNAmJ%2BNVYwiqW6rDGqKOk%3D HTTP/1.1
host: 127.0.0.1:18080
";

const V1_STS: &str = "POST /?Action=DescribeVpnGateway&Format=json&Version=2016-04-28&Timestamp=2026-11-25T18%3A06%3A38Z&SignatureNonce=6a8bbc0d9baca2f23bdcca92cdbfe87c&RegionId=cn-hangzhou&VpnGatewayId=vpn-bp1q8bgx4xnkm2ogj%2A%2A%2A%2A&SecurityToken=CAIS.FAKE%2BSTS%2FToken%3D%3D&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&AccessKeyId=LTAI5tFAKEACCESSKEYID&Signature=VL%2BXaUHAfbjAm2GHRjeUl%2BaGoZ4%3D HTTP/1.1
host: 127.0.0.1:18080
";

const V1_FORM_BODY: &str = "POST /?Action=ModifySslVpnServer&Format=json&Version=2016-04-28&Timestamp=2026-11-25T18%3A03%3A27Z&SignatureNonce=c0dc58c3aaa6e0131be9a6fb581c544c&RegionId=cn-hangzhou&SslVpnServerId=vss-bp18q7hzj6largv4v%2A%2A%2A%2A&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&AccessKeyId=LTAI5tFAKEACCESSKEYID&Signature=%2BX5AICEOgzm76PUfa8qpvgX8vV8%3D HTTP/1.1
host: 127.0.0.1:18080
content-type: application/x-www-form-urlencoded

LocalSubnet=192.168.0.0%2F24%2C172.16.1.0%2F24&Name=sslvpn+test
";

/// The legacy SDK: `Format=JSON`, an empty `SignatureType`, `Name` encoded
/// with `%20`.
const V1_LEGACY_SDK: &str = "POST /?SslVpnServerId=vss-x&Name=a%20b&Compress=False&Version=2016-04-28&Action=ModifySslVpnServer&Format=JSON&RegionId=cn-hangzhou&Timestamp=2026-11-25T18%3A05%3A31Z&SignatureMethod=HMAC-SHA1&SignatureType=&SignatureVersion=1.0&SignatureNonce=16beb9892c64eb97333178536aa3aeb1&AccessKeyId=LTAI5tFAKEACCESSKEYID&Signature=fiMFPr11lilvWYOrJS%2Bc17giw%2Fk%3D HTTP/1.1
Host: 127.0.0.1:18080
";

#[test]
fn v3_modify_matches_canonical_request_string_to_sign_and_signature() {
    let (signed, authorization) = resign_v3(V3_MODIFY, &ak());
    assert_eq!(signed.canonical_request, V3_MODIFY_CANONICAL);
    assert_eq!(
        signed.string_to_sign,
        "ACS3-HMAC-SHA256\n5be792f3a20eb4cc7f7c6c088ceb3b225c2f9f8788efa9c88c558bc0ad2fc027"
    );
    assert_eq!(
        signed.signature,
        "3ce19c2932d4c3f89f5977daa3f86a750ffb61dd244d6749439e2f496a5f7e5b"
    );
    let sent = signed
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap();
    assert_eq!(sent.1, authorization);
}

#[test]
fn v3_describe_requests_match() {
    for block in [
        V3_DESCRIBE_GATEWAY,
        V3_DESCRIBE_GATEWAYS,
        V3_DESCRIBE_SERVERS,
    ] {
        let (signed, authorization) = resign_v3(block, &ak());
        let sent = signed
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap();
        assert_eq!(sent.1, authorization, "{}", block.lines().next().unwrap());
    }
}

#[test]
fn v3_sts_signs_the_token_and_key_id_headers() {
    let (signed, authorization) = resign_v3(V3_STS, &sts());
    let header = |name: &str| {
        signed
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("x-acs-security-token"), Some(STS_TOKEN));
    assert_eq!(header("x-acs-accesskey-id"), Some(AK));
    assert_eq!(header("authorization"), Some(authorization.as_str()));
}

#[test]
fn v3_form_body_is_covered_by_the_payload_hash_only() {
    let (signed, authorization) = resign_v3(V3_FORM_BODY, &ak());
    assert!(!signed.canonical_query.contains("Name"));
    let sent = signed
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap();
    assert_eq!(sent.1, authorization);
}

#[test]
fn v1_modify_matches_string_to_sign_and_signature() {
    let (signed, signature) = resign_v1(V1_MODIFY, &ak());
    assert_eq!(signed.string_to_sign, V1_MODIFY_STRING_TO_SIGN);
    assert_eq!(signed.signature, signature);
    assert_eq!(signed.signature, "1Js3KPVHlu6BXcyyjWZYryQWu64=");
    // What the client sends decodes to exactly the signed set plus Signature.
    let mut sent = decode_query(&signed.url_query());
    sent.sort();
    let mut expected = signed.params.clone();
    expected.push(("Signature".into(), signature));
    expected.sort();
    assert_eq!(sent, expected);
}

#[test]
fn v1_describe_sts_form_and_legacy_requests_match() {
    for (block, creds) in [
        (V1_DESCRIBE_GATEWAY, ak()),
        (V1_DESCRIBE_GATEWAYS, ak()),
        (V1_DESCRIBE_SERVERS, ak()),
        (V1_STS, sts()),
        (V1_FORM_BODY, ak()),
        (V1_LEGACY_SDK, ak()),
    ] {
        let (signed, signature) = resign_v1(block, &creds);
        assert_eq!(
            signed.signature,
            signature,
            "{}",
            block.lines().next().unwrap()
        );
    }
}

#[test]
fn a_wrong_secret_or_changed_parameter_changes_the_signature() {
    let (good, _) = resign_v3(V3_DESCRIBE_GATEWAY, &ak());
    let (bad, _) = resign_v3(V3_DESCRIBE_GATEWAY, &Credentials::new(AK, "other"));
    assert_ne!(good.signature, bad.signature);
    let tampered = V3_DESCRIBE_GATEWAY.replace("RegionId=cn-hangzhou", "RegionId=cn-beijing");
    let (changed, authorization) = resign_v3(&tampered, &ak());
    let sent = changed
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap();
    assert_ne!(sent.1, authorization);
}
