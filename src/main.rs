//! The `sslvpn-gateway` command: a thin CLI over the library.
//!
//! `serve` runs the gateway (with `--emulator`, on the embedded VPC API
//! emulator: no cloud account needed); `emulator` runs the emulator alone;
//! `client` calls a running gateway.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sslvpn_gateway::{
    client::{self, ClientArgs},
    cloud::Credentials,
    emulator::{self, Emulator, EmulatorArgs, EmulatorConfig},
    server,
    server::config::{CredentialSource, ServeArgs, ServeConfig},
    telemetry::{self, LogArgs, TelemetryConfig},
};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(name = "sslvpn-gateway", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Subcommand)]
// Parsed once at start-up: the size of the serve flags does not matter.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Run the gRPC gateway.
    Serve(ServeArgs),
    /// Run the Alibaba Cloud VPC API emulator alone.
    Emulator(EmulatorArgs),
    /// Call a running gateway: modify, status, watch.
    Client(ClientArgs),
}

/// `serve --emulator` reads the emulator's settings (timings, fixtures,
/// faults) from the same `SSLVPN_EMULATOR_*` variables as `emulator` does.
#[derive(Parser)]
struct EmulatorEnv {
    #[command(flatten)]
    args: EmulatorArgs,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = match telemetry::init(TelemetryConfig::from_env(&cli.log)) {
        Ok(t) => t,
        Err(err) => {
            eprintln!("sslvpn-gateway: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Emulator(args) => run_emulator(args).await,
        Command::Client(args) => {
            // The client has an exit code per outcome, not just FAILURE.
            let code = client::run(args).await;
            telemetry.shutdown().await;
            return code;
        }
    };
    // After the server drained: the last calls' spans go out too.
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sslvpn-gateway: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), BoxError> {
    let with_emulator = args.emulator;
    let mut config = ServeConfig::from(args);
    // Refuse an exposed plaintext or anonymous listener before anything starts.
    config.security.check(config.listen)?;
    // Kept alive for as long as the gateway serves.
    let _emulator = if with_emulator {
        let args = EmulatorEnv::try_parse_from(["sslvpn-gateway"])?.args;
        let handle = emulator::spawn(EmulatorConfig::try_from(args)?).await?;
        println!("embedded VPC API emulator on {}", handle.base_url());
        print!("{}", handle.emulator().banner());
        config.cloud.endpoint = Some(handle.base_url());
        config.credentials = CredentialSource::Static(Credentials::new(
            emulator::DEMO_ACCESS_KEY_ID,
            emulator::DEMO_ACCESS_KEY_SECRET,
        ));
        Some(handle)
    } else {
        None
    };
    let listener = server::bind(config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    // The bound address, not the asked one: with port 0 the kernel picks,
    // and scripts and tests read the port from this line.
    println!(
        "gateway listening on {} (gRPC, reflection, health)",
        listener.local_addr()?
    );
    server::run_on(config, listener, shutdown_signal()).await?;
    Ok(())
}

async fn run_emulator(args: EmulatorArgs) -> Result<(), BoxError> {
    let listen = args.listen;
    let emulator = Emulator::try_new(EmulatorConfig::try_from(args)?)?;
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    // The first line is what scripts read to find the port.
    println!("emulator listening on http://{addr}");
    print!("{}", emulator.banner());
    println!("admin API: http://{addr}/_emulator/");
    emulator.serve(listener, shutdown_signal()).await?;
    tracing::info!("emulator stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown signal received");
}
