//! The cloud's API rate limits: calls of an action per main account and
//! region, beyond which it answers 400 `Throttling.User`.
//!
//! Alibaba Cloud budgets API calls per account, region and API (the VPN
//! quota reference gives DescribeVpnGateway 600 calls per 60 s), and a client
//! that overspends is throttled, along with every other tool of the account.
//! Without the limit an emulator lets a gateway spend what the cloud would
//! refuse, and no test sees it; with it, a test or a benchmark can count the
//! calls that would have been throttled. The window slides: a call is
//! admitted when fewer than COUNT calls were admitted in the PERIOD before
//! it. The cloud does not document its window; a sliding one is the
//! strictest reading of "COUNT per PERIOD", so a client that is never
//! throttled here is not throttled by a fixed window either. Throttled calls
//! do not use the budget (they change nothing); requests naming no region
//! the emulator has are not counted (they reach no region's budget).

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fmt,
    str::FromStr,
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{actions::Action, config::millis, errors::ApiError};

/// The message of a throttled call, as the cloud words it.
pub const THROTTLED_MESSAGE: &str = "Request was denied due to user flow control.";

/// At most `count` calls in any `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub count: u64,
    #[serde(rename = "period_ms", with = "millis")]
    pub period: Duration,
}

impl Quota {
    pub fn new(count: u64, period: Duration) -> Self {
        Self { count, period }
    }
}

/// `600/1m`: the flag's spelling.
impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.count,
            humantime::format_duration(self.period)
        )
    }
}

/// Action name → its limit; an action not in the table is not limited.
/// JSON: `{"DescribeVpnGateway": {"count": 600, "period_ms": 60000}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct QuotaTable(BTreeMap<String, Quota>);

impl Default for QuotaTable {
    /// The documented DescribeVpnGateway limit (help.aliyun.com,
    /// "api-vpc-2016-04-28-quota-vpns"); the other actions unlimited.
    fn default() -> Self {
        let mut table = Self::unlimited();
        table.set(
            Action::DescribeVpnGateway,
            Some(Quota::new(600, Duration::from_secs(60))),
        );
        table
    }
}

/// A PUT body: `null` or a count of 0 removes an action's limit.
impl<'de> Deserialize<'de> for QuotaTable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entries = BTreeMap::<String, Option<Quota>>::deserialize(d)?;
        let mut table = Self::unlimited();
        for (name, quota) in entries {
            let action = known_action(&name).map_err(serde::de::Error::custom)?;
            if let Some(q) = quota {
                check(&q).map_err(|why| serde::de::Error::custom(format!("{name}: {why}")))?;
            }
            table.set(action, quota);
        }
        Ok(table)
    }
}

impl QuotaTable {
    /// No limits at all.
    pub fn unlimited() -> Self {
        Self(BTreeMap::new())
    }

    /// Sets or (with `None` or a count of 0) removes `action`'s limit.
    pub fn set(&mut self, action: Action, quota: Option<Quota>) {
        match quota.filter(|q| q.count > 0) {
            Some(q) => self.0.insert(action.name().to_owned(), q),
            None => self.0.remove(action.name()),
        };
    }

    pub fn get(&self, action: &str) -> Option<Quota> {
        self.0.get(action).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, Quota)> {
        self.0.iter().map(|(name, q)| (name.as_str(), *q))
    }

    /// These limits with the flags' settings applied in order.
    pub fn with(mut self, settings: &[QuotaSetting]) -> Self {
        for s in settings {
            self.set(s.action, s.quota);
        }
        self
    }
}

fn known_action(name: &str) -> Result<Action, String> {
    Action::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
        format!("unknown action {name:?} (one of {})", known.join(", "))
    })
}

fn check(quota: &Quota) -> Result<(), String> {
    if quota.count > 0 && quota.period.is_zero() {
        return Err("the period must be longer than 0".into());
    }
    Ok(())
}

/// One `--quota` flag: `ACTION=COUNT/PERIOD` (PERIOD in humantime: `60s`,
/// `1m`, `500ms`), or `ACTION=off` (as is a COUNT of 0) to lift a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaSetting {
    pub action: Action,
    /// `None`: the action is not limited.
    pub quota: Option<Quota>,
}

impl FromStr for QuotaSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, limit) = s.split_once('=').ok_or_else(|| {
            format!(
                "{s:?} is not ACTION=COUNT/PERIOD (e.g. DescribeVpnGateway=600/60s) or ACTION=off"
            )
        })?;
        let action = known_action(name.trim())?;
        let limit = limit.trim();
        if limit.eq_ignore_ascii_case("off") {
            return Ok(Self {
                action,
                quota: None,
            });
        }
        let (count, period) = limit
            .split_once('/')
            .ok_or_else(|| format!("{limit:?} is not COUNT/PERIOD (e.g. 600/60s) or off"))?;
        let count: u64 = count
            .trim()
            .parse()
            .map_err(|_| format!("the count {count:?} is not a whole number"))?;
        let period: Duration = humantime::parse_duration(period.trim())
            .map_err(|e| format!("the period {period:?} is not a duration (e.g. 60s): {e}"))?;
        let quota = Quota::new(count, period);
        check(&quota)?;
        Ok(Self {
            action,
            quota: Some(quota).filter(|q| q.count > 0),
        })
    }
}

/// Whose budget a call draws from.
type Key = (String, String, &'static str);

/// The limits and the calls each budget has admitted within its period.
#[derive(Clone, Debug)]
pub struct Quotas {
    table: QuotaTable,
    /// (account, region, action) → when its admitted calls of the last
    /// period were made, oldest first: at most `count` instants each.
    calls: HashMap<Key, VecDeque<Instant>>,
    /// Idle budgets are dropped when the map reaches this size, so the
    /// sweep costs amortised O(1) per call.
    sweep_at: usize,
}

impl Quotas {
    pub fn new(table: QuotaTable) -> Self {
        Self {
            table,
            calls: HashMap::new(),
            sweep_at: 1024,
        }
    }

    pub fn table(&self) -> &QuotaTable {
        &self.table
    }

    /// Replaces the limits; every budget starts afresh.
    pub fn replace(&mut self, table: QuotaTable) {
        *self = Self::new(table);
    }

    /// Admits a call of `action` by `account` in `region` made `now`, or
    /// answers `Throttling.User` with the wait until it would be admitted.
    pub fn admit(
        &mut self,
        account: &str,
        region: &str,
        action: Action,
        now: Instant,
    ) -> Result<(), ApiError> {
        let Some(quota) = self.table.get(action.name()) else {
            return Ok(());
        };
        if self.calls.len() >= self.sweep_at {
            self.sweep(now);
        }
        let calls = self
            .calls
            .entry((account.to_owned(), region.to_owned(), action.name()))
            .or_default();
        while calls
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= quota.period)
        {
            calls.pop_front();
        }
        if (calls.len() as u64) < quota.count {
            calls.push_back(now);
            return Ok(());
        }
        // Full, so not empty: the oldest call frees the next place.
        let oldest = calls.front().copied().unwrap_or(now);
        let wait = quota
            .period
            .saturating_sub(now.saturating_duration_since(oldest));
        let wait_ms = u64::try_from(wait.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        Err(ApiError::throttled(THROTTLED_MESSAGE, wait_ms))
    }

    /// Drops the budgets with no call left in their period.
    fn sweep(&mut self, now: Instant) {
        let table = &self.table;
        self.calls.retain(|(_, _, action), calls| {
            let period = table.get(action).map_or(Duration::ZERO, |q| q.period);
            calls
                .back()
                .is_some_and(|t| now.saturating_duration_since(*t) < period)
        });
        self.sweep_at = (self.calls.len() * 2).max(1024);
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    const ACCOUNT: &str = "1234567890123456";
    const REGION: &str = "cn-hangzhou";

    fn quotas(count: u64, period: Duration) -> Quotas {
        Quotas::new(QuotaTable::unlimited().with(&[QuotaSetting {
            action: Action::DescribeVpnGateway,
            quota: Some(Quota::new(count, period)),
        }]))
    }

    fn describe(q: &mut Quotas, account: &str, region: &str, now: Instant) -> Result<(), ApiError> {
        q.admit(account, region, Action::DescribeVpnGateway, now)
    }

    #[test]
    fn the_default_is_the_documented_describe_vpn_gateway_limit() {
        let table = QuotaTable::default();
        assert_eq!(
            table.iter().collect::<Vec<_>>(),
            [(
                "DescribeVpnGateway",
                Quota::new(600, Duration::from_secs(60))
            )]
        );
        assert_eq!(
            serde_json::to_value(&table).unwrap(),
            serde_json::json!({"DescribeVpnGateway": {"count": 600, "period_ms": 60000}})
        );
    }

    #[test]
    fn the_call_past_the_count_is_throttled_with_the_wait() {
        let mut q = quotas(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(describe(&mut q, ACCOUNT, REGION, t0 + Duration::from_secs(i)).is_ok());
        }
        let err = describe(&mut q, ACCOUNT, REGION, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.code, "Throttling.User");
        assert_eq!(err.message, THROTTLED_MESSAGE);
        // The oldest call leaves the window 50 s later.
        assert_eq!(err.retry_after_ms, Some(50_000));
    }

    #[test]
    fn the_window_slides() {
        let mut q = quotas(2, Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(describe(&mut q, ACCOUNT, REGION, at(0)).is_ok());
        assert!(describe(&mut q, ACCOUNT, REGION, at(6)).is_ok());
        // A fixed window starting at 0 would admit this one at 10 s.
        assert!(describe(&mut q, ACCOUNT, REGION, at(9)).is_err());
        assert!(describe(&mut q, ACCOUNT, REGION, at(10)).is_ok());
        // The call at 6 s is still within the period; the one at 10 s too.
        let err = describe(&mut q, ACCOUNT, REGION, at(15)).unwrap_err();
        assert_eq!(err.retry_after_ms, Some(1_000));
        assert!(describe(&mut q, ACCOUNT, REGION, at(16)).is_ok());
    }

    #[test]
    fn throttled_calls_do_not_use_the_budget() {
        let mut q = quotas(1, Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(describe(&mut q, ACCOUNT, REGION, t0).is_ok());
        for s in 1..10 {
            assert!(describe(&mut q, ACCOUNT, REGION, t0 + Duration::from_secs(s)).is_err());
        }
        assert!(describe(&mut q, ACCOUNT, REGION, t0 + Duration::from_secs(10)).is_ok());
    }

    #[test]
    fn budgets_are_per_account_region_and_action() {
        let mut q = quotas(1, Duration::from_secs(60));
        let now = Instant::now();
        assert!(describe(&mut q, ACCOUNT, REGION, now).is_ok());
        assert!(describe(&mut q, ACCOUNT, REGION, now).is_err());
        assert!(describe(&mut q, "other", REGION, now).is_ok());
        assert!(describe(&mut q, ACCOUNT, "cn-shanghai", now).is_ok());
        // Unlimited actions are never throttled.
        for _ in 0..10 {
            assert!(
                q.admit(ACCOUNT, REGION, Action::DescribeSslVpnServers, now)
                    .is_ok()
            );
        }
    }

    #[test]
    fn replacing_the_table_starts_every_budget_afresh() {
        let mut q = quotas(1, Duration::from_secs(60));
        let now = Instant::now();
        assert!(describe(&mut q, ACCOUNT, REGION, now).is_ok());
        assert!(describe(&mut q, ACCOUNT, REGION, now).is_err());
        q.replace(q.table().clone());
        assert!(describe(&mut q, ACCOUNT, REGION, now).is_ok());
        q.replace(QuotaTable::unlimited());
        assert!(describe(&mut q, ACCOUNT, REGION, now).is_ok());
        assert!(q.table().is_empty());
    }

    #[test]
    fn idle_budgets_are_swept() {
        let mut q = quotas(1, Duration::from_secs(1));
        let t0 = Instant::now();
        for i in 0..1100 {
            assert!(describe(&mut q, &format!("old-{i}"), REGION, t0).is_ok());
        }
        let later = t0 + Duration::from_secs(2);
        for i in 0..1000 {
            assert!(describe(&mut q, &format!("new-{i}"), REGION, later).is_ok());
        }
        // The old accounts' calls left their period: their budgets went.
        assert!(q.calls.len() <= 1000, "{}", q.calls.len());
    }

    #[test]
    fn settings_parse() {
        let s: QuotaSetting = "DescribeVpnGateway=600/60s".parse().unwrap();
        assert_eq!(s.action, Action::DescribeVpnGateway);
        assert_eq!(s.quota, Some(Quota::new(600, Duration::from_secs(60))));
        let s: QuotaSetting = " ModifySslVpnServer = 5 / 500ms ".parse().unwrap();
        assert_eq!(s.quota, Some(Quota::new(5, Duration::from_millis(500))));
        for off in [
            "DescribeVpnGateway=off",
            "DescribeVpnGateway=OFF",
            "DescribeVpnGateway=0/1m",
        ] {
            let s: QuotaSetting = off.parse().unwrap();
            assert_eq!(
                (s.action, s.quota),
                (Action::DescribeVpnGateway, None),
                "{off}"
            );
        }
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        let cases = [
            ("DescribeVpnGateway", "ACTION=COUNT/PERIOD"),
            ("DescribeVpnGateways2=1/1s", "unknown action"),
            ("=1/1s", "unknown action"),
            ("DescribeVpnGateway=600", "COUNT/PERIOD"),
            ("DescribeVpnGateway=-1/1s", "not a whole number"),
            ("DescribeVpnGateway=lots/1s", "not a whole number"),
            ("DescribeVpnGateway=600/soon", "not a duration"),
            ("DescribeVpnGateway=600/0s", "longer than 0"),
        ];
        for (flag, why) in cases {
            let err = flag.parse::<QuotaSetting>().unwrap_err();
            assert!(err.contains(why), "{flag}: {err}");
        }
    }

    #[test]
    fn flags_patch_the_default() {
        let parse = |s: &str| s.parse::<QuotaSetting>().unwrap();
        let table = QuotaTable::default().with(&[parse("ModifySslVpnServer=20/1s")]);
        assert_eq!(
            table.get("DescribeVpnGateway"),
            QuotaTable::default().get("DescribeVpnGateway")
        );
        assert_eq!(
            table.get("ModifySslVpnServer"),
            Some(Quota::new(20, Duration::from_secs(1)))
        );
        let table = table.with(&[parse("DescribeVpnGateway=off")]);
        assert_eq!(table.get("DescribeVpnGateway"), None);
    }

    #[test]
    fn a_put_body_replaces_the_table() {
        let table: QuotaTable = serde_json::from_str(
            r#"{"DescribeVpnGateway": null, "ModifySslVpnServer": {"count": 0, "period_ms": 1000},
                "DescribeSslVpnServers": {"count": 7, "period_ms": 1500}}"#,
        )
        .unwrap();
        assert_eq!(
            table.iter().collect::<Vec<_>>(),
            [(
                "DescribeSslVpnServers",
                Quota::new(7, Duration::from_millis(1500))
            )]
        );
        let back: QuotaTable =
            serde_json::from_value(serde_json::to_value(&table).unwrap()).unwrap();
        assert_eq!(back, table);
        for (body, why) in [
            (
                r#"{"Nope": {"count": 1, "period_ms": 1}}"#,
                "unknown action",
            ),
            (
                r#"{"DescribeVpnGateway": {"count": 1, "period_ms": 0}}"#,
                "longer than 0",
            ),
            (r#"{"DescribeVpnGateway": {"count": 1}}"#, "period_ms"),
            (
                r#"{"DescribeVpnGateway": {"count": -1, "period_ms": 1}}"#,
                "invalid value",
            ),
        ] {
            let err = serde_json::from_str::<QuotaTable>(body)
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{body}: {err}");
        }
    }
}
