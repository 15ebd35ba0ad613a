//! How an emulator is set up: command-line flags (each with an
//! `SSLVPN_EMULATOR_*` environment twin) and the typed configuration they
//! become.
//!
//! Timings default to what a demo wants to show (the cloud does not flip at
//! once: a 2 s accept lag, then 8 s of `updating`); tests set them small or
//! pause tokio's clock. Timings and faults can be changed later through the
//! admin API.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::{
    clock::Clock,
    faults::FaultTable,
    fixtures::Fixtures,
    quotas::{QuotaSetting, QuotaTable},
    state::{FixtureError, World},
};

/// Flags of `sslvpn-gateway emulator`.
#[derive(clap::Args, Clone, Debug)]
pub struct EmulatorArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(
        long,
        env = "SSLVPN_EMULATOR_LISTEN",
        default_value = "127.0.0.1:18080"
    )]
    pub listen: SocketAddr,
    /// How long an accepted change waits before the gateway turns `updating`.
    #[arg(long, env = "SSLVPN_EMULATOR_ACCEPT_LAG", default_value_t = humantime::Duration::from(Timings::default().accept_lag))]
    pub accept_lag: humantime::Duration,
    /// How long the gateway stays `updating` while a change applies.
    #[arg(long, env = "SSLVPN_EMULATOR_APPLY_TIME", default_value_t = humantime::Duration::from(Timings::default().apply_time))]
    pub apply_time: humantime::Duration,
    /// After a change, how long another ModifySslVpnServer on the gateway is throttled.
    #[arg(long, env = "SSLVPN_EMULATOR_QUIET_PERIOD", default_value_t = humantime::Duration::from(Timings::default().quiet_period))]
    pub quiet_period: humantime::Duration,
    /// How long a ClientToken is remembered.
    #[arg(long, env = "SSLVPN_EMULATOR_IDEMPOTENCY_WINDOW", default_value_t = humantime::Duration::from(Timings::default().idempotency_window))]
    pub idempotency_window: humantime::Duration,
    /// A fixture document (JSON, see docs/emulator.md) instead of the default set.
    #[arg(long, env = "SSLVPN_EMULATOR_FIXTURES")]
    pub fixtures: Option<PathBuf>,
    /// A fault table (JSON: action or "*" → faults, see docs/emulator.md).
    #[arg(long, env = "SSLVPN_EMULATOR_FAULTS")]
    pub faults: Option<PathBuf>,
    /// Seed of the fault dice, for reproducible runs.
    #[arg(long, env = "SSLVPN_EMULATOR_SEED")]
    pub seed: Option<u64>,
    #[arg(
        long = "quota",
        env = "SSLVPN_EMULATOR_QUOTAS",
        value_name = "ACTION=COUNT/PERIOD",
        value_delimiter = ',',
        help = quota_help()
    )]
    pub quotas: Vec<QuotaSetting>,
}

/// `--quota`'s help, its default read off [`QuotaTable::default`].
fn quota_help() -> String {
    let default: Vec<String> = QuotaTable::default()
        .iter()
        .map(|(action, quota)| format!("{action}={quota}"))
        .collect();
    format!(
        "At most COUNT calls of ACTION per PERIOD for each account and region, then 400 Throttling.User \
         (repeatable; ACTION=off lifts a limit) [default: {}; the other actions unlimited]",
        default.join(",")
    )
}

/// The state machine's and the idempotency ledger's timings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timings {
    #[serde(rename = "accept_lag_ms", with = "millis")]
    pub accept_lag: Duration,
    #[serde(rename = "apply_time_ms", with = "millis")]
    pub apply_time: Duration,
    #[serde(rename = "quiet_period_ms", with = "millis")]
    pub quiet_period: Duration,
    #[serde(rename = "idempotency_window_ms", with = "millis")]
    pub idempotency_window: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            accept_lag: Duration::from_secs(2),
            apply_time: Duration::from_secs(8),
            quiet_period: Duration::from_secs(1),
            idempotency_window: Duration::from_secs(600),
        }
    }
}

/// A partial update of [`Timings`] (admin API `PUT /_emulator/timings`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimingsPatch {
    pub accept_lag_ms: Option<u64>,
    pub apply_time_ms: Option<u64>,
    pub quiet_period_ms: Option<u64>,
    pub idempotency_window_ms: Option<u64>,
}

/// The longest any timing may be: deadlines are `Instant`s, which must not
/// overflow whatever a caller sets.
pub const MAX_TIMING: Duration = Duration::from_secs(366 * 24 * 60 * 60);

impl Timings {
    /// These timings with none longer than [`MAX_TIMING`].
    pub fn clamped(self) -> Self {
        Self {
            accept_lag: self.accept_lag.min(MAX_TIMING),
            apply_time: self.apply_time.min(MAX_TIMING),
            quiet_period: self.quiet_period.min(MAX_TIMING),
            idempotency_window: self.idempotency_window.min(MAX_TIMING),
        }
    }

    /// These timings with the patch's fields replaced.
    pub fn patched(mut self, patch: TimingsPatch) -> Self {
        let set = |field: &mut Duration, ms: Option<u64>| {
            if let Some(ms) = ms {
                *field = Duration::from_millis(ms);
            }
        };
        set(&mut self.accept_lag, patch.accept_lag_ms);
        set(&mut self.apply_time, patch.apply_time_ms);
        set(&mut self.quiet_period, patch.quiet_period_ms);
        set(&mut self.idempotency_window, patch.idempotency_window_ms);
        self.clamped()
    }

    /// Small timings for tests over real HTTP.
    pub fn fast() -> Self {
        Self {
            accept_lag: Duration::from_millis(50),
            apply_time: Duration::from_millis(150),
            quiet_period: Duration::ZERO,
            idempotency_window: Duration::from_secs(600),
        }
    }
}

/// Durations as integer milliseconds in JSON.
pub(super) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Everything an emulator starts from.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    pub fixtures: Fixtures,
    pub timings: Timings,
    pub faults: FaultTable,
    pub clock: Clock,
    /// Seed of the fault dice (random when `None`).
    pub seed: Option<u64>,
    /// API rate limits per account and region.
    pub quotas: QuotaTable,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            fixtures: Fixtures::default_set(),
            timings: Timings::default(),
            faults: FaultTable::new(),
            clock: Clock::system(),
            seed: None,
            quotas: QuotaTable::default(),
        }
    }
}

impl EmulatorConfig {
    /// The default fixtures with small timings, for tests.
    pub fn fast() -> Self {
        Self {
            timings: Timings::fast(),
            ..Self::default()
        }
    }
}

/// Why flags could not become a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Fixtures { path: PathBuf, source: FixtureError },
}

impl TryFrom<EmulatorArgs> for EmulatorConfig {
    type Error = ConfigError;

    fn try_from(args: EmulatorArgs) -> Result<Self, ConfigError> {
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })
        };
        let fixtures = match &args.fixtures {
            Some(path) => {
                let fixtures =
                    Fixtures::from_json(&read(path)?).map_err(|e| ConfigError::Parse {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                World::load(&fixtures).map_err(|source| ConfigError::Fixtures {
                    path: path.clone(),
                    source,
                })?;
                fixtures
            }
            None => Fixtures::default_set(),
        };
        let faults = match &args.faults {
            Some(path) => {
                let table: FaultTable =
                    serde_json::from_str(&read(path)?).map_err(|e| ConfigError::Parse {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                for (action, f) in &table {
                    f.check().map_err(|message| ConfigError::Parse {
                        path: path.clone(),
                        message: format!("{action}: {message}"),
                    })?;
                }
                table
            }
            None => FaultTable::new(),
        };
        Ok(EmulatorConfig {
            fixtures,
            timings: Timings {
                accept_lag: args.accept_lag.into(),
                apply_time: args.apply_time.into(),
                quiet_period: args.quiet_period.into(),
                idempotency_window: args.idempotency_window.into(),
            },
            faults,
            clock: Clock::system(),
            seed: args.seed,
            quotas: QuotaTable::default().with(&args.quotas),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: EmulatorArgs,
    }

    #[test]
    fn flags_become_a_config() {
        let cli = Cli::try_parse_from([
            "x",
            "--accept-lag",
            "250ms",
            "--apply-time",
            "1s",
            "--listen",
            "127.0.0.1:0",
        ])
        .unwrap();
        assert_eq!(cli.args.listen.port(), 0);
        let config = EmulatorConfig::try_from(cli.args).unwrap();
        assert_eq!(config.timings.accept_lag, Duration::from_millis(250));
        assert_eq!(config.timings.apply_time, Duration::from_secs(1));
        assert_eq!(config.fixtures, Fixtures::default_set());
    }

    #[test]
    fn no_flags_give_the_defaults() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        let config = EmulatorConfig::try_from(cli.args).unwrap();
        let default = EmulatorConfig::default();
        assert_eq!(config.timings, default.timings);
        assert_eq!(config.quotas, QuotaTable::default());
        assert_eq!(default.quotas, QuotaTable::default());
    }

    #[test]
    fn quota_flags_patch_the_default_table() {
        let cli = Cli::try_parse_from([
            "x",
            "--quota",
            "ModifySslVpnServer=20/1s,DescribeSslVpnServers=100/1m",
            "--quota",
            "DescribeVpnGateway=off",
        ])
        .unwrap();
        let quotas = EmulatorConfig::try_from(cli.args).unwrap().quotas;
        let listed: Vec<String> = quotas.iter().map(|(a, q)| format!("{a}={q}")).collect();
        assert_eq!(
            listed,
            ["DescribeSslVpnServers=100/1m", "ModifySslVpnServer=20/1s"]
        );
    }

    #[test]
    fn a_bad_quota_flag_is_refused_with_the_reason() {
        let err = Cli::try_parse_from(["x", "--quota", "DescribeVpnGateway=600/sometimes"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--quota"), "{err}");
        assert!(err.contains("not a duration"), "{err}");
    }

    #[test]
    fn a_missing_fixture_file_is_an_error() {
        let cli = Cli::try_parse_from(["x", "--fixtures", "/nonexistent/fixtures.json"]).unwrap();
        assert!(matches!(
            EmulatorConfig::try_from(cli.args),
            Err(ConfigError::Read { .. })
        ));
    }

    #[test]
    fn huge_timings_are_clamped() {
        let t = Timings::default().patched(TimingsPatch {
            apply_time_ms: Some(u64::MAX),
            ..TimingsPatch::default()
        });
        assert_eq!(t.apply_time, MAX_TIMING);
        assert_eq!(t.accept_lag, Duration::from_secs(2));
    }

    #[test]
    fn timings_are_milliseconds_in_json() {
        let t: Timings = serde_json::from_str(
            r#"{"accept_lag_ms":5,"apply_time_ms":20,"quiet_period_ms":0,"idempotency_window_ms":60000}"#,
        )
        .unwrap();
        assert_eq!(t.apply_time, Duration::from_millis(20));
        assert_eq!(
            serde_json::to_value(t).unwrap()["idempotency_window_ms"],
            60000
        );
    }
}
