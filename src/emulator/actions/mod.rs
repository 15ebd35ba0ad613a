//! The four VPC API actions the emulator serves, and what they share:
//! the region check, paging, and resource grants.
//!
//! Each action takes the operation's decoded parameters and a [`Ctx`] (the
//! world, already settled to "now", the calling key, the counters) and
//! answers the cloud's JSON body or an [`ApiError`]. Response shapes follow
//! the SDK models of reference §3.

use serde_json::Value;
use tokio::time::Instant;

use super::{
    config::Timings,
    counters::Counters,
    errors::{ApiError, code},
    fixtures::AccessKey,
    idempotency::Ledger,
    rules::boolean,
    state::World,
    wire::Params,
};

mod describe;
mod modify;

/// The API version every action belongs to.
pub const API_VERSION: &str = "2016-04-28";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    ModifySslVpnServer,
    DescribeSslVpnServers,
    DescribeVpnGateway,
    DescribeVpnGateways,
}

impl Action {
    pub const ALL: [Action; 4] = [
        Action::ModifySslVpnServer,
        Action::DescribeSslVpnServers,
        Action::DescribeVpnGateway,
        Action::DescribeVpnGateways,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::ModifySslVpnServer => "ModifySslVpnServer",
            Action::DescribeSslVpnServers => "DescribeSslVpnServers",
            Action::DescribeVpnGateway => "DescribeVpnGateway",
            Action::DescribeVpnGateways => "DescribeVpnGateways",
        }
    }

    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The action a request names, if the emulator knows it in this version.
    pub fn resolve(name: &str, version: &str) -> Result<Action, ApiError> {
        match Action::from_name(name) {
            Some(action) if version == API_VERSION => Ok(action),
            _ => Err(ApiError::not_found(
                code::API_NOT_FOUND,
                format!(
                    "Specified api is not found, please check your url and method: {name} ({version})."
                ),
            )),
        }
    }
}

/// What an action may read and change.
pub struct Ctx<'a> {
    pub world: &'a mut World,
    pub ledger: &'a mut Ledger,
    pub counters: &'a mut Counters,
    pub timings: Timings,
    pub now: Instant,
    pub key: &'a AccessKey,
    pub request_id: &'a str,
}

/// Runs one action.
pub fn run(action: Action, params: &Params, ctx: &mut Ctx<'_>) -> Result<Value, ApiError> {
    match action {
        Action::ModifySslVpnServer => modify::modify(params, ctx),
        Action::DescribeSslVpnServers => describe::ssl_vpn_servers(params, ctx),
        Action::DescribeVpnGateway => describe::vpn_gateway(params, ctx),
        Action::DescribeVpnGateways => describe::vpn_gateways(params, ctx),
    }
}

/// `RegionId`: required, and a region the cloud has.
fn region<'p>(params: &'p Params, world: &World) -> Result<&'p str, ApiError> {
    let region = params
        .non_empty("RegionId")
        .ok_or_else(|| ApiError::missing("RegionId"))?;
    if world.regions.contains(region) {
        Ok(region)
    } else {
        Err(ApiError::not_found(
            code::REGION_NOT_FOUND,
            "The specified region is not found during access authentication.",
        ))
    }
}

/// A required, non-empty parameter.
fn required<'p>(params: &'p Params, name: &str) -> Result<&'p str, ApiError> {
    params
        .non_empty(name)
        .ok_or_else(|| ApiError::missing(name))
}

/// `PageNumber` (default 1) and `PageSize` (1 to 50, default 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Page {
    number: usize,
    size: usize,
}

impl Page {
    fn from(params: &Params) -> Result<Page, ApiError> {
        let number = int_param(params, "PageNumber", 1, 1..=u32::MAX as usize)?;
        let size = int_param(params, "PageSize", 10, 1..=50)?;
        Ok(Page { number, size })
    }

    /// This page of `items`, with the page fields of the response.
    fn slice<T: Clone>(self, items: &[T]) -> Vec<T> {
        items
            .iter()
            .skip((self.number - 1).saturating_mul(self.size))
            .take(self.size)
            .cloned()
            .collect()
    }
}

fn int_param(
    params: &Params,
    name: &str,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, ApiError> {
    match params.get(name) {
        None | Some("") => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    name,
                    format!(
                        "The parameter {name} must be an integer from {} to {}, not {v:?}.",
                        range.start(),
                        range.end()
                    ),
                )
            }),
    }
}

#[cfg(test)]
mod tests;
