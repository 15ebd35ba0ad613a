//! ModifySslVpnServer's rules as the cloud applies them, written from the
//! API document alone (its "Request parameters" and "Error codes" tables):
//! which values a request may carry, and the checks that need the cloud's
//! state (the server's other settings, its VPC, its gateway, the IDaaS
//! instances).
//!
//! Why the emulator has rules of its own: the gateway checks the same
//! document in its `validate` module before anything leaves it. If the
//! emulator called that code, a misread rule would be wrong on both sides
//! and every end-to-end test would still pass. So this file is the cloud's
//! twin: written from the document, sharing no code, type or constant with
//! `validate`, so that each checks the other. Where the two read the
//! document differently, a test in `actions/tests.rs` quotes the sentence
//! and pins the emulator's answer.
//!
//! Answers are the cloud's: one error per request (the first rule broken,
//! parameters taken in the order of the document's table), with the
//! document's code and message, or `InvalidParameter.<Name>` where the
//! document names no code. Where the document is silent:
//! - a CIDR block is spelled `a.b.c.d/n` with decimal octets and prefix
//!   without leading zeros, and is its own network address (`10.0.0.1/24`
//!   is refused rather than guessed at); spaces around a block, a port or
//!   the commas of a local-subnet list are ignored;
//! - a block falls in an unsupported range when any of its addresses does;
//! - `Port` is an `integer` (the document types `CreateTime` as `long`, so
//!   32 bits): a value that is no such integer is `InvalidParameter.Port`,
//!   an integer outside 1 to 65535 `SslVpnServerPort.Illegal`, a listed
//!   unsupported port `InvalidParameter.Port`;
//! - a request must change something (`MissingParameter`), and an SSL
//!   server id has the shape of the cloud's ids (`vss-` and lowercase
//!   letters and digits); an IDaaS id or region has no shape to check: one
//!   that names nothing is not found.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{
    errors::{ApiError, code},
    fixtures::EIAM_2,
    state::{Gateway, SslVpnServer, World},
    wire::{Params, parse_bool},
};

/// `Proto`: "Valid values: TCP (default), UDP".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn from_wire(s: &str) -> Option<Proto> {
        match s {
            "TCP" => Some(Proto::Tcp),
            "UDP" => Some(Proto::Udp),
            _ => None,
        }
    }

    pub fn as_wire(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        }
    }
}

/// `Cipher`: "AES-128-CBC (default), AES-192-CBC, AES-256-CBC, none".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    Aes128,
    Aes192,
    Aes256,
    None,
}

impl Cipher {
    pub fn from_wire(s: &str) -> Option<Cipher> {
        match s {
            "AES-128-CBC" => Some(Cipher::Aes128),
            "AES-192-CBC" => Some(Cipher::Aes192),
            "AES-256-CBC" => Some(Cipher::Aes256),
            "none" => Some(Cipher::None),
            _ => None,
        }
    }

    pub fn as_wire(self) -> &'static str {
        match self {
            Cipher::Aes128 => "AES-128-CBC",
            Cipher::Aes192 => "AES-192-CBC",
            Cipher::Aes256 => "AES-256-CBC",
            Cipher::None => "none",
        }
    }
}

/// "The following ports are not supported: 22, 2222, 22222, 9000, 9001,
/// 9002, 7505, 80, 443, 53, 68, 123, 4510, 4560, 500, and 4500."
const UNSUPPORTED_PORTS: [u16; 16] = [
    22, 2222, 22222, 9000, 9001, 9002, 7505, 80, 443, 53, 68, 123, 4510, 4560, 500, 4500,
];

/// An address range as the document writes it, `first~last`.
type Range = (Ipv4Addr, Ipv4Addr);

const LOOPBACK: Range = (
    Ipv4Addr::new(127, 0, 0, 0),
    Ipv4Addr::new(127, 255, 255, 255),
);
const LINK_LOCAL: Range = (
    Ipv4Addr::new(169, 254, 0, 0),
    Ipv4Addr::new(169, 254, 255, 255),
);
const MULTICAST: Range = (
    Ipv4Addr::new(224, 0, 0, 0),
    Ipv4Addr::new(239, 255, 255, 255),
);
const RESERVED_255: Range = (
    Ipv4Addr::new(255, 0, 0, 0),
    Ipv4Addr::new(255, 255, 255, 255),
);
const SHARED: Range = (
    Ipv4Addr::new(100, 64, 0, 0),
    Ipv4Addr::new(100, 127, 255, 255),
);

/// "Click to view the CIDR blocks that are not supported" (ClientIpPool).
const POOL_UNSUPPORTED: [Range; 5] = [SHARED, LOOPBACK, LINK_LOCAL, MULTICAST, RESERVED_255];
/// "You cannot specify the following CIDR blocks as the local CIDR blocks".
const LOCAL_UNSUPPORTED: [Range; 4] = [LOOPBACK, LINK_LOCAL, MULTICAST, RESERVED_255];

/// "The subnet mask of the client CIDR block must be 16 to 29 bits in length."
const POOL_MASK: std::ops::RangeInclusive<u8> = 16..=29;
/// "The subnet mask of the specified local CIDR block must be 8 to 32 bits in length."
const LOCAL_MASK: std::ops::RangeInclusive<u8> = 8..=32;
/// "The name must be 1 to 100 characters in length".
const NAME_CHARS: std::ops::RangeInclusive<usize> = 1..=100;
/// "one client consumes four IP addresses".
const ADDRESSES_PER_CLIENT: u64 = 4;

/// The parameters that change a server, in the document's order.
const CHANGING: [&str; 11] = [
    "Name",
    "ClientIpPool",
    "LocalSubnet",
    "Proto",
    "Cipher",
    "Port",
    "Compress",
    "EnableMultiFactorAuth",
    "IDaaSInstanceId",
    "IDaaSRegionId",
    "IDaaSApplicationId",
];

/// What a request changes; `None` leaves a setting as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub name: Option<String>,
    pub client_ip_pool: Option<Ipv4Net>,
    pub local_subnet: Option<Vec<Ipv4Net>>,
    pub proto: Option<Proto>,
    pub cipher: Option<Cipher>,
    pub port: Option<u16>,
    pub compress: Option<bool>,
    pub enable_multi_factor_auth: Option<bool>,
    pub idaas_instance_id: Option<String>,
    pub idaas_region_id: Option<String>,
    pub idaas_application_id: Option<String>,
}

impl Changes {
    /// "If you modify only Name, this operation is synchronous."
    pub fn is_name_only(&self) -> bool {
        self.name.is_some()
            && Changes {
                name: None,
                ..self.clone()
            } == Changes::default()
    }

    /// A new IDaaS instance, region or application.
    fn rebinds_idaas(&self) -> bool {
        self.idaas_instance_id.is_some()
            || self.idaas_region_id.is_some()
            || self.idaas_application_id.is_some()
    }
}

/// A request whose parameters passed every rule that needs no state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Modification {
    /// `ClientToken`, when given (empty is none).
    pub client_token: Option<String>,
    pub changes: Changes,
}

/// Whether `id` has the shape of the cloud's SSL server ids.
pub fn is_server_id(id: &str) -> bool {
    id.strip_prefix("vss-").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// An optional boolean in any of the cloud's spellings.
pub fn boolean(params: &Params, name: &str) -> Result<Option<bool>, ApiError> {
    params
        .get(name)
        .map(|v| {
            parse_bool(v).ok_or_else(|| {
                ApiError::invalid(
                    name,
                    format!("The parameter {name} must be true or false, not {v:?}."),
                )
            })
        })
        .transpose()
}

/// Every rule of the document that needs no state, for a request whose
/// `RegionId` and `SslVpnServerId` are present. The first broken rule is
/// the answer.
pub fn modification(params: &Params, server_id: &str) -> Result<Modification, ApiError> {
    if !is_server_id(server_id) {
        return Err(ApiError::invalid(
            "SslVpnServerId",
            format!(
                "The specified SslVpnServerId {server_id:?} is not valid: an SSL server id is vss- followed by lowercase letters and digits."
            ),
        ));
    }
    let client_token = params
        .non_empty("ClientToken")
        .map(client_token)
        .transpose()?;
    let name = params.get("Name").map(name).transpose()?;
    let client_ip_pool = params.get("ClientIpPool").map(client_ip_pool).transpose()?;
    let local_subnet = params.get("LocalSubnet").map(local_subnet).transpose()?;
    let proto = params
        .get("Proto")
        .map(|v| {
            Proto::from_wire(v).ok_or_else(|| {
                ApiError::invalid(
                    "Proto",
                    format!("The parameter Proto must be TCP or UDP, not {v:?}."),
                )
            })
        })
        .transpose()?;
    let cipher = params
        .get("Cipher")
        .map(|v| {
            Cipher::from_wire(v).ok_or_else(|| {
                ApiError::invalid(
                    "Cipher",
                    format!(
                        "The parameter Cipher must be AES-128-CBC, AES-192-CBC, AES-256-CBC or none, not {v:?}."
                    ),
                )
            })
        })
        .transpose()?;
    let port = params.get("Port").map(port).transpose()?;
    let compress = boolean(params, "Compress")?;
    let enable_multi_factor_auth = boolean(params, "EnableMultiFactorAuth")?;
    // An empty IDaaS value names nothing: it is no value.
    let idaas = |name: &str| params.non_empty(name).map(str::to_owned);
    let changes = Changes {
        name,
        client_ip_pool,
        local_subnet,
        proto,
        cipher,
        port,
        compress,
        enable_multi_factor_auth,
        idaas_instance_id: idaas("IDaaSInstanceId"),
        idaas_region_id: idaas("IDaaSRegionId"),
        idaas_application_id: idaas("IDaaSApplicationId"),
    };
    // "To enable two-factor authentication, you need to specify
    // IDaaSInstanceId, IDaaSRegionId, and IDaaSApplicationId." The
    // application is needed only for an EIAM 2.0 instance, which takes the
    // instance to know: see `multi_factor_auth`.
    if changes.enable_multi_factor_auth == Some(true) {
        if changes.idaas_instance_id.is_none() {
            return Err(ApiError::bad_request(
                code::MISSING_IDAAS_INSTANCE_ID,
                "The input parameter IDaaSInstanceId is mandatory when enable multi-factor authentication.",
            ));
        }
        if changes.idaas_region_id.is_none() {
            return Err(ApiError::bad_request(
                code::MISSING_IDAAS_REGION_ID,
                "The input parameter IDaaSRegionId is mandatory when enable multi-factor authentication.",
            ));
        }
    }
    // The document makes every setting optional and names no code for a
    // request that sets none; the emulator refuses one, as it always has,
    // rather than start an asynchronous change of nothing.
    if changes == Changes::default() {
        return Err(ApiError::bad_request(
            code::MISSING_PARAMETER,
            format!(
                "The request changes nothing: give at least one of {}.",
                CHANGING.join(", ")
            ),
        ));
    }
    Ok(Modification {
        client_token,
        changes,
    })
}

/// "The client token can contain only ASCII characters."
fn client_token(token: &str) -> Result<String, ApiError> {
    if token.is_ascii() {
        Ok(token.to_owned())
    } else {
        Err(ApiError::invalid(
            "ClientToken",
            "The parameter ClientToken can contain only ASCII characters.",
        ))
    }
}

/// "The name must be 1 to 100 characters in length and cannot start with
/// http:// or https://."
fn name(name: &str) -> Result<String, ApiError> {
    let length_ok = NAME_CHARS.contains(&name.chars().count());
    let url_like = name.starts_with("http://") || name.starts_with("https://");
    if length_ok && !url_like {
        Ok(name.to_owned())
    } else {
        Err(ApiError::bad_request(
            code::INVALID_NAME,
            "The name is not valid",
        ))
    }
}

/// A decimal number without leading zeros, at most `max`.
fn decimal(s: &str, max: u32) -> Option<u32> {
    let digits = !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok().filter(|n| *n <= max)
}

/// `a.b.c.d/n`, in the one spelling a CIDR block has.
fn cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, prefix) = s.split_once('/')?;
    let octets: Vec<u32> = addr
        .split('.')
        .map(|o| decimal(o, 255))
        .collect::<Option<_>>()?;
    let [a, b, c, d] = octets.as_slice() else {
        return None;
    };
    let octet = |n: u32| u8::try_from(n).ok();
    let addr = Ipv4Addr::new(octet(*a)?, octet(*b)?, octet(*c)?, octet(*d)?);
    let prefix = u8::try_from(decimal(prefix, 32)?).ok()?;
    Some((addr, prefix))
}

/// Why `s` is no CIDR block, or the block.
fn block(s: &str) -> Result<Ipv4Net, String> {
    let s = s.trim();
    let (addr, prefix) =
        cidr(s).ok_or_else(|| format!("{s:?} is not an IPv4 CIDR block such as 10.30.30.0/24"))?;
    let net = Ipv4Net::new(addr, prefix).map_err(|e| e.to_string())?;
    if net.network() == addr {
        Ok(net)
    } else {
        Err(format!(
            "{s:?} is not a CIDR block: its network address is {}",
            net.network()
        ))
    }
}

/// The first of `ranges` that shares an address with `net`.
fn unsupported(net: Ipv4Net, ranges: &[Range]) -> Option<Range> {
    ranges
        .iter()
        .copied()
        .find(|(first, last)| net.network() <= *last && *first <= net.broadcast())
}

/// The client CIDR block: its mask, then the ranges it may not touch.
fn client_ip_pool(s: &str) -> Result<Ipv4Net, ApiError> {
    let net = block(s).map_err(|why| {
        ApiError::invalid(
            "ClientIpPool",
            format!("The parameter ClientIpPool is not valid: {why}."),
        )
    })?;
    if !POOL_MASK.contains(&net.prefix_len()) {
        return Err(ApiError::bad_request(
            code::NETMASK_INVALID,
            "The netmask length of client IP pool must be greater than or equal to 16 and less than or equal to 29.",
        ));
    }
    if unsupported(net, &POOL_UNSUPPORTED).is_some() {
        return Err(ApiError::bad_request(
            code::SUBNET_INVALID,
            "The specified client IP pool cannot be used.",
        ));
    }
    Ok(net)
}

/// The local CIDR blocks, separated by commas: each one's mask and the
/// ranges it may not touch. The document names no code for these.
fn local_subnet(s: &str) -> Result<Vec<Ipv4Net>, ApiError> {
    let bad = |why: String| {
        ApiError::invalid(
            "LocalSubnet",
            format!("The parameter LocalSubnet is not valid: {why}."),
        )
    };
    s.split(',')
        .map(|entry| {
            let net = block(entry).map_err(bad)?;
            if !LOCAL_MASK.contains(&net.prefix_len()) {
                return Err(bad(format!(
                    "the subnet mask of {net} must be 8 to 32 bits in length"
                )));
            }
            if let Some((first, last)) = unsupported(net, &LOCAL_UNSUPPORTED) {
                return Err(bad(format!(
                    "{net} falls in {first}~{last}, which cannot be a local CIDR block"
                )));
            }
            Ok(net)
        })
        .collect()
}

/// "Valid values of port numbers: 1 to 65535", none of the unsupported.
fn port(s: &str) -> Result<u16, ApiError> {
    let n: i32 = s.trim().parse().map_err(|_| {
        ApiError::invalid(
            "Port",
            format!("The parameter Port must be an integer, not {s:?}."),
        )
    })?;
    let port = u16::try_from(n).ok().filter(|p| *p >= 1).ok_or_else(|| {
        ApiError::bad_request(
            code::PORT_ILLEGAL,
            "The server port is not in the range of [1-65535].",
        )
    })?;
    if UNSUPPORTED_PORTS.contains(&port) {
        return Err(ApiError::invalid(
            "Port",
            format!("The port {port} is not supported by SSL servers; the default is 1194."),
        ));
    }
    Ok(port)
}

/// A block the cloud already holds (from its fixtures, or an accepted request).
fn stored(s: &str) -> Option<Ipv4Net> {
    s.trim().parse().ok()
}

/// Whether two blocks share an address.
pub fn overlap(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.network() <= b.broadcast() && b.network() <= a.broadcast()
}

fn ip_conflict(message: &'static str) -> ApiError {
    ApiError::bad_request(code::IP_CONFLICT, message)
}

/// The rules that need the cloud's state, for turning `current` into
/// `target` with `changes`.
pub fn against_the_cloud(
    world: &World,
    current: &SslVpnServer,
    target: &SslVpnServer,
    changes: &Changes,
) -> Result<(), ApiError> {
    let (_, gw) = world
        .server_and_gateway(&current.ssl_vpn_server_id)
        .ok_or_else(ApiError::internal)?;
    let pool = stored(&target.client_ip_pool).ok_or_else(ApiError::internal)?;
    let pool_changed = changes.client_ip_pool.is_some();
    // "Make sure that the client CIDR block does not overlap with the local
    // CIDR block": the blocks the server will have, whichever changed.
    if pool_changed || changes.local_subnet.is_some() {
        let clash = target
            .local_subnet
            .split(',')
            .filter_map(stored)
            .any(|local| overlap(pool, local));
        if clash {
            return Err(ip_conflict("Client IP pool conflict with local IP range."));
        }
    }
    if pool_changed {
        if world
            .vpc_neighbours(current)
            .any(|other| stored(&other.client_ip_pool).is_some_and(|theirs| overlap(pool, theirs)))
        {
            return Err(ip_conflict(
                "Client IP pool conflict with other SSL VPN server in the same VPC.",
            ));
        }
        pool_capacity(pool, gw.record.ssl_max_connections)?;
        route_table(world, gw, pool)?;
    }
    let enabling = changes.enable_multi_factor_auth == Some(true);
    if enabling || (target.enable_multi_factor_auth && changes.rebinds_idaas()) {
        multi_factor_auth(
            world,
            gw,
            target,
            enabling && changes.idaas_application_id.is_none(),
        )?;
    }
    Ok(())
}

/// "Make sure that the number of IP addresses in the client CIDR block is
/// at least four times the maximum number of SSL-VPN connections supported
/// by the VPN gateway." The document names no code for it.
fn pool_capacity(pool: Ipv4Net, max_connections: i32) -> Result<(), ApiError> {
    let addresses = 1u64 << (32 - u32::from(pool.prefix_len()));
    let needed = ADDRESSES_PER_CLIENT * u64::try_from(max_connections).unwrap_or(0);
    if addresses >= needed {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "ClientIpPool",
            format!(
                "The client IP pool {pool} has {addresses} addresses: the VPN gateway supports {max_connections} SSL-VPN connections, which need at least {needed} (four each)."
            ),
        ))
    }
}

/// The route to the pool the cloud adds to the VPC's route table.
fn route_table(world: &World, gw: &Gateway, pool: Ipv4Net) -> Result<(), ApiError> {
    let Some(vpc) = world.vpcs.get(&gw.record.vpc_id) else {
        return Ok(());
    };
    if let Some(dest) = vpc
        .route_destinations
        .iter()
        .filter_map(|d| stored(d))
        .find(|d| pool.contains(&d.network()))
    {
        return Err(ApiError::bad_request(
            code::ROUTE_DEST_IN_POOL,
            format!(
                "Ssl vpn client cidr contains vpc route prefix. The vpc route prefix is {dest}."
            ),
        ));
    }
    if vpc.route_quota_left == 0 {
        return Err(ApiError::bad_request(
            code::ADD_ROUTE_ERROR,
            "Add route error whose destination is client IP pool, please check vpc route entry and relevant quota.",
        ));
    }
    Ok(())
}

/// Two-factor authentication against the gateway and the IDaaS instance.
/// `application_missing`: it is being enabled without `IDaaSApplicationId`.
fn multi_factor_auth(
    world: &World,
    gw: &Gateway,
    target: &SslVpnServer,
    application_missing: bool,
) -> Result<(), ApiError> {
    if !gw.record.supports_multi_factor_auth {
        return Err(ApiError::bad_request(
            code::NOT_SUPPORT_MFA,
            "Current version of the VPN does not support multi-factor authentication.",
        ));
    }
    let instance = world
        .idaas
        .get(&target.idaas_instance_id)
        .filter(|i| i.region_id == target.idaas_region_id)
        .ok_or_else(|| {
            ApiError::not_found(
                code::IDAAS_INSTANCE_NOT_FOUND,
                "The specified IDaaS instance ID does not exist.",
            )
        })?;
    if !instance.vpn_authorized {
        return Err(ApiError::bad_request(
            code::IDAAS_NO_RAM_PERMISSION,
            "Vpn Service has no permission to operate your IDaaS instances.",
        ));
    }
    if !instance.reachable {
        return Err(ApiError::bad_request(
            code::IDAAS_GET_INFO_FAILED,
            "Failed to get secret key from your IDaaS instance.",
        ));
    }
    // "If an IDaaS EIAM 1.0 instance is associated, you do not need to
    // specify an IDaaS application ID."
    if instance.version != EIAM_2 {
        return Ok(());
    }
    if !gw.record.supports_idaas2 {
        return Err(ApiError::bad_request(
            code::IDAAS2_NOT_SUPPORT,
            "Current version of the VPN does not support IDaaS2.0.",
        ));
    }
    // "If an IDaaS EIAM 2.0 instance is associated, you need to specify an
    // IDaaS application ID."
    if application_missing || target.idaas_application_id.is_empty() {
        return Err(ApiError::bad_request(
            code::MISSING_IDAAS_APPLICATION_ID,
            "The input parameter IDaaSApplicationId is mandatory when enable multi-factor authentication.",
        ));
    }
    let app = instance
        .applications
        .iter()
        .find(|a| a.application_id == target.idaas_application_id)
        .ok_or_else(|| {
            ApiError::not_found(
                code::IDAAS_APPLICATION_NOT_FOUND,
                "The specified IDaaS application Id does not exist.",
            )
        })?;
    if !app.ssl_vpn_template {
        return Err(ApiError::bad_request(
            code::IDAAS_APPLICATION_ILLEGAL,
            "The specified IDaaS application Id is not illegal, the application instance needs to be created based on the dedicated SSL VPN template.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
