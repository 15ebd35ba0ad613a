//! One watch stream: reads its gateway's poller, judges each observation,
//! and emits a [`WatchEvent`] whenever what the caller sees would change.
//! Events are domain values; the service turns them into messages.
//!
//! Each stream has its own producer task and a small bounded buffer, so a
//! slow reader only ever delays itself: while it is blocked the poller goes
//! on publishing, and when it resumes it reads the newest state (after at
//! most the few messages already buffered). The task notices a departed
//! client and a shutdown even while blocked on a send; the receiving end
//! ends the stream at a shutdown without waiting for the task.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::{Duration, SystemTime},
};

use tokio::{sync::mpsc, time::Instant};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::WatchMetrics;
use super::{
    hub::{Observation, Subscription},
    phase::{Phase, Tracker, Verdict},
    shared::{GatewayState, Shared, View},
};
use crate::{
    domain::{Field, SslVpnServer},
    error::{Error, Kind},
    operation::Operation,
};

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

/// One thing a watcher is told: where the change stands, and what the
/// server and its gateway look like.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub gateway: Option<Arc<Shared<GatewayState>>>,
    pub phase: Phase,
    /// The server as last seen (always set once it has been seen).
    pub server: Option<Arc<Shared<SslVpnServer>>>,
    /// Why, when `phase` is `Failed`.
    pub error: Option<Error>,
    /// Since the change was accepted (or the watch began).
    pub elapsed: Duration,
    /// The operation's fields not yet visible on the server.
    pub pending: Vec<Field>,
}

/// Events travel boxed: tokio's channel allocates its slots 32 at a time
/// whatever its bound, and an inline event made that block most of an
/// idle stream's memory.
type Item = Result<Box<WatchEvent>, Error>;

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
    resume: Option<Error>,
    ended: bool,
}

impl Stream for WatchReceiver {
    type Item = Result<WatchEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.shutdown.is_cancelled() {
            self.ended = true;
            let status = self
                .resume
                .take()
                .unwrap_or_else(|| shutting_down("watch again"));
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
    let mut last_sent: Option<WatchEvent> = None;
    let mut last_server: Option<Arc<Shared<SslVpnServer>>> = None;
    let mut last_gateway: Option<Arc<Shared<GatewayState>>> = None;
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
                let message = WatchEvent {
                    gateway: last_gateway.clone(),
                    phase: Phase::TimedOut,
                    server: last_server.clone(),
                    error: None,
                    elapsed: elapsed_since(started_wall),
                    pending: last_sent.map(|m| m.pending).unwrap_or_default(),
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

fn resume_status(spec: &WatchSpec) -> Error {
    shutting_down(if spec.operation.is_some() {
        "resume the watch with the same operation_id"
    } else {
        "watch again"
    })
}

fn shutting_down(hint: &str) -> Error {
    Error::new(
        Kind::Unavailable,
        "ShuttingDown",
        format!("the gateway is shutting down; {hint} on any replica"),
    )
}

fn elapsed_since(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

/// Builds the event for an observation.
fn judge(
    spec: &WatchSpec,
    tracker: &mut Tracker,
    observation: &Observation,
    last_server: &mut Option<Arc<Shared<SslVpnServer>>>,
    last_gateway: &mut Option<Arc<Shared<GatewayState>>>,
    started: SystemTime,
) -> (WatchEvent, Verdict) {
    let verdict = match observation {
        Observation::State {
            snapshot,
            observed_at,
            view,
        } => {
            let view =
                view.get_or_init(|| View::new(&snapshot.gateway, &snapshot.servers, *observed_at));
            let id = &spec.ssl_vpn_server_id;
            last_gateway.replace(Arc::clone(&view.gateway));
            if let Some(server) = view.server(id) {
                last_server.replace(Arc::clone(server));
            }
            tracker.observe(&snapshot.gateway, snapshot.server(id))
        }
        Observation::Gone(error) => Verdict {
            phase: Phase::Failed,
            pending: Vec::new(),
            error: Some(error.clone()),
        },
    };
    let message = WatchEvent {
        gateway: last_gateway.clone(),
        phase: verdict.phase,
        server: last_server.clone(),
        error: verdict.error.clone(),
        elapsed: elapsed_since(started),
        pending: verdict.pending.clone(),
    };
    (message, verdict)
}

/// Whether `next` tells the caller anything new: the time fields always
/// move, so they do not count. Compared in place, with no copies: this runs
/// for every watcher of a gateway at each of its changes. The pattern names
/// every field, so a field added to the event must be decided on here.
fn differs(last: Option<&WatchEvent>, next: &WatchEvent) -> bool {
    let Some(last) = last else { return true };
    let WatchEvent {
        gateway,
        phase,
        server,
        error,
        elapsed: _,
        pending,
    } = next;
    let same_gateway = match (&last.gateway, gateway) {
        (Some(a), Some(b)) => a.same_as(b),
        (None, None) => true,
        _ => false,
    };
    let same_error = match (&last.error, error) {
        (Some(a), Some(b)) => {
            a.kind() == b.kind() && a.reason() == b.reason() && a.message() == b.message()
        }
        (None, None) => true,
        _ => false,
    };
    !(same_gateway
        && last.phase == *phase
        && last.server == *server
        && same_error
        && last.pending == *pending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::GatewayStatus;

    fn receiver(shutdown: &CancellationToken) -> (Tx, WatchReceiver) {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let receiver = WatchReceiver {
            messages: ReceiverStream::new(rx),
            shutdown: shutdown.clone(),
            resume: Some(shutting_down("resume with the same operation_id")),
            ended: false,
        };
        (tx, receiver)
    }

    fn event(phase: Phase) -> WatchEvent {
        WatchEvent {
            gateway: None,
            phase,
            server: None,
            error: None,
            elapsed: Duration::ZERO,
            pending: Vec::new(),
        }
    }

    fn message(phase: Phase) -> Item {
        Ok(Box::new(event(phase)))
    }

    #[test]
    fn only_what_the_caller_sees_counts_as_a_change() {
        let at = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let gateway = |status, observed| {
            Some(Shared::new(GatewayState {
                vpn_gateway_id: "vpn-a".into(),
                status,
                business_status: "Normal".into(),
                observed_at: at(observed),
            }))
        };
        let base = WatchEvent {
            gateway: gateway(GatewayStatus::Active, 1),
            elapsed: Duration::from_secs(1),
            pending: vec![Field::Port],
            ..event(Phase::Pending)
        };
        assert!(differs(None, &base));
        let mut later = base.clone();
        later.elapsed = Duration::from_secs(9);
        later.gateway = gateway(GatewayStatus::Active, 9);
        assert!(!differs(Some(&base), &later), "time alone is no news");
        let mut busy = later.clone();
        busy.gateway = gateway(GatewayStatus::Updating, 9);
        assert!(differs(Some(&base), &busy));
        let mut applied = later.clone();
        applied.pending.clear();
        assert!(differs(Some(&base), &applied));
        let mut failed = later.clone();
        failed.error = Some(Error::new(
            Kind::NotFound,
            "InvalidSslVpnServerId.NotFound",
            "gone",
        ));
        assert!(differs(Some(&base), &failed));
        let mut done = later;
        done.phase = Phase::Succeeded;
        assert!(differs(Some(&base), &done));
    }

    #[tokio::test]
    async fn a_shutdown_ends_a_lagging_stream_unavailable_at_once() {
        use tokio_stream::StreamExt;
        let shutdown = CancellationToken::new();
        let (tx, mut rx) = receiver(&shutdown);
        // A reader that fell behind: the buffer is full, the producer stuck.
        for _ in 0..STREAM_BUFFER {
            tx.send(message(Phase::Applying)).await.unwrap();
        }
        shutdown.cancel();
        let first = rx.next().await.expect("an item").unwrap_err();
        assert_eq!(first.kind(), Kind::Unavailable);
        assert!(first.message().contains("resume"), "{first:?}");
        assert!(rx.next().await.is_none(), "and nothing after it");
    }

    #[tokio::test]
    async fn without_a_shutdown_messages_pass_in_order_and_end_with_the_producer() {
        use tokio_stream::StreamExt;
        let shutdown = CancellationToken::new();
        let (tx, rx) = receiver(&shutdown);
        tx.send(message(Phase::Pending)).await.unwrap();
        tx.send(message(Phase::Succeeded)).await.unwrap();
        drop(tx);
        let phases: Vec<Phase> = rx.map(|m| m.unwrap().phase).collect().await;
        assert_eq!(phases, [Phase::Pending, Phase::Succeeded]);
    }
}
