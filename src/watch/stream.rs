//! One watch stream: reads its gateway's poller, judges each observation,
//! and sends a message whenever what the caller sees would change.
//!
//! Each stream has its own producer task and a small bounded buffer, so a
//! slow reader only ever delays itself: while it is blocked the poller goes
//! on publishing, and when it resumes it reads the newest state (after at
//! most the few messages already buffered). The task notices a departed
//! client and a shutdown even while blocked on a send; the receiving end
//! ends the stream at a shutdown without waiting for the task.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
    time::{Duration, SystemTime},
};

use tokio::{sync::mpsc, time::Instant};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::Instrument;

use super::WatchMetrics;
use super::{
    hub::{Observation, Subscription},
    phase::{Phase, Tracker, Verdict},
};
use crate::{domain::SslVpnServer, operation::Operation, pb, service::convert};

/// Messages buffered per stream before the producer waits for the reader.
const STREAM_BUFFER: usize = 4;

/// What one watch asks for.
pub struct WatchSpec {
    pub ssl_vpn_server_id: String,
    pub operation: Option<Operation>,
    pub follow: bool,
    /// When to give up (ignored with `follow`).
    pub timeout: Duration,
}

/// Messages travel boxed: tokio's channel allocates its slots 32 at a time
/// whatever its bound, and an inline message (~700 bytes, a whole
/// `SslVpnServer`) made that block most of an idle stream's memory.
type Item = Result<Box<pb::WatchSslVpnServerResponse>, Status>;

/// The caller's end of one stream. It checks the shutdown itself: a reader
/// that fell behind would otherwise drain stale buffered messages and see
/// the stream end OK (the producer, blocked on the full buffer, cannot add
/// the UNAVAILABLE); this way every stream ends UNAVAILABLE at its next
/// read, with the hint to resume. A check, not a stored future: whenever
/// this end waits for a message, a shutdown wakes it anyway, through the
/// producer's own resume message or its departure.
pub struct WatchReceiver {
    messages: ReceiverStream<Item>,
    shutdown: CancellationToken,
    resume: Option<Status>,
    ended: bool,
}

impl Stream for WatchReceiver {
    type Item = Result<pb::WatchSslVpnServerResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.shutdown.is_cancelled() {
            self.ended = true;
            let status = self
                .resume
                .take()
                .unwrap_or_else(|| Status::unavailable("the gateway is shutting down"));
            return Poll::Ready(Some(Err(status)));
        }
        let item = ready!(Pin::new(&mut self.messages).poll_next(cx));
        if item.is_none() {
            self.ended = true;
        }
        Poll::Ready(item.map(|r| r.map(|m| *m)))
    }
}

/// Starts the producer of one stream.
pub fn spawn(
    spec: WatchSpec,
    subscription: Subscription,
    shutdown: CancellationToken,
) -> WatchReceiver {
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    // A child of the watch call; linked to the shared poller it reads.
    let span = tracing::info_span!(
        "watch",
        otel.name = "watch stream",
        otel.kind = "producer",
        ssl_vpn_server_id = %spec.ssl_vpn_server_id,
        follow = spec.follow,
    );
    span.follows_from(subscription.poller_span());
    let resume = resume_status(&spec);
    let receiver = WatchReceiver {
        messages: ReceiverStream::new(rx),
        shutdown: shutdown.clone(),
        resume: Some(resume),
        ended: false,
    };
    tokio::spawn(produce(spec, subscription, tx, shutdown).instrument(span));
    receiver
}

type Tx = mpsc::Sender<Item>;

enum Step {
    Continue,
    Stop,
}

async fn produce(spec: WatchSpec, mut sub: Subscription, tx: Tx, shutdown: CancellationToken) {
    let started_wall = spec
        .operation
        .as_ref()
        .map_or_else(SystemTime::now, Operation::accepted_at);
    let deadline = Instant::now() + spec.timeout;
    let mut tracker = Tracker::new(spec.operation.clone());
    let mut last_sent: Option<pb::WatchSslVpnServerResponse> = None;
    let mut last_server: Option<SslVpnServer> = None;
    let mut last_gateway: Option<pb::GatewayState> = None;
    let mut completed = false;
    let _active = sub.metrics().stream_opened();
    let mut last_phase: Option<Phase> = None;

    loop {
        if let Some(observation) = sub.latest() {
            let (message, verdict) = judge(
                &spec,
                &mut tracker,
                &observation,
                &mut last_server,
                &mut last_gateway,
                started_wall,
            );
            sub.set_urgent(matches!(verdict.phase, Phase::Pending | Phase::Applying));
            if last_phase.replace(verdict.phase) != Some(verdict.phase) {
                // One span event per phase the caller sees change.
                tracing::debug!(phase = ?verdict.phase, "watch phase changed");
            }
            if differs(last_sent.as_ref(), &message) {
                if let Step::Stop = send(&tx, &shutdown, Ok(Box::new(message.clone()))).await {
                    return;
                }
                last_sent = Some(message);
            }
            if verdict.phase.is_terminal() && !completed {
                tracing::info!(phase = ?verdict.phase, "watch complete");
                record_completion(sub.metrics(), spec.operation.as_ref(), verdict.phase);
                if !spec.follow || verdict.phase == Phase::Failed {
                    return;
                }
                completed = true;
                tracker = Tracker::steady();
            } else if completed && verdict.phase == Phase::Failed {
                // Following past completion: a failure (the server or its
                // gateway gone, the account locked) still ends the stream.
                tracing::info!(phase = ?verdict.phase, "watch failed while following");
                return;
            }
        }

        let timed_out = async {
            if spec.follow || completed {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep_until(deadline).await;
        };
        tokio::select! {
            alive = sub.changed() => if !alive {
                let _ = tx.send(Err(resume_status(&spec))).await;
                return;
            },
            () = timed_out => {
                let message = pb::WatchSslVpnServerResponse {
                    gateway: last_gateway.clone(),
                    phase: pb::Phase::TimedOut as i32,
                    ssl_vpn_server: last_server.as_ref().map(convert::ssl_vpn_server),
                    error: None,
                    elapsed: Some(convert::duration(elapsed_since(started_wall))),
                    pending_fields: last_sent.map(|m| m.pending_fields).unwrap_or_default(),
                };
                let _ = send(&tx, &shutdown, Ok(Box::new(message))).await;
                return;
            }
            () = tx.closed() => return,
            () = shutdown.cancelled() => {
                let _ = tx.send(Err(resume_status(&spec))).await;
                return;
            }
        }
    }
}

/// Feeds `sslvpn_modification_completion_seconds`: the time from the
/// operation's acceptance to the first observation of its end, once per
/// operation however many streams watch it.
fn record_completion(metrics: &WatchMetrics, operation: Option<&Operation>, phase: Phase) {
    let Some(op) = operation else { return };
    let phase = match phase {
        Phase::Succeeded => "succeeded",
        Phase::Failed => "failed",
        // The watcher gave up, not the change.
        Phase::TimedOut | Phase::Pending | Phase::Applying => return,
    };
    let key = format!("{}/{}", op.client_token, op.accepted_at_ms);
    metrics.modification_completed(&key, phase, elapsed_since(op.accepted_at()));
}

/// Sends one message, giving up when the client leaves or the server stops.
async fn send(tx: &Tx, shutdown: &CancellationToken, item: Item) -> Step {
    tokio::select! {
        sent = tx.send(item) => if sent.is_ok() { Step::Continue } else { Step::Stop },
        () = shutdown.cancelled() => Step::Stop,
    }
}

fn resume_status(spec: &WatchSpec) -> Status {
    let hint = if spec.operation.is_some() {
        "resume the watch with the same operation_id"
    } else {
        "watch again"
    };
    Status::unavailable(format!(
        "the gateway is shutting down; {hint} on any replica"
    ))
}

fn elapsed_since(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

/// Builds the message for an observation.
fn judge(
    spec: &WatchSpec,
    tracker: &mut Tracker,
    observation: &Observation,
    last_server: &mut Option<SslVpnServer>,
    last_gateway: &mut Option<pb::GatewayState>,
    started: SystemTime,
) -> (pb::WatchSslVpnServerResponse, Verdict) {
    let verdict = match observation {
        Observation::State {
            snapshot,
            observed_at,
        } => {
            let server = snapshot.server(&spec.ssl_vpn_server_id);
            *last_gateway = Some(convert::gateway_state(&snapshot.gateway, *observed_at));
            if let Some(server) = server {
                *last_server = Some(server.clone());
            }
            tracker.observe(&snapshot.gateway, server)
        }
        Observation::Gone(error) => Verdict {
            phase: Phase::Failed,
            pending: Vec::new(),
            error: Some(error.clone()),
        },
    };
    let message = pb::WatchSslVpnServerResponse {
        gateway: last_gateway.clone(),
        phase: phase(verdict.phase) as i32,
        ssl_vpn_server: last_server.as_ref().map(convert::ssl_vpn_server),
        error: verdict
            .error
            .as_ref()
            .map(crate::error::Error::to_rpc_status),
        elapsed: Some(convert::duration(elapsed_since(started))),
        pending_fields: verdict
            .pending
            .iter()
            .map(|f| f.proto_name().to_owned())
            .collect(),
    };
    (message, verdict)
}

fn phase(p: Phase) -> pb::Phase {
    match p {
        Phase::Pending => pb::Phase::Pending,
        Phase::Applying => pb::Phase::Applying,
        Phase::Succeeded => pb::Phase::Succeeded,
        Phase::Failed => pb::Phase::Failed,
        Phase::TimedOut => pb::Phase::TimedOut,
    }
}

/// Whether `next` tells the caller anything new: the time fields always
/// move, so they do not count. Compared in place, with no copies: this runs
/// for every watcher of a gateway at each of its changes. The patterns name
/// every field, so a field added to the contract must be decided on here.
fn differs(
    last: Option<&pb::WatchSslVpnServerResponse>,
    next: &pb::WatchSslVpnServerResponse,
) -> bool {
    let Some(last) = last else { return true };
    let pb::WatchSslVpnServerResponse {
        gateway,
        phase,
        ssl_vpn_server,
        error,
        elapsed: _,
        pending_fields,
    } = next;
    let same_gateway = match (&last.gateway, gateway) {
        (Some(a), Some(b)) => {
            let pb::GatewayState {
                vpn_gateway_id,
                status,
                business_status,
                observed_at: _,
            } = b;
            a.vpn_gateway_id == *vpn_gateway_id
                && a.status == *status
                && a.business_status == *business_status
        }
        (None, None) => true,
        _ => false,
    };
    !(same_gateway
        && last.phase == *phase
        && last.ssl_vpn_server == *ssl_vpn_server
        && last.error == *error
        && last.pending_fields == *pending_fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver(shutdown: &CancellationToken) -> (Tx, WatchReceiver) {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let receiver = WatchReceiver {
            messages: ReceiverStream::new(rx),
            shutdown: shutdown.clone(),
            resume: Some(Status::unavailable("resume with the same operation_id")),
            ended: false,
        };
        (tx, receiver)
    }

    fn message(phase: pb::Phase) -> Item {
        Ok(Box::new(pb::WatchSslVpnServerResponse {
            phase: phase as i32,
            ..Default::default()
        }))
    }

    #[test]
    fn only_what_the_caller_sees_counts_as_a_change() {
        let base = pb::WatchSslVpnServerResponse {
            gateway: Some(pb::GatewayState {
                vpn_gateway_id: "vpn-a".into(),
                status: pb::GatewayStatus::Active as i32,
                business_status: "Normal".into(),
                observed_at: Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: 0,
                }),
            }),
            phase: pb::Phase::Pending as i32,
            elapsed: Some(prost_types::Duration {
                seconds: 1,
                nanos: 0,
            }),
            pending_fields: vec!["port".into()],
            ..Default::default()
        };
        assert!(differs(None, &base));
        let mut later = base.clone();
        later.elapsed = Some(prost_types::Duration {
            seconds: 9,
            nanos: 0,
        });
        if let Some(g) = later.gateway.as_mut() {
            g.observed_at = Some(prost_types::Timestamp {
                seconds: 9,
                nanos: 0,
            });
        }
        assert!(!differs(Some(&base), &later), "time alone is no news");
        let mut busy = later.clone();
        if let Some(g) = busy.gateway.as_mut() {
            g.status = pb::GatewayStatus::Updating as i32;
        }
        assert!(differs(Some(&base), &busy));
        let mut applied = later.clone();
        applied.pending_fields.clear();
        assert!(differs(Some(&base), &applied));
        let mut done = later;
        done.phase = pb::Phase::Succeeded as i32;
        assert!(differs(Some(&base), &done));
    }

    #[tokio::test]
    async fn a_shutdown_ends_a_lagging_stream_unavailable_at_once() {
        use tokio_stream::StreamExt;
        let shutdown = CancellationToken::new();
        let (tx, mut rx) = receiver(&shutdown);
        // A reader that fell behind: the buffer is full, the producer stuck.
        for _ in 0..STREAM_BUFFER {
            tx.send(message(pb::Phase::Applying)).await.unwrap();
        }
        shutdown.cancel();
        let first = rx.next().await.expect("an item").unwrap_err();
        assert_eq!(first.code(), tonic::Code::Unavailable);
        assert!(first.message().contains("resume"), "{first:?}");
        assert!(rx.next().await.is_none(), "and nothing after it");
    }

    #[tokio::test]
    async fn without_a_shutdown_messages_pass_in_order_and_end_with_the_producer() {
        use tokio_stream::StreamExt;
        let shutdown = CancellationToken::new();
        let (tx, rx) = receiver(&shutdown);
        tx.send(message(pb::Phase::Pending)).await.unwrap();
        tx.send(message(pb::Phase::Succeeded)).await.unwrap();
        drop(tx);
        let phases: Vec<pb::Phase> = rx.map(|m| m.unwrap().phase()).collect().await;
        assert_eq!(phases, [pb::Phase::Pending, pb::Phase::Succeeded]);
    }
}
