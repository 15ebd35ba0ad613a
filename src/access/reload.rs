//! Certificates, tokens and policy reloaded on SIGHUP, all or nothing.

use std::sync::Arc;

use super::Access;

/// Reloads `access` on every SIGHUP until `stop`.
#[cfg(unix)]
pub fn reload_on_sighup(access: Arc<Access>, stop: tokio_util::sync::CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGHUP; certificates will not reload");
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                got = hangups.recv() => if got.is_none() { return },
                () = stop.cancelled() => return,
            }
            match access.reload() {
                Ok(()) => tracing::info!("SIGHUP: certificates, tokens and policy reloaded"),
                Err(err) => {
                    tracing::error!(error = %err, "SIGHUP: reload failed; the previous configuration stays")
                }
            }
        }
    });
}

#[cfg(not(unix))]
pub fn reload_on_sighup(_: Arc<Access>, _: tokio_util::sync::CancellationToken) {}
