//! The `sslvpn-gateway` command. For now only `emulator`, which runs the
//! VPC API emulator alone; the gateway's own commands join it here.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sslvpn_gateway::emulator::{Emulator, EmulatorArgs, EmulatorConfig};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(name = "sslvpn-gateway", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Alibaba Cloud VPC API emulator alone.
    Emulator(EmulatorArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Emulator(args) => runtime.block_on(emulator(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn emulator(args: EmulatorArgs) -> Result<(), Box<dyn std::error::Error>> {
    let listen = args.listen;
    let emu = Emulator::try_new(EmulatorConfig::try_from(args)?)?;
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    // The first line is what scripts read to find the port.
    println!("emulator listening on http://{addr}");
    print!("{}", emu.banner());
    println!("admin API: http://{addr}/_emulator/");
    emu.serve(listener, shutdown_signal()).await?;
    tracing::info!("emulator stopped");
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
