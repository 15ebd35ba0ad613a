//! The emulated cloud's resources and the asynchronous state machine that
//! changes them.
//!
//! A [`World`] is loaded from fixtures (checking every reference) and holds
//! regions, VPCs, gateways, SSL-VPN servers, IDaaS instances and access
//! keys, in the emulator's own records: the cloud's wire strings and a few
//! small types of its own, nothing of the gateway's. An accepted asynchronous change is a
//! [`Task`] on its gateway: the gateway still reads `active` until
//! `starts_at` (the cloud's accept lag), then `updating` until `done_at`,
//! then `active` again with the server's new configuration. Nothing runs in
//! the background: [`World::settle`] moves every task forward to "now" before
//! each request is answered, so paused test clocks and real ones behave the
//! same and no timer can fire half-way through a request.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::Ipv4Net;
use tokio::time::Instant;

use super::{
    fixtures::{self, AccessKey, Fixtures, IdaasInstance, Vpc},
    rules::{self, Cipher, Proto},
};

/// The `BusinessStatus` of a gateway locked for overdue payment.
pub const FINANCIAL_LOCKED: &str = "FinancialLocked";

/// An SSL-VPN server as the cloud stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SslVpnServer {
    pub ssl_vpn_server_id: String,
    pub vpn_gateway_id: String,
    pub region_id: String,
    pub name: String,
    /// Comma-separated CIDR blocks.
    pub local_subnet: String,
    pub client_ip_pool: String,
    pub proto: Proto,
    pub port: u16,
    pub cipher: Cipher,
    pub compress: bool,
    pub connections: i32,
    pub max_connections: i32,
    pub internet_ip: String,
    /// Unix milliseconds.
    pub create_time: i64,
    pub dns_servers: String,
    pub enable_multi_factor_auth: bool,
    pub idaas_instance_id: String,
    pub idaas_application_id: String,
    pub idaas_region_id: String,
    /// `EIAM 2.0` when bound to such an instance, else empty.
    pub idaas_instance_version: String,
    pub resource_group_id: String,
}

/// Why a fixture document cannot be loaded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FixtureError {
    #[error("fixture JSON: {0}")]
    Json(String),
    #[error("duplicate {kind} id {id:?}")]
    Duplicate { kind: &'static str, id: String },
    #[error("{kind} {id:?} refers to unknown {target} {target_id:?}")]
    Dangling {
        kind: &'static str,
        id: String,
        target: &'static str,
        target_id: String,
    },
    #[error("{kind} {id:?}: {why}")]
    Invalid {
        kind: &'static str,
        id: String,
        why: String,
    },
}

/// A gateway and what is happening to it.
#[derive(Clone, Debug)]
pub struct Gateway {
    pub record: fixtures::VpnGateway,
    /// The accepted change not yet finished.
    pub task: Option<Task>,
    /// Until then another ModifySslVpnServer is throttled.
    pub quiet_until: Option<Instant>,
}

impl Gateway {
    /// The cloud's `Tag`: system labels as a JSON-encoded string, with the
    /// labels DescribeVpnGateway's reference lists (`description` is "only
    /// for internal use" and left out).
    pub fn system_tag(&self) -> String {
        let r = &self.record;
        serde_json::json!({
            "VpnEnableBgp": r.enable_bgp.to_string(),
            "VisuallySsl": "true",
            "PbrPriority": "true",
            "VpnNewImage": r.supports_multi_factor_auth.to_string(),
            "VpnVersion": r.vpn_version,
            "IDaaSNewVersion": r.supports_idaas2.to_string(),
        })
        .to_string()
    }

    /// Dual-tunnel: it has a second vSwitch.
    pub fn is_dual_tunnel(&self) -> bool {
        !self.record.disaster_recovery_v_switch_id.is_empty()
    }

    pub fn is_financially_locked(&self) -> bool {
        self.record.business_status == FINANCIAL_LOCKED
    }
}

/// An accepted asynchronous modification of one server.
#[derive(Clone, Debug)]
pub struct Task {
    pub ssl_vpn_server_id: String,
    /// The server's configuration once the task is done.
    pub target: SslVpnServer,
    /// When the gateway turns `updating` (acceptance + accept lag).
    pub starts_at: Instant,
    /// When the change is visible and the gateway `active` again.
    pub done_at: Instant,
    /// The end of the quiet period that follows.
    pub quiet_until: Instant,
}

/// Everything the emulated cloud contains.
#[derive(Clone, Debug, Default)]
pub struct World {
    pub regions: BTreeSet<String>,
    pub vpcs: BTreeMap<String, Vpc>,
    pub gateways: BTreeMap<String, Gateway>,
    pub servers: BTreeMap<String, SslVpnServer>,
    pub idaas: BTreeMap<String, IdaasInstance>,
    pub keys: BTreeMap<String, AccessKey>,
}

fn insert_unique<T>(
    map: &mut BTreeMap<String, T>,
    kind: &'static str,
    id: &str,
    value: T,
) -> Result<(), FixtureError> {
    if id.is_empty() {
        return Err(FixtureError::Invalid {
            kind,
            id: id.into(),
            why: "the id is empty".into(),
        });
    }
    if map.insert(id.to_owned(), value).is_some() {
        return Err(FixtureError::Duplicate {
            kind,
            id: id.to_owned(),
        });
    }
    Ok(())
}

impl World {
    /// Builds the world a fixture document describes, refusing dangling or
    /// duplicate ids and values the cloud could not hold.
    pub fn load(f: &Fixtures) -> Result<World, FixtureError> {
        let mut w = World::default();
        let keys = if f.access_keys.is_empty() {
            Fixtures::default_access_keys()
        } else {
            f.access_keys.clone()
        };
        for key in keys {
            let id = key.access_key_id.clone();
            insert_unique(&mut w.keys, "access key", &id, key)?;
        }
        w.regions.extend(f.regions.iter().cloned());
        for vpc in &f.vpcs {
            parse_net("vpc", &vpc.vpc_id, &vpc.cidr_block)?;
            for dest in &vpc.route_destinations {
                parse_net("vpc", &vpc.vpc_id, dest)?;
            }
            w.regions.insert(vpc.region_id.clone());
            insert_unique(&mut w.vpcs, "vpc", &vpc.vpc_id, vpc.clone())?;
        }
        for gw in &f.vpn_gateways {
            let vpc = w
                .vpcs
                .get(&gw.vpc_id)
                .ok_or_else(|| FixtureError::Dangling {
                    kind: "vpn gateway",
                    id: gw.vpn_gateway_id.clone(),
                    target: "vpc",
                    target_id: gw.vpc_id.clone(),
                })?;
            if vpc.region_id != gw.region_id {
                return Err(FixtureError::Invalid {
                    kind: "vpn gateway",
                    id: gw.vpn_gateway_id.clone(),
                    why: format!(
                        "region {} differs from its VPC's {}",
                        gw.region_id, vpc.region_id
                    ),
                });
            }
            let gateway = Gateway {
                record: gw.clone(),
                task: None,
                quiet_until: None,
            };
            insert_unique(&mut w.gateways, "vpn gateway", &gw.vpn_gateway_id, gateway)?;
        }
        for idaas in &f.idaas_instances {
            insert_unique(
                &mut w.idaas,
                "idaas instance",
                &idaas.instance_id,
                idaas.clone(),
            )?;
        }
        let mut served_gateways = BTreeSet::new();
        for s in &f.ssl_vpn_servers {
            let server = w.server_from_fixture(s)?;
            if !served_gateways.insert(s.vpn_gateway_id.clone()) {
                return Err(FixtureError::Invalid {
                    kind: "ssl vpn server",
                    id: s.ssl_vpn_server_id.clone(),
                    why: format!("gateway {} already has an SSL server", s.vpn_gateway_id),
                });
            }
            insert_unique(
                &mut w.servers,
                "ssl vpn server",
                &s.ssl_vpn_server_id,
                server,
            )?;
        }
        Ok(w)
    }

    fn server_from_fixture(
        &self,
        s: &fixtures::SslVpnServer,
    ) -> Result<SslVpnServer, FixtureError> {
        let invalid = |why: String| FixtureError::Invalid {
            kind: "ssl vpn server",
            id: s.ssl_vpn_server_id.clone(),
            why,
        };
        if !rules::is_server_id(&s.ssl_vpn_server_id) {
            return Err(invalid(
                "an SSL server id is vss- followed by lowercase letters and digits".into(),
            ));
        }
        let gw = self
            .gateways
            .get(&s.vpn_gateway_id)
            .ok_or_else(|| FixtureError::Dangling {
                kind: "ssl vpn server",
                id: s.ssl_vpn_server_id.clone(),
                target: "vpn gateway",
                target_id: s.vpn_gateway_id.clone(),
            })?;
        parse_net("ssl vpn server", &s.ssl_vpn_server_id, &s.client_ip_pool)?;
        for entry in s.local_subnet.split(',') {
            parse_net("ssl vpn server", &s.ssl_vpn_server_id, entry.trim())?;
        }
        let proto = Proto::from_wire(&s.proto)
            .ok_or_else(|| invalid(format!("unknown proto {:?}", s.proto)))?;
        let cipher = Cipher::from_wire(&s.cipher)
            .ok_or_else(|| invalid(format!("unknown cipher {:?}", s.cipher)))?;
        Ok(SslVpnServer {
            ssl_vpn_server_id: s.ssl_vpn_server_id.clone(),
            vpn_gateway_id: s.vpn_gateway_id.clone(),
            region_id: gw.record.region_id.clone(),
            name: s.name.clone(),
            local_subnet: s.local_subnet.clone(),
            client_ip_pool: s.client_ip_pool.clone(),
            proto,
            port: s.port,
            cipher,
            compress: s.compress,
            connections: s.connections,
            max_connections: gw.record.ssl_max_connections,
            // The gateway's InternetIp, as DescribeSslVpnServers documents it
            // ("the public IP address of the VPN gateway"), even on a
            // dual-tunnel gateway, where that is no SSL-VPN address: which
            // address the cloud reports there is unconfirmed, and this is
            // the case a client must mend from SslVpnInternetIp.
            internet_ip: gw.record.internet_ip.clone(),
            create_time: s.create_time,
            dns_servers: s.dns_servers.clone(),
            enable_multi_factor_auth: s.enable_multi_factor_auth,
            idaas_instance_id: s.idaas_instance_id.clone(),
            idaas_application_id: s.idaas_application_id.clone(),
            idaas_region_id: s.idaas_region_id.clone(),
            idaas_instance_version: self
                .idaas_version_of(s.enable_multi_factor_auth, &s.idaas_instance_id),
            resource_group_id: s.resource_group_id.clone(),
        })
    }

    /// `IDaaSInstanceVersion`: "EIAM 2.0" only when bound to a 2.0 instance.
    pub fn idaas_version_of(&self, mfa: bool, instance_id: &str) -> String {
        match self.idaas.get(instance_id) {
            Some(i) if mfa && i.version == fixtures::EIAM_2 => fixtures::EIAM_2.to_owned(),
            _ => String::new(),
        }
    }

    /// The world as a fixture document (what `load` would rebuild).
    pub fn to_fixtures(&self) -> Fixtures {
        Fixtures {
            access_keys: self.keys.values().cloned().collect(),
            regions: self.regions.iter().cloned().collect(),
            vpcs: self.vpcs.values().cloned().collect(),
            vpn_gateways: self.gateways.values().map(|g| g.record.clone()).collect(),
            ssl_vpn_servers: self
                .servers
                .values()
                .map(|s| fixtures::SslVpnServer {
                    ssl_vpn_server_id: s.ssl_vpn_server_id.clone(),
                    vpn_gateway_id: s.vpn_gateway_id.clone(),
                    name: s.name.clone(),
                    local_subnet: s.local_subnet.clone(),
                    client_ip_pool: s.client_ip_pool.clone(),
                    proto: s.proto.as_wire().to_owned(),
                    port: s.port,
                    cipher: s.cipher.as_wire().to_owned(),
                    compress: s.compress,
                    connections: s.connections,
                    dns_servers: s.dns_servers.clone(),
                    enable_multi_factor_auth: s.enable_multi_factor_auth,
                    idaas_instance_id: s.idaas_instance_id.clone(),
                    idaas_application_id: s.idaas_application_id.clone(),
                    idaas_region_id: s.idaas_region_id.clone(),
                    resource_group_id: s.resource_group_id.clone(),
                    create_time: s.create_time,
                })
                .collect(),
            idaas_instances: self.idaas.values().cloned().collect(),
        }
    }

    /// Moves every task forward to `now`: gateways whose accept lag is over
    /// turn `updating`; finished tasks apply their change and turn the
    /// gateway `active`. Returns how many tasks finished.
    pub fn settle(&mut self, now: Instant) -> usize {
        let mut finished = Vec::new();
        for (id, gw) in &mut self.gateways {
            let Some(task) = &gw.task else { continue };
            if now >= task.done_at {
                gw.record.status = "active".into();
                gw.quiet_until = Some(task.quiet_until);
                if let Some(task) = gw.task.take() {
                    finished.push(task);
                }
            } else if now >= task.starts_at && gw.record.status != "updating" {
                tracing::debug!(gateway = %id, "emulated change started");
                gw.record.status = "updating".into();
            }
        }
        for task in &finished {
            tracing::debug!(server = %task.ssl_vpn_server_id, "emulated change applied");
            self.servers
                .insert(task.ssl_vpn_server_id.clone(), task.target.clone());
        }
        finished.len()
    }

    /// The server and its gateway.
    pub fn server_and_gateway(&self, server_id: &str) -> Option<(&SslVpnServer, &Gateway)> {
        let server = self.servers.get(server_id)?;
        let gw = self.gateways.get(&server.vpn_gateway_id)?;
        Some((server, gw))
    }

    /// The SSL servers in the same VPC as `server`, other than it.
    pub fn vpc_neighbours<'a>(
        &'a self,
        server: &'a SslVpnServer,
    ) -> impl Iterator<Item = &'a SslVpnServer> + 'a {
        let vpc = self
            .gateways
            .get(&server.vpn_gateway_id)
            .map(|g| g.record.vpc_id.clone());
        self.servers.values().filter(move |other| {
            other.ssl_vpn_server_id != server.ssl_vpn_server_id
                && self
                    .gateways
                    .get(&other.vpn_gateway_id)
                    .map(|g| &g.record.vpc_id)
                    == vpc.as_ref()
        })
    }
}

fn parse_net(kind: &'static str, id: &str, cidr: &str) -> Result<Ipv4Net, FixtureError> {
    cidr.parse().map_err(|_| FixtureError::Invalid {
        kind,
        id: id.to_owned(),
        why: format!("{cidr:?} is not an IPv4 CIDR block"),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_default_set_loads() {
        let w = World::load(&Fixtures::default_set()).unwrap();
        assert!(w.regions.len() >= 2);
        let (server, gw) = w.server_and_gateway("vss-hz1primary").unwrap();
        assert_eq!(gw.record.vpn_gateway_id, "vpn-hz1primary");
        assert_eq!(server.max_connections, 50);
        let neighbours: Vec<_> = w
            .vpc_neighbours(server)
            .map(|s| s.ssl_vpn_server_id.as_str())
            .collect();
        assert_eq!(neighbours, ["vss-hz1peer"]);
        let statuses: BTreeSet<&str> = w
            .gateways
            .values()
            .map(|g| g.record.status.as_str())
            .collect();
        assert_eq!(
            statuses,
            BTreeSet::from(["active", "deleting", "init", "provisioning", "updating"])
        );
        assert!(w.gateways.values().any(Gateway::is_financially_locked));
        assert!(
            w.gateways
                .values()
                .any(|g| !g.record.supports_multi_factor_auth)
        );
    }

    #[test]
    fn dangling_and_duplicate_ids_are_refused() {
        let mut f = Fixtures::default_set();
        f.ssl_vpn_servers[0].vpn_gateway_id = "vpn-nowhere".into();
        assert!(matches!(
            World::load(&f),
            Err(FixtureError::Dangling { .. })
        ));

        let mut f = Fixtures::default_set();
        let dup = f.vpcs[0].clone();
        f.vpcs.push(dup);
        assert!(matches!(
            World::load(&f),
            Err(FixtureError::Duplicate { .. })
        ));

        let mut f = Fixtures::default_set();
        f.ssl_vpn_servers[0].cipher = "rot13".into();
        assert!(matches!(World::load(&f), Err(FixtureError::Invalid { .. })));
    }

    #[test]
    fn round_trips_through_fixtures() {
        let w = World::load(&Fixtures::default_set()).unwrap();
        let again = World::load(&w.to_fixtures()).unwrap();
        assert_eq!(w.servers, again.servers);
        assert_eq!(w.to_fixtures(), again.to_fixtures());
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_lags_then_updates_then_applies() {
        let mut w = World::load(&Fixtures::default_set()).unwrap();
        let t0 = Instant::now();
        let mut target = w.servers["vss-hz1primary"].clone();
        target.port = 1195;
        w.gateways.get_mut("vpn-hz1primary").unwrap().task = Some(Task {
            ssl_vpn_server_id: "vss-hz1primary".into(),
            target,
            starts_at: t0 + Duration::from_secs(2),
            done_at: t0 + Duration::from_secs(10),
            quiet_until: t0 + Duration::from_secs(11),
        });
        let status = |w: &World| w.gateways["vpn-hz1primary"].record.status.clone();

        assert_eq!(w.settle(t0 + Duration::from_secs(1)), 0);
        assert_eq!(status(&w), "active");
        assert_eq!(w.servers["vss-hz1primary"].port, 1194);
        assert_eq!(w.settle(t0 + Duration::from_secs(2)), 0);
        assert_eq!(status(&w), "updating");
        assert_eq!(w.servers["vss-hz1primary"].port, 1194);
        assert_eq!(w.settle(t0 + Duration::from_secs(10)), 1);
        assert_eq!(status(&w), "active");
        assert_eq!(w.servers["vss-hz1primary"].port, 1195);
        assert!(w.gateways["vpn-hz1primary"].task.is_none());
        assert_eq!(
            w.gateways["vpn-hz1primary"].quiet_until,
            Some(t0 + Duration::from_secs(11))
        );
    }
}
