//! `sslvpn-gateway client`: the command-line client of the gateway.
//!
//! It exists so that a person at a terminal, or a shell script in a
//! pipeline, can change a server and follow the change without writing a
//! gRPC client: one flag per field of the contract, a live spinner on a
//! terminal, plain lines in a pipe, `--output json` for scripts, and one
//! exit code per outcome ([`Outcome`]). It speaks only the public contract,
//! like any other client would, and keeps no state: a watch that loses its
//! replica resumes on another (`--addr` may name several) with the same
//! `operation_id`, and a modify it retries keeps its `client_token`, so the
//! change applies once.

pub mod connect;
pub mod json;
mod progress;
pub mod render;

use std::{io::Write, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Subcommand, ValueEnum};
use tokio::time::Instant;
use tonic::{Code, Status};

use self::{
    connect::{Connector, GatewayClient},
    progress::Progress,
};
use crate::pb;

/// What a client command ended with; each has its own exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The call succeeded; a watched change reached SUCCEEDED.
    Succeeded,
    /// The gateway or the cloud refused the call, or the change FAILED.
    Failed,
    /// The request is malformed: bad flags or INVALID_ARGUMENT.
    BadInput,
    /// The watch reached TIMED_OUT, or a deadline passed.
    TimedOut,
    /// No gateway could be reached (or it stayed UNAVAILABLE).
    Unavailable,
    /// Interrupted (Ctrl-C).
    Interrupted,
}

impl Outcome {
    /// The process exit code (documented in the README; scripts rely on it).
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Succeeded => 0,
            Outcome::Failed => 1,
            Outcome::BadInput => 2,
            Outcome::TimedOut => 3,
            Outcome::Unavailable => 4,
            Outcome::Interrupted => 130,
        }
    }

    /// The outcome of a call that ended with `code`.
    pub fn from_code(code: Code) -> Self {
        match code {
            Code::Ok => Outcome::Succeeded,
            Code::InvalidArgument | Code::OutOfRange => Outcome::BadInput,
            // tonic reports its server-side request timeout as CANCELLED.
            Code::DeadlineExceeded | Code::Cancelled => Outcome::TimedOut,
            Code::Unavailable => Outcome::Unavailable,
            _ => Outcome::Failed,
        }
    }

    /// The outcome a terminal watch phase stands for (None while in progress).
    pub fn from_phase(phase: pb::Phase) -> Option<Self> {
        match phase {
            pb::Phase::Succeeded => Some(Outcome::Succeeded),
            pb::Phase::Failed => Some(Outcome::Failed),
            pb::Phase::TimedOut => Some(Outcome::TimedOut),
            pb::Phase::Unspecified | pb::Phase::Pending | pb::Phase::Applying => None,
        }
    }
}

/// `sslvpn-gateway client` flags.
#[derive(Args, Clone, Debug)]
pub struct ClientArgs {
    #[command(flatten)]
    pub connection: ConnectArgs,

    /// Output format: `text` for people (a live spinner on a terminal, plain
    /// lines otherwise) or `json` for scripts (one JSON object per line).
    #[arg(
        long,
        global = true,
        env = "SSLVPN_OUTPUT",
        value_enum,
        default_value = "text",
        help_heading = "Output"
    )]
    pub output: OutputFormat,

    #[command(subcommand)]
    pub command: ClientCommand,
}

/// How to reach the gateway.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Connection")]
pub struct ConnectArgs {
    /// The gateway: `http://HOST:PORT`, `https://HOST:PORT`, or `HOST:PORT`
    /// (https when a TLS flag is given). Several (repeated or
    /// comma-separated) are tried in turn: a watch whose gateway goes away
    /// resumes on the next, a modify is retried there with the same
    /// client token.
    #[arg(
        long = "addr",
        global = true,
        env = "SSLVPN_ADDR",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:50051"
    )]
    pub addrs: Vec<String>,

    /// PEM file of the CA that signed the gateway's certificate (turns TLS on).
    #[arg(long, global = true, env = "SSLVPN_CA_CERT")]
    pub ca_cert: Option<PathBuf>,

    /// PEM certificate presenting this client (mutual TLS); needs --client-key.
    #[arg(long, global = true, env = "SSLVPN_CLIENT_CERT")]
    pub client_cert: Option<PathBuf>,

    /// PEM private key of --client-cert.
    #[arg(long, global = true, env = "SSLVPN_CLIENT_KEY")]
    pub client_key: Option<PathBuf>,

    /// The name to verify in the gateway's certificate, when it differs from
    /// the address's host (e.g. connecting by IP).
    #[arg(long, global = true, env = "SSLVPN_TLS_SERVER_NAME")]
    pub tls_server_name: Option<String>,

    /// Bearer token sent as `authorization: Bearer TOKEN` on every call.
    #[arg(long, global = true, env = "SSLVPN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// How long to wait for a connection to a gateway.
    #[arg(long, global = true, env = "SSLVPN_CONNECT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,

    /// Deadline of each modify and status call.
    #[arg(long, global = true, env = "SSLVPN_RPC_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub rpc_timeout: Duration,
}

/// `--output` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// The client's commands.
#[derive(Subcommand, Clone, Debug)]
pub enum ClientCommand {
    /// Change the given settings of a server (nothing else), optionally
    /// following the change until it is done (--watch).
    Modify(ModifyArgs),
    /// Show a server's configuration and its gateway's state.
    Status(ServerArgs),
    /// Follow a server until its change completes (or forever with --follow).
    Watch(WatchArgs),
}

/// Which server.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Server")]
pub struct ServerArgs {
    /// The server's region, e.g. `cn-hangzhou`.
    #[arg(long, env = "SSLVPN_REGION")]
    pub region: String,
    /// The SSL-VPN server's id, `vss-...`.
    #[arg(long, visible_alias = "ssl-vpn-server-id")]
    pub server: String,
}

const CHANGES: &str = "Changes (only the flags given are sent)";

/// `client modify` flags: one per changeable field; only those given are sent.
#[derive(Args, Clone, Debug)]
pub struct ModifyArgs {
    #[command(flatten)]
    pub target: ServerArgs,
    /// Idempotency token (printable ASCII, at most 64 characters). A UUID is
    /// generated when absent, so the client's own retries apply once.
    #[arg(long, help_heading = CHANGES)]
    pub client_token: Option<String>,
    /// New name (1-100 characters).
    #[arg(long, help_heading = CHANGES)]
    pub name: Option<String>,
    /// New client CIDR block, /16 to /29, e.g. `192.168.0.0/24`.
    #[arg(long, help_heading = CHANGES)]
    pub client_ip_pool: Option<String>,
    /// New local CIDR blocks, comma-separated, e.g. `10.0.0.0/8,172.16.0.0/16`.
    #[arg(long, help_heading = CHANGES)]
    pub local_subnet: Option<String>,
    /// New tunnel protocol.
    #[arg(long, value_enum, help_heading = CHANGES)]
    pub proto: Option<ProtoArg>,
    /// New cipher.
    #[arg(long, value_enum, help_heading = CHANGES)]
    pub cipher: Option<CipherArg>,
    /// New port (1-65535, not a reserved one).
    #[arg(long, help_heading = CHANGES)]
    pub port: Option<u32>,
    /// Data compression on or off (true/false, on/off, yes/no).
    #[arg(long, value_parser = clap::builder::BoolishValueParser::new(), help_heading = CHANGES)]
    pub compress: Option<bool>,
    /// Two-factor authentication on or off; on needs --idaas-instance-id and
    /// --idaas-region-id, and --idaas-application-id for an EIAM 2.0 instance.
    #[arg(long, value_parser = clap::builder::BoolishValueParser::new(), help_heading = CHANGES)]
    pub enable_multi_factor_auth: Option<bool>,
    /// IDaaS EIAM instance for two-factor authentication.
    #[arg(long, help_heading = CHANGES)]
    pub idaas_instance_id: Option<String>,
    /// Region of the IDaaS instance.
    #[arg(long, help_heading = CHANGES)]
    pub idaas_region_id: Option<String>,
    /// IDaaS application (EIAM 2.0).
    #[arg(long, help_heading = CHANGES)]
    pub idaas_application_id: Option<String>,
    /// Check everything (the cloud's checks included) and change nothing;
    /// exit code 0 when every check passed.
    #[arg(long, conflicts_with = "watch", help_heading = CHANGES)]
    pub dry_run: bool,
    /// After the change is accepted, follow it until it completes; the exit
    /// code is then the watch's.
    #[arg(long, help_heading = "Watch")]
    pub watch: bool,
    #[command(flatten)]
    pub watch_options: WatchOptions,
}

/// `client watch` flags.
#[derive(Args, Clone, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub target: ServerArgs,
    /// The operation id a modify returned: SUCCEEDED then also means the
    /// requested values are in place.
    #[arg(long, help_heading = "Watch")]
    pub operation_id: Option<String>,
    /// Keep streaming after completion, until interrupted (dashboards).
    #[arg(long, help_heading = "Watch")]
    pub follow: bool,
    #[command(flatten)]
    pub watch_options: WatchOptions,
}

/// How long and how stubbornly to watch.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Watch")]
pub struct WatchOptions {
    /// Give up (TIMED_OUT, exit code 3) after this long, resumes included.
    /// Default: the gateway's (10 minutes).
    #[arg(long = "timeout", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// How many times in a row to resume a watch whose gateway went away or
    /// could not be reached before giving up (exit code 4).
    #[arg(long, default_value_t = 5)]
    pub resume_attempts: u32,
}

/// `--proto` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProtoArg {
    Tcp,
    Udp,
}

/// `--cipher` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CipherArg {
    #[value(name = "aes-128-cbc")]
    Aes128Cbc,
    #[value(name = "aes-192-cbc")]
    Aes192Cbc,
    #[value(name = "aes-256-cbc")]
    Aes256Cbc,
    None,
}

impl From<ProtoArg> for pb::Protocol {
    fn from(p: ProtoArg) -> Self {
        match p {
            ProtoArg::Tcp => pb::Protocol::Tcp,
            ProtoArg::Udp => pb::Protocol::Udp,
        }
    }
}

impl From<CipherArg> for pb::Cipher {
    fn from(c: CipherArg) -> Self {
        match c {
            CipherArg::Aes128Cbc => pb::Cipher::Aes128Cbc,
            CipherArg::Aes192Cbc => pb::Cipher::Aes192Cbc,
            CipherArg::Aes256Cbc => pb::Cipher::Aes256Cbc,
            CipherArg::None => pb::Cipher::None,
        }
    }
}

impl ModifyArgs {
    /// The request these flags describe (the token is filled in by `run`).
    pub fn request(&self) -> pb::ModifySslVpnServerRequest {
        pb::ModifySslVpnServerRequest {
            region_id: self.target.region.clone(),
            ssl_vpn_server_id: self.target.server.clone(),
            client_token: self.client_token.clone().unwrap_or_default(),
            name: self.name.clone(),
            client_ip_pool: self.client_ip_pool.clone(),
            local_subnet: self.local_subnet.clone(),
            proto: self
                .proto
                .map_or(pb::Protocol::Unspecified, pb::Protocol::from) as i32,
            cipher: self
                .cipher
                .map_or(pb::Cipher::Unspecified, pb::Cipher::from) as i32,
            port: self.port,
            compress: self.compress,
            enable_multi_factor_auth: self.enable_multi_factor_auth,
            idaas_instance_id: self.idaas_instance_id.clone(),
            idaas_region_id: self.idaas_region_id.clone(),
            idaas_application_id: self.idaas_application_id.clone(),
            validate_only: self.dry_run,
        }
    }
}

/// Why a command could not complete.
#[derive(Debug)]
pub enum Failure {
    /// Bad local input: unreadable files, malformed addresses or token.
    Usage(String),
    /// No gateway answered.
    Unreachable(String),
    /// A gateway answered with an error status.
    Status(Status),
}

impl Failure {
    pub fn outcome(&self) -> Outcome {
        match self {
            Failure::Usage(_) => Outcome::BadInput,
            Failure::Unreachable(_) => Outcome::Unavailable,
            Failure::Status(s) => Outcome::from_code(s.code()),
        }
    }
}

/// Runs one client command and returns its exit code.
pub async fn run(args: ClientArgs) -> ExitCode {
    let mut progress = Progress::new(args.output);
    let outcome = tokio::select! {
        outcome = execute(&args, &mut progress) => outcome,
        () = interrupted() => Outcome::Interrupted,
    };
    if outcome == Outcome::Interrupted {
        progress.note("interrupted; a change already accepted goes on in the cloud");
    }
    progress.clear();
    let _ = std::io::stdout().flush();
    ExitCode::from(outcome.exit_code())
}

async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn execute(args: &ClientArgs, progress: &mut Progress) -> Outcome {
    let connector = match Connector::new(&args.connection) {
        Ok(c) => c,
        Err(failure) => return progress.failure(&failure),
    };
    match &args.command {
        ClientCommand::Status(target) => status(&connector, target, progress).await,
        ClientCommand::Modify(m) => modify(&connector, m, progress).await,
        ClientCommand::Watch(w) => {
            let request = pb::WatchSslVpnServerRequest {
                region_id: w.target.region.clone(),
                ssl_vpn_server_id: w.target.server.clone(),
                operation_id: w.operation_id.clone().unwrap_or_default(),
                follow: w.follow,
                timeout: None,
            };
            watch(&connector, request, &w.watch_options, progress).await
        }
    }
}

async fn status(connector: &Connector, target: &ServerArgs, progress: &mut Progress) -> Outcome {
    let request = pb::GetSslVpnServerStatusRequest {
        region_id: target.region.clone(),
        ssl_vpn_server_id: target.server.clone(),
    };
    let timeout = connector.rpc_timeout();
    let reply = connector
        .unary(|mut client: GatewayClient| {
            let request = request.clone();
            async move {
                let mut request = tonic::Request::new(request);
                request.set_timeout(timeout);
                client.get_ssl_vpn_server_status(request).await
            }
        })
        .await;
    match reply {
        Ok(reply) => {
            progress.status(&reply);
            Outcome::Succeeded
        }
        Err(failure) => progress.failure(&failure),
    }
}

async fn modify(connector: &Connector, args: &ModifyArgs, progress: &mut Progress) -> Outcome {
    let mut request = args.request();
    // A dry run changes nothing: it needs no token to be retried safely.
    if request.client_token.is_empty() && !args.dry_run {
        // Chosen here, not by the gateway, so a retry on another address
        // (or a second run with the printed token) cannot apply twice.
        request.client_token = uuid::Uuid::new_v4().to_string();
    }
    let timeout = connector.rpc_timeout();
    let reply = connector
        .unary(|mut client: GatewayClient| {
            let request = request.clone();
            async move {
                let mut request = tonic::Request::new(request);
                request.set_timeout(timeout);
                client.modify_ssl_vpn_server(request).await
            }
        })
        .await;
    let reply = match reply {
        Ok(reply) => reply,
        Err(failure) => {
            let outcome = progress.failure(&failure);
            if matches!(outcome, Outcome::Unavailable | Outcome::TimedOut) {
                // The change may have been accepted: say how to retry safely.
                progress.note(&format!(
                    "the change may or may not have been accepted; retrying with --client-token {} applies it at most once",
                    request.client_token
                ));
            }
            return outcome;
        }
    };
    progress.modified(&reply, &args.target, args.watch);
    let operation = reply.operation.clone().unwrap_or_default();
    if !args.watch || operation.done || reply.validate_only {
        return Outcome::Succeeded;
    }
    let request = pb::WatchSslVpnServerRequest {
        region_id: args.target.region.clone(),
        ssl_vpn_server_id: args.target.server.clone(),
        operation_id: operation.id,
        follow: false,
        timeout: None,
    };
    watch(connector, request, &args.watch_options, progress).await
}

/// Follows a server, resuming on the next address when a gateway goes away.
async fn watch(
    connector: &Connector,
    request: pb::WatchSslVpnServerRequest,
    options: &WatchOptions,
    progress: &mut Progress,
) -> Outcome {
    let started = Instant::now();
    let follow = request.follow;
    let mut index = 0;
    let mut failures = 0u32;
    let mut last_failure: Option<Failure> = None;
    loop {
        if failures > 0 {
            if failures > options.resume_attempts {
                let failure = last_failure
                    .unwrap_or_else(|| Failure::Unreachable("no gateway answered".to_owned()));
                return progress.failure(&failure);
            }
            // Back off a little; a replacement replica needs a moment.
            let backoff = Duration::from_millis(200 * 2u64.pow(failures.min(4) - 1));
            tokio::time::sleep(backoff).await;
        }
        let mut request = request.clone();
        if let Some(budget) = options.timeout {
            // The timeout spans resumes: each one asks only for what is left.
            let left = budget.saturating_sub(started.elapsed());
            if left.is_zero() {
                return progress.timed_out_locally(budget);
            }
            request.timeout = prost_types::Duration::try_from(left).ok();
        }
        let addr = connector.addr(index).to_owned();
        let mut client = match connector.connect(index).await {
            Ok(client) => client,
            Err(failure) => {
                progress.note(&describe(&failure));
                last_failure = Some(failure);
                failures += 1;
                index += 1;
                continue;
            }
        };
        if failures > 0 {
            progress.note(&format!("resuming the watch on {addr}"));
        }
        let mut stream = match client.watch_ssl_vpn_server(request).await {
            Ok(response) => response.into_inner(),
            Err(status) if resumable(&status) => {
                progress.note(&format!("{addr}: {}", status.message()));
                last_failure = Some(Failure::Status(status));
                failures += 1;
                index += 1;
                continue;
            }
            Err(status) => return progress.failure(&Failure::Status(status)),
        };
        let ended = progress.follow(&mut stream, follow).await;
        match ended {
            Ok(Some(outcome)) => return outcome,
            // The stream ended with OK before a terminal message (a
            // `--follow` stream the gateway closed): nothing went wrong.
            Ok(None) => return Outcome::Succeeded,
            Err(status) if resumable(&status) => {
                progress.note(&format!(
                    "the watch on {addr} ended: {} ({:?}); resuming",
                    status.message(),
                    status.code()
                ));
                last_failure = Some(Failure::Status(status));
                // The stream worked: this is a fresh run of failures.
                failures = 1;
                index += 1;
            }
            Err(status) => return progress.failure(&Failure::Status(status)),
        }
    }
}

/// A watch is read-only, so any sign of a lost gateway is worth a resume:
/// UNAVAILABLE (a draining replica says so) and UNKNOWN (a connection cut
/// mid-stream surfaces as an h2 error).
fn resumable(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::Unknown)
}

fn describe(failure: &Failure) -> String {
    match failure {
        Failure::Usage(m) | Failure::Unreachable(m) => m.clone(),
        Failure::Status(s) => format!("{:?}: {}", s.code(), s.message()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        client: ClientArgs,
    }

    #[test]
    fn every_code_has_an_outcome_and_the_exit_codes_are_distinct() {
        assert_eq!(Outcome::from_code(Code::InvalidArgument), Outcome::BadInput);
        assert_eq!(
            Outcome::from_code(Code::DeadlineExceeded),
            Outcome::TimedOut
        );
        assert_eq!(Outcome::from_code(Code::Unavailable), Outcome::Unavailable);
        assert_eq!(Outcome::from_code(Code::NotFound), Outcome::Failed);
        assert_eq!(
            Outcome::from_code(Code::FailedPrecondition),
            Outcome::Failed
        );
        let codes: std::collections::HashSet<u8> = [
            Outcome::Succeeded,
            Outcome::Failed,
            Outcome::BadInput,
            Outcome::TimedOut,
            Outcome::Unavailable,
            Outcome::Interrupted,
        ]
        .iter()
        .map(|o| o.exit_code())
        .collect();
        assert_eq!(codes.len(), 6);
        assert_eq!(Outcome::Succeeded.exit_code(), 0);
    }

    #[test]
    fn only_the_flags_given_are_sent() {
        let cli = Cli::try_parse_from([
            "x",
            "modify",
            "--region",
            "cn-hangzhou",
            "--server",
            "vss-a",
            "--port",
            "1195",
            "--proto",
            "udp",
            "--cipher",
            "aes-256-cbc",
            "--compress",
            "off",
        ])
        .unwrap();
        let ClientCommand::Modify(m) = &cli.client.command else {
            panic!("modify expected");
        };
        let r = m.request();
        assert_eq!(r.port, Some(1195));
        assert_eq!(r.proto(), pb::Protocol::Udp);
        assert_eq!(r.cipher(), pb::Cipher::Aes256Cbc);
        assert_eq!(r.compress, Some(false));
        assert_eq!(r.name, None);
        assert_eq!(r.client_ip_pool, None);
        assert_eq!(r.enable_multi_factor_auth, None);
        assert!(r.client_token.is_empty(), "generated at send time");
    }

    #[test]
    fn connection_flags_may_follow_the_command_and_addresses_split() {
        let cli = Cli::try_parse_from([
            "x",
            "status",
            "--region",
            "cn-hangzhou",
            "--server",
            "vss-a",
            "--addr",
            "127.0.0.1:1,127.0.0.1:2",
            "--output",
            "json",
        ])
        .unwrap();
        assert_eq!(
            cli.client.connection.addrs,
            vec!["127.0.0.1:1".to_owned(), "127.0.0.1:2".to_owned()]
        );
        assert_eq!(cli.client.output, OutputFormat::Json);
    }

    #[test]
    fn dry_run_asks_validate_only_and_cannot_watch() {
        let parse = |extra: &[&str]| {
            let mut args = vec![
                "x", "modify", "--region", "r", "--server", "s", "--port", "1195",
            ];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args)
        };
        let cli = parse(&["--dry-run"]).unwrap();
        let ClientCommand::Modify(m) = &cli.client.command else {
            panic!("modify expected");
        };
        assert!(m.request().validate_only);
        let ClientCommand::Modify(m) = &parse(&[]).unwrap().client.command else {
            panic!("modify expected");
        };
        assert!(!m.request().validate_only);
        let err = parse(&["--dry-run", "--watch"]).err().unwrap();
        assert_eq!(err.exit_code(), 2, "nothing to watch after a dry run");
    }

    #[test]
    fn a_bad_enum_value_is_a_usage_error() {
        let err = Cli::try_parse_from([
            "x", "modify", "--region", "r", "--server", "s", "--proto", "sctp",
        ])
        .err()
        .unwrap();
        // clap exits with 2 on usage errors: the "bad input" code.
        assert_eq!(err.exit_code(), 2);
    }
}
