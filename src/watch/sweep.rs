//! One observation round of a region: which watched gateways are due, and
//! the cheapest way to read them.
//!
//! The account's quota is per region and API, so the gateways watched in a
//! region are observed together, choosing each round whichever plan costs
//! fewer calls: one DescribeVpnGateway per gateway (three watched gateways
//! among a thousand), the region's DescribeVpnGateways pages filtered on
//! `Status=updating` (a few busy gateways among many idle ones), or all of
//! the region's pages (most of them due). The same for their servers: one
//! DescribeSslVpnServers per gateway, or the region's pages. A gateway
//! that is updating needs no server read — its watchers are APPLYING
//! whatever the server shows — so servers are read when a gateway is
//! active again, when it is first watched, and for idle gateways every
//! few slow rounds (a console change to anything but the name turns the
//! gateway `updating`, which the gateway read sees at once).

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use tokio::time::Instant;

use crate::{
    cloud::{GatewayFilter, PageRequest, ServerFilter, VpcClient, client::MAX_PAGE_SIZE},
    domain::{GatewayStatus, RegionId, SslVpnServer, VpnGateway},
    error::{Error, Kind},
};

/// Idle gateways' servers are read every this many slow rounds.
pub const IDLE_SERVER_ROUNDS: u32 = 3;

/// What the round knows of one due gateway before it reads anything.
#[derive(Clone, Debug)]
pub struct Due {
    pub gateway_id: String,
    /// The status last observed; `None`: never observed.
    pub last_status: Option<GatewayStatus>,
    /// Its servers must be read this round whatever its status.
    pub servers_wanted: bool,
}

/// What the round learnt of one gateway.
#[derive(Debug)]
pub enum Outcome {
    /// The gateway, and its servers when they were read.
    Seen {
        gateway: Box<VpnGateway>,
        servers: Option<Vec<SslVpnServer>>,
    },
    /// No later round can mend it (gone, access refused).
    Gone(Error),
    /// Nothing learnt this time (transient, throttled, over budget).
    Missed,
}

/// What a region's rounds remember between them: the sizes that price the
/// listing plans.
#[derive(Debug, Default)]
pub struct RegionSizes {
    pub gateways: Option<u32>,
    pub servers: Option<u32>,
    pub updating: Option<u32>,
}

/// How the round reads gateways.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayPlan {
    OneByOne,
    Updating,
    All,
}

fn pages(n: u32) -> usize {
    usize::try_from(n.div_ceil(MAX_PAGE_SIZE).max(1)).unwrap_or(usize::MAX)
}

/// The cheapest way to read `due`'s gateways, priced with what earlier
/// rounds learnt (a size not yet known prices its plan as unaffordable,
/// except that a big enough round lists the region to learn it).
pub fn gateway_plan(due: &[Due], sizes: &RegionSizes) -> GatewayPlan {
    let n = due.len();
    let busy = due
        .iter()
        .filter(|d| d.last_status.is_some_and(|s| s == GatewayStatus::Updating))
        .count();
    let all = match sizes.gateways {
        Some(g) => pages(g),
        None if n > 3 => 1,
        None => usize::MAX,
    };
    let updating = if busy > 0 {
        pages(
            sizes
                .updating
                .unwrap_or(u32::try_from(busy).unwrap_or(u32::MAX)),
        ) + (n - busy)
    } else {
        usize::MAX
    };
    if n <= all && n <= updating {
        GatewayPlan::OneByOne
    } else if updating < all {
        GatewayPlan::Updating
    } else {
        GatewayPlan::All
    }
}

/// Whether the region's server pages are cheaper than `wanted` reads.
pub fn list_servers(wanted: usize, sizes: &RegionSizes) -> bool {
    match sizes.servers {
        Some(s) => pages(s) < wanted,
        None => wanted > 3,
    }
}

/// Reads every page of a listing.
async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<(Vec<T>, u32), Error>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<crate::cloud::Page<T>, crate::cloud::CloudError>>,
{
    let mut items = Vec::new();
    let mut page = PageRequest::default();
    loop {
        let result = fetch(page).await?;
        let total = result.total_count;
        let more = result.has_more() && !result.items.is_empty();
        page = result.next_request();
        items.extend(result.items);
        if !more {
            return Ok((items, total));
        }
    }
}

/// The failure of a call, for every gateway it was about.
fn failed(err: &Error) -> Outcome {
    if err.kind().ends_watch() {
        Outcome::Gone(err.clone())
    } else {
        Outcome::Missed
    }
}

fn not_found(gateway_id: &str) -> Error {
    Error::new(
        Kind::NotFound,
        "InvalidVpnGatewayInstanceId.NotFound",
        format!("the VPN gateway {gateway_id} no longer exists"),
    )
}

/// One round: reads `due` the cheapest way, and says what it learnt of
/// each, plus the longest wait a transient failure asked for.
pub async fn observe(
    cloud: &VpcClient,
    region: &RegionId,
    due: &[Due],
    sizes: &mut RegionSizes,
    call_timeout: Duration,
) -> (HashMap<String, Outcome>, Option<Duration>) {
    let deadline = || Some(Instant::now() + call_timeout);
    let mut wait: Option<Duration> = None;
    let mut note = |err: &Error| {
        if !err.kind().ends_watch() {
            let asked = err.retry_after().unwrap_or(Duration::ZERO);
            wait = Some(wait.map_or(asked, |w| w.max(asked)));
        }
    };
    let mut gateways: HashMap<String, Result<VpnGateway, Outcome>> = HashMap::new();

    let plan = gateway_plan(due, sizes);
    let mut one_by_one: Vec<&Due> = Vec::new();
    match plan {
        GatewayPlan::OneByOne => one_by_one.extend(due),
        GatewayPlan::Updating | GatewayPlan::All => {
            let filter = GatewayFilter {
                status: (plan == GatewayPlan::Updating).then(|| "updating".to_owned()),
                ..GatewayFilter::default()
            };
            match all_pages(|page| cloud.describe_vpn_gateways(region, &filter, page, deadline()))
                .await
            {
                Ok((listed, total)) => {
                    if plan == GatewayPlan::All {
                        sizes.gateways = Some(total);
                    }
                    sizes.updating = Some(match plan {
                        GatewayPlan::All => u32::try_from(
                            listed
                                .iter()
                                .filter(|g| g.status() == GatewayStatus::Updating)
                                .count(),
                        )
                        .unwrap_or(u32::MAX),
                        _ => total,
                    });
                    let mut by_id: HashMap<String, VpnGateway> = listed
                        .into_iter()
                        .map(|g| (g.vpn_gateway_id.clone(), g))
                        .collect();
                    for d in due {
                        match by_id.remove(&d.gateway_id) {
                            Some(g) => {
                                gateways.insert(d.gateway_id.clone(), Ok(g));
                            }
                            // Not updating: read on its own.
                            None if plan == GatewayPlan::Updating => one_by_one.push(d),
                            None => {
                                gateways.insert(
                                    d.gateway_id.clone(),
                                    Err(Outcome::Gone(not_found(&d.gateway_id))),
                                );
                            }
                        }
                    }
                }
                Err(err) => {
                    note(&err);
                    for d in due {
                        gateways.insert(d.gateway_id.clone(), Err(failed(&err)));
                    }
                }
            }
        }
    }
    for d in one_by_one {
        let read = cloud
            .describe_vpn_gateway(region, &d.gateway_id, deadline())
            .await
            .map_err(Error::from);
        if let Err(err) = &read {
            note(err);
        }
        gateways.insert(d.gateway_id.clone(), read.map_err(|e| failed(&e)));
    }

    // Servers: for gateways asked for, first watched, or just out of an update.
    let wanted: Vec<&Due> = due
        .iter()
        .filter(|d| match gateways.get(&d.gateway_id) {
            Some(Ok(g)) => {
                // Asked for (awaited, or an idle gateway's turn), first
                // watched, or no longer updating after it was.
                d.servers_wanted
                    || d.last_status.is_none()
                    || (g.status() != GatewayStatus::Updating
                        && d.last_status != Some(GatewayStatus::Active))
            }
            _ => false,
        })
        .collect();
    let mut servers: HashMap<String, Vec<SslVpnServer>> = HashMap::new();
    let mut servers_failed: HashSet<String> = HashSet::new();
    if list_servers(wanted.len(), sizes) {
        let filter = ServerFilter::default();
        match all_pages(|page| cloud.describe_ssl_vpn_servers(region, &filter, page, deadline()))
            .await
        {
            Ok((listed, total)) => {
                sizes.servers = Some(total);
                for d in &wanted {
                    servers.entry(d.gateway_id.clone()).or_default();
                }
                for s in listed {
                    if let Some(list) = servers.get_mut(&s.vpn_gateway_id) {
                        list.push(s);
                    }
                }
            }
            Err(err) => {
                note(&err);
                servers_failed.extend(wanted.iter().map(|d| d.gateway_id.clone()));
            }
        }
    } else {
        for d in &wanted {
            let filter = ServerFilter::by_gateway(d.gateway_id.clone());
            match all_pages(|page| {
                cloud.describe_ssl_vpn_servers(region, &filter, page, deadline())
            })
            .await
            {
                Ok((list, _)) => {
                    servers.insert(d.gateway_id.clone(), list);
                }
                Err(err) => {
                    note(&err);
                    servers_failed.insert(d.gateway_id.clone());
                }
            }
        }
    }

    let outcomes = gateways
        .into_iter()
        .map(|(id, read)| {
            let outcome = match read {
                Ok(_) if servers_failed.contains(&id) => Outcome::Missed,
                Ok(gateway) => Outcome::Seen {
                    servers: servers.remove(&id),
                    gateway: Box::new(gateway),
                },
                Err(outcome) => outcome,
            };
            (id, outcome)
        })
        .collect();
    (outcomes, wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(n: usize, status: Option<GatewayStatus>) -> Vec<Due> {
        (0..n)
            .map(|i| Due {
                gateway_id: format!("vpn-{i}"),
                last_status: status,
                servers_wanted: false,
            })
            .collect()
    }

    #[test]
    fn the_cheaper_plan_is_chosen() {
        let thousand = RegionSizes {
            gateways: Some(1000),
            servers: Some(1000),
            updating: Some(10),
        };
        // Three watched among a thousand: one by one.
        let active = Some(GatewayStatus::Active);
        assert_eq!(
            gateway_plan(&due(3, active), &thousand),
            GatewayPlan::OneByOne
        );
        assert!(!list_servers(3, &thousand));
        // Ten busy among a thousand: the updating pages.
        let busy = due(10, Some(GatewayStatus::Updating));
        assert_eq!(gateway_plan(&busy, &thousand), GatewayPlan::Updating);
        // Most of the region due: all of its pages (20 instead of 500).
        assert_eq!(gateway_plan(&due(500, active), &thousand), GatewayPlan::All);
        assert!(list_servers(500, &thousand));
        // Sizes not yet known: a big round lists (and learns), a small one reads.
        let unknown = RegionSizes::default();
        assert_eq!(gateway_plan(&due(2, None), &unknown), GatewayPlan::OneByOne);
        assert_eq!(gateway_plan(&due(40, None), &unknown), GatewayPlan::All);
    }
}
