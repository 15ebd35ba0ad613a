//! Every rule of the ModifySslVpnServer API document, as pure functions.
//!
//! Nothing leaves the building unless it passes here, and a caller learns of
//! every broken rule in one answer, each with the code the cloud itself would
//! have answered (or `InvalidParameter.<ApiParameter>` where the document
//! names none). The emulator has rules of its own, written from the same
//! document and sharing no code with these, so that each checks the other.
//!
//! Deliberate choices where the document is silent:
//! - a reserved range is refused when the block *overlaps* it (a block that
//!   contains reserved addresses cannot be used either);
//! - CIDRs must be network addresses (`10.0.0.1/24` is refused, as Terraform
//!   does), and local-subnet entries may have spaces around the commas;
//! - the `http://`/`https://` name prefix is matched case-insensitively.

use std::fmt;

use ipnet::Ipv4Net;

use crate::domain::{Changes, Cipher, Field, Modification, Protocol, RegionId};

/// The cloud's error codes for the rules below.
pub mod code {
    pub const INVALID_NAME: &str = "InvalidName";
    pub const CLIENT_IP_POOL_NETMASK_INVALID: &str = "ClientIpPool.NetmaskInvalid";
    pub const CLIENT_IP_POOL_SUBNET_INVALID: &str = "ClientIpPool.SubnetInvalid";
    pub const IP_CONFLICT: &str = "IpConflict";
    pub const PORT_ILLEGAL: &str = "SslVpnServerPort.Illegal";
    pub const MISSING_IDAAS_INSTANCE_ID: &str = "MissingParameter.IDaaSInstanceId";
    pub const MISSING_IDAAS_REGION_ID: &str = "MissingParam.IDaaSRegionId";
    pub const MISSING_PARAMETER: &str = "MissingParameter";
}

/// Mask lengths the document allows for the client pool and local subnets.
const CLIENT_POOL_PREFIX: std::ops::RangeInclusive<u8> = 16..=29;
const LOCAL_SUBNET_PREFIX: std::ops::RangeInclusive<u8> = 8..=32;

/// Ranges a client pool may not touch.
const CLIENT_POOL_RESERVED: [&str; 5] = [
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "224.0.0.0/4",
    "255.0.0.0/8",
];
/// Ranges a local subnet may not touch.
const LOCAL_SUBNET_RESERVED: [&str; 4] = [
    "127.0.0.0/8",
    "169.254.0.0/16",
    "224.0.0.0/4",
    "255.0.0.0/8",
];

/// Ports the cloud refuses for an SSL server.
pub const RESERVED_PORTS: [u16; 16] = [
    22, 2222, 22222, 9000, 9001, 9002, 7505, 80, 443, 53, 68, 123, 4510, 4560, 500, 4500,
];

const MAX_NAME_CHARS: usize = 100;
const MAX_CLIENT_TOKEN_LEN: usize = 64;
const MAX_REGION_ID_LEN: usize = 64;
const MAX_SERVER_ID_LEN: usize = 64;
const MAX_IDAAS_ID_LEN: usize = 128;
/// Each SSL-VPN client consumes a /30: four addresses.
pub const ADDRESSES_PER_CONNECTION: u64 = 4;

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: Field,
    /// The cloud's error code for it.
    pub code: String,
    /// What is wrong, for a person.
    pub description: String,
}

impl Violation {
    pub fn new(field: Field, code: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field,
            code: code.into(),
            description: description.into(),
        }
    }

    /// `InvalidParameter.<ApiParameter>`: for rules the document gives no code.
    fn invalid(field: Field, description: impl Into<String>) -> Self {
        Self::new(
            field,
            format!("InvalidParameter.{}", field.api_name()),
            description,
        )
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({})",
            self.field.proto_name(),
            self.description,
            self.code
        )
    }
}

/// Every broken rule of one request, in field order. Never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violations(Vec<Violation>);

impl Violations {
    pub fn as_slice(&self) -> &[Violation] {
        &self.0
    }

    /// The first violation: the one the cloud would have answered.
    pub fn first(&self) -> &Violation {
        // Constructed only from a non-empty list (see `check`).
        &self.0[0]
    }

    /// `Err` with the list when any rule was broken.
    pub fn check(list: Vec<Violation>) -> Result<(), Violations> {
        if list.is_empty() {
            Ok(())
        } else {
            Err(Violations(list))
        }
    }
}

impl From<Violation> for Violations {
    fn from(v: Violation) -> Self {
        Violations(vec![v])
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

/// An enum field as the contract carried it: a value this version knows, or
/// a number it does not define (which validation refuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice<T> {
    Known(T),
    Unknown(i32),
}

/// A ModifySslVpnServer request before validation: strings and numbers as
/// the caller sent them, enums typed, absent fields as `None`.
#[derive(Clone, Debug, Default)]
pub struct ModifyInput<'a> {
    pub region_id: &'a str,
    pub ssl_vpn_server_id: &'a str,
    /// Empty means "none given".
    pub client_token: &'a str,
    pub name: Option<&'a str>,
    pub client_ip_pool: Option<&'a str>,
    pub local_subnet: Option<&'a str>,
    pub proto: Option<Choice<Protocol>>,
    pub cipher: Option<Choice<Cipher>>,
    pub port: Option<i64>,
    pub compress: Option<bool>,
    pub enable_multi_factor_auth: Option<bool>,
    pub idaas_instance_id: Option<&'a str>,
    pub idaas_region_id: Option<&'a str>,
    pub idaas_application_id: Option<&'a str>,
}

/// Checks a whole modify request and returns it in domain form, or every
/// violation at once.
pub fn modification<'a>(input: &ModifyInput<'a>) -> Result<Modification, Violations> {
    // An empty IDaaS id is no id: enabling two-factor authentication
    // without one gets the cloud's MissingParam code, not a format error.
    let given = |v: Option<&'a str>| v.filter(|v| !v.is_empty());
    let input = &ModifyInput {
        idaas_instance_id: given(input.idaas_instance_id),
        idaas_region_id: given(input.idaas_region_id),
        idaas_application_id: given(input.idaas_application_id),
        ..input.clone()
    };
    let mut violations = Vec::new();
    let out = &mut violations;

    let region = keep(out, region_id(input.region_id));
    let server = keep(
        out,
        ssl_vpn_server_id(input.ssl_vpn_server_id).map(str::to_owned),
    );
    let token = keep(out, client_token(input.client_token));
    let changes = Changes {
        name: input
            .name
            .and_then(|n| keep(out, name(n).map(str::to_owned))),
        client_ip_pool: input
            .client_ip_pool
            .and_then(|p| keep(out, client_ip_pool(p))),
        local_subnet: input
            .local_subnet
            .and_then(|list| local_subnet(list).map_err(|list| out.extend(list)).ok()),
        proto: input.proto.and_then(|p| match p {
            Choice::Known(p) => Some(p),
            Choice::Unknown(n) => keep(
                out,
                Err(Violation::invalid(
                    Field::Proto,
                    format!("unknown protocol number {n}: TCP or UDP"),
                )),
            ),
        }),
        cipher: input.cipher.and_then(|c| match c {
            Choice::Known(c) => Some(c),
            Choice::Unknown(n) => keep(
                out,
                Err(Violation::invalid(
                    Field::Cipher,
                    format!(
                        "unknown cipher number {n}: AES-128-CBC, AES-192-CBC, AES-256-CBC or none"
                    ),
                )),
            ),
        }),
        port: input.port.and_then(|p| keep(out, port(p))),
        compress: input.compress,
        enable_multi_factor_auth: input.enable_multi_factor_auth,
        idaas_instance_id: input
            .idaas_instance_id
            .and_then(|v| keep(out, idaas_id(Field::IdaasInstanceId, v).map(str::to_owned))),
        idaas_region_id: input.idaas_region_id.and_then(|v| {
            keep(
                out,
                region_id(v).map(|r| r.as_str().to_owned()).map_err(|_| {
                    Violation::invalid(
                        Field::IdaasRegionId,
                        "idaas_region_id must be a region id such as cn-hangzhou",
                    )
                }),
            )
        }),
        idaas_application_id: input.idaas_application_id.and_then(|v| {
            keep(
                out,
                idaas_id(Field::IdaasApplicationId, v).map(str::to_owned),
            )
        }),
    };
    if let (Some(pool), Some(subnets)) = (changes.client_ip_pool, &changes.local_subnet) {
        violations.extend(ip_conflict(pool, subnets).err());
    }
    violations.extend(multi_factor_auth(input));
    if !any_field_set(input) {
        violations.push(Violation::new(
            Field::Request,
            code::MISSING_PARAMETER,
            "the request changes nothing: set at least one of name, client_ip_pool, \
             local_subnet, proto, cipher, port, compress, enable_multi_factor_auth, \
             idaas_instance_id, idaas_region_id, idaas_application_id",
        ));
    }

    Violations::check(violations)?;
    match (region, server) {
        (Some(region_id), Some(ssl_vpn_server_id)) => Ok(Modification {
            region_id,
            ssl_vpn_server_id,
            client_token: token.flatten(),
            changes,
            dry_run: false,
        }),
        // Unreachable: a missing value always left a violation behind.
        _ => Err(Violation::invalid(Field::RegionId, "invalid request").into()),
    }
}

/// Records a violation and goes on, so every rule gets its say.
fn keep<T>(violations: &mut Vec<Violation>, result: Result<T, Violation>) -> Option<T> {
    result.map_err(|v| violations.push(v)).ok()
}

fn any_field_set(input: &ModifyInput<'_>) -> bool {
    input.name.is_some()
        || input.client_ip_pool.is_some()
        || input.local_subnet.is_some()
        || input.proto.is_some()
        || input.cipher.is_some()
        || input.port.is_some()
        || input.compress.is_some()
        || input.enable_multi_factor_auth.is_some()
        || input.idaas_instance_id.is_some()
        || input.idaas_region_id.is_some()
        || input.idaas_application_id.is_some()
}

/// Checks the (region, server) pair that names a server in every RPC.
pub fn server_ref(region: &str, server: &str) -> Result<(RegionId, String), Violations> {
    match (region_id(region), ssl_vpn_server_id(server)) {
        (Ok(r), Ok(s)) => Ok((r, s.to_owned())),
        (r, s) => Err(Violations(
            r.err().into_iter().chain(s.err()).collect::<Vec<_>>(),
        )),
    }
}

/// A region id: lowercase letters, then 1 to 5 hyphen-separated groups of
/// lowercase letters and digits (`cn-hangzhou`, `ap-southeast-1`,
/// `cn-shanghai-finance-1`). It becomes part of a host name, so nothing
/// else may pass.
pub fn region_id(s: &str) -> Result<RegionId, Violation> {
    let bad = |why: &str| Err(Violation::invalid(Field::RegionId, why.to_owned()));
    if s.is_empty() {
        return Err(Violation::new(
            Field::RegionId,
            "MissingParameter.RegionId",
            "region_id is required, e.g. cn-hangzhou",
        ));
    }
    if s.len() > MAX_REGION_ID_LEN {
        return bad("region_id is longer than 64 characters");
    }
    let mut groups = s.split('-');
    let head = groups.next().unwrap_or_default();
    let head_ok = head.len() >= 2 && head.bytes().all(|b| b.is_ascii_lowercase());
    let rest: Vec<&str> = groups.collect();
    let rest_ok = (1..=5).contains(&rest.len())
        && rest.iter().all(|g| {
            !g.is_empty()
                && g.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if head_ok && rest_ok {
        Ok(RegionId::new_unchecked(s.to_owned()))
    } else {
        bad("region_id must look like cn-hangzhou: lowercase letters, digits and single hyphens")
    }
}

/// An SSL server id: `vss-` and lowercase letters and digits.
pub fn ssl_vpn_server_id(s: &str) -> Result<&str, Violation> {
    if s.is_empty() {
        return Err(Violation::new(
            Field::SslVpnServerId,
            "MissingParameter.SslVpnServerId",
            "ssl_vpn_server_id is required, e.g. vss-bp18q7hzj6largv4v1234",
        ));
    }
    let body = s.strip_prefix("vss-").unwrap_or_default();
    if s.len() <= MAX_SERVER_ID_LEN
        && !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        Ok(s)
    } else {
        Err(Violation::invalid(
            Field::SslVpnServerId,
            "ssl_vpn_server_id must be vss- followed by lowercase letters and digits",
        ))
    }
}

/// A client token: printable ASCII, at most 64 characters; empty = none.
pub fn client_token(s: &str) -> Result<Option<String>, Violation> {
    if s.is_empty() {
        return Ok(None);
    }
    if s.len() > MAX_CLIENT_TOKEN_LEN {
        return Err(Violation::invalid(
            Field::ClientToken,
            format!("client_token has {} characters; at most 64", s.len()),
        ));
    }
    if !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(Violation::invalid(
            Field::ClientToken,
            "client_token may contain only printable ASCII characters",
        ));
    }
    Ok(Some(s.to_owned()))
}

/// A server name: 1 to 100 characters, not starting with http:// or https://.
pub fn name(s: &str) -> Result<&str, Violation> {
    let chars = s.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(Violation::new(
            Field::Name,
            code::INVALID_NAME,
            format!("name has {chars} characters; it must have 1 to 100"),
        ));
    }
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Err(Violation::new(
            Field::Name,
            code::INVALID_NAME,
            "name must not start with http:// or https://",
        ));
    }
    Ok(s)
}

/// Parses `a.b.c.d/n` and insists on the network address.
fn network(field: Field, s: &str) -> Result<Ipv4Net, Violation> {
    let net = strict_cidr(s.trim()).ok_or_else(|| {
        Violation::invalid(
            field,
            format!("{s:?} is not an IPv4 CIDR block such as 10.0.0.0/24"),
        )
    })?;
    if net.trunc() != net {
        return Err(Violation::invalid(
            field,
            format!(
                "{s:?} is not a network address; did you mean {}?",
                net.trunc()
            ),
        ));
    }
    Ok(net)
}

/// `a.b.c.d/n` in its one canonical spelling: std's address parser refuses
/// leading zeros (`010.0.0.0` reads as octal elsewhere), and so do we for `n`.
fn strict_cidr(s: &str) -> Option<Ipv4Net> {
    let (addr, prefix) = s.split_once('/')?;
    let addr: std::net::Ipv4Addr = addr.parse().ok()?;
    let canonical = !prefix.is_empty()
        && prefix.len() <= 2
        && prefix.bytes().all(|b| b.is_ascii_digit())
        && (prefix == "0" || !prefix.starts_with('0'));
    if !canonical {
        return None;
    }
    Ipv4Net::new(addr, prefix.parse().ok()?).ok()
}

fn first_reserved(net: Ipv4Net, reserved: &[&str]) -> Option<Ipv4Net> {
    reserved
        .iter()
        .filter_map(|r| r.parse::<Ipv4Net>().ok())
        .find(|r| r.contains(&net.network()) || net.contains(&r.network()))
}

/// The client pool: a network address, mask /16 to /29, outside the reserved
/// ranges.
pub fn client_ip_pool(s: &str) -> Result<Ipv4Net, Violation> {
    let net = network(Field::ClientIpPool, s)?;
    if !CLIENT_POOL_PREFIX.contains(&net.prefix_len()) {
        return Err(Violation::new(
            Field::ClientIpPool,
            code::CLIENT_IP_POOL_NETMASK_INVALID,
            format!(
                "client_ip_pool {net} has a /{} mask; it must be /16 to /29",
                net.prefix_len()
            ),
        ));
    }
    if let Some(reserved) = first_reserved(net, &CLIENT_POOL_RESERVED) {
        return Err(Violation::new(
            Field::ClientIpPool,
            code::CLIENT_IP_POOL_SUBNET_INVALID,
            format!("client_ip_pool {net} overlaps the unsupported range {reserved}"),
        ));
    }
    Ok(net)
}

/// The local subnets: a comma-separated list of network addresses, each mask
/// /8 to /32, outside the reserved ranges. Reports every bad entry.
pub fn local_subnet(s: &str) -> Result<Vec<Ipv4Net>, Vec<Violation>> {
    let mut nets = Vec::new();
    let mut violations = Vec::new();
    for entry in s.split(',') {
        if entry.trim().is_empty() {
            violations.push(Violation::invalid(
                Field::LocalSubnet,
                "local_subnet has an empty entry: give CIDR blocks separated by commas",
            ));
            continue;
        }
        let net = match network(Field::LocalSubnet, entry) {
            Ok(net) => net,
            Err(v) => {
                violations.push(v);
                continue;
            }
        };
        if !LOCAL_SUBNET_PREFIX.contains(&net.prefix_len()) {
            violations.push(Violation::invalid(
                Field::LocalSubnet,
                format!(
                    "local_subnet entry {net} has a /{} mask; it must be /8 to /32",
                    net.prefix_len()
                ),
            ));
        } else if let Some(reserved) = first_reserved(net, &LOCAL_SUBNET_RESERVED) {
            violations.push(Violation::invalid(
                Field::LocalSubnet,
                format!("local_subnet entry {net} overlaps the unsupported range {reserved}"),
            ));
        } else {
            nets.push(net);
        }
    }
    if violations.is_empty() {
        Ok(nets)
    } else {
        Err(violations)
    }
}

/// The client pool may not overlap any local subnet.
pub fn ip_conflict(pool: Ipv4Net, subnets: &[Ipv4Net]) -> Result<(), Violation> {
    match subnets
        .iter()
        .find(|s| s.contains(&pool.network()) || pool.contains(&s.network()))
    {
        Some(subnet) => Err(Violation::new(
            Field::ClientIpPool,
            code::IP_CONFLICT,
            format!("client_ip_pool {pool} overlaps local_subnet entry {subnet}"),
        )),
        None => Ok(()),
    }
}

/// The pool must hold four addresses per connection the gateway allows.
pub fn pool_capacity(pool: Ipv4Net, max_connections: i32) -> Result<(), Violation> {
    let size = 1u64 << (32 - u32::from(pool.prefix_len()));
    let needed = ADDRESSES_PER_CONNECTION * u64::try_from(max_connections.max(0)).unwrap_or(0);
    if size >= needed {
        Ok(())
    } else {
        Err(Violation::invalid(
            Field::ClientIpPool,
            format!(
                "client_ip_pool {pool} holds {size} addresses; the gateway allows \
                 {max_connections} connections, which need at least {needed} (4 each)"
            ),
        ))
    }
}

/// A port: 1 to 65535 and none the cloud reserves.
pub fn port(p: i64) -> Result<u16, Violation> {
    let port = u16::try_from(p).ok().filter(|p| *p != 0).ok_or_else(|| {
        Violation::new(
            Field::Port,
            code::PORT_ILLEGAL,
            format!("port {p} is not in the range 1-65535"),
        )
    })?;
    if RESERVED_PORTS.contains(&port) {
        return Err(Violation::invalid(
            Field::Port,
            format!("port {port} is reserved by the cloud; choose another (default 1194)"),
        ));
    }
    Ok(port)
}

/// An IDaaS instance or application id.
fn idaas_id(field: Field, s: &str) -> Result<&str, Violation> {
    if !s.is_empty()
        && s.len() <= MAX_IDAAS_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(s)
    } else {
        Err(Violation::invalid(
            field,
            format!(
                "{} must be 1 to 128 letters, digits, '-' or '_'",
                field.proto_name()
            ),
        ))
    }
}

/// Turning two-factor authentication on needs the IDaaS instance and its
/// region. The application is needed only for an EIAM 2.0 instance ("If an
/// IDaaS EIAM 1.0 instance is associated, you do not need to specify an
/// IDaaS application ID"), and nothing the gateway can read tells an
/// instance's version before it is bound (the server's
/// `IDaaSInstanceVersion` describes the instance it has, the gateway's
/// `IDaaSNewVersion` tag what it could take): the cloud answers
/// `MissingParam.IDaaSApplicationId` itself for a 2.0 instance without one.
fn multi_factor_auth(input: &ModifyInput<'_>) -> Vec<Violation> {
    if input.enable_multi_factor_auth != Some(true) {
        return Vec::new();
    }
    [
        (
            input.idaas_instance_id,
            Field::IdaasInstanceId,
            code::MISSING_IDAAS_INSTANCE_ID,
        ),
        (
            input.idaas_region_id,
            Field::IdaasRegionId,
            code::MISSING_IDAAS_REGION_ID,
        ),
    ]
    .into_iter()
    .filter(|(value, _, _)| value.is_none())
    .map(|(_, field, code)| {
        Violation::new(
            field,
            code,
            format!(
                "{} is required when enable_multi_factor_auth is true",
                field.proto_name()
            ),
        )
    })
    .collect()
}

#[cfg(test)]
mod tests;
