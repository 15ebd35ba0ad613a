//! The two ways of loading a server: open loop at a fixed rate (latency
//! under a known load; a closed loop would hide queueing, because a slow
//! answer delays the next request) and closed loop at saturation
//! (throughput). Latencies go into HDR histograms in microseconds.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde_json::json;

/// One request: resolves to `Err(message)` when it was not answered as the
/// scenario expects.
pub type Request =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// What one run measured.
pub struct Stats {
    pub histogram: Histogram<u64>,
    pub ok: u64,
    pub failed: u64,
    pub elapsed: Duration,
    /// A few failure messages, to say what went wrong.
    pub samples: Vec<String>,
}

impl Stats {
    pub fn new() -> Self {
        Self {
            // 1 µs to 60 s at 3 significant digits: constant, valid bounds.
            histogram: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            ok: 0,
            failed: 0,
            elapsed: Duration::ZERO,
            samples: Vec::new(),
        }
    }

    pub fn merge(&mut self, other: &Stats) {
        let _ = self.histogram.add(&other.histogram);
        self.ok += other.ok;
        self.failed += other.failed;
        self.elapsed += other.elapsed;
        for s in &other.samples {
            if self.samples.len() < 5 {
                self.samples.push(s.clone());
            }
        }
    }

    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            (self.ok + self.failed) as f64 / secs
        } else {
            0.0
        }
    }

    pub fn micros(&self, quantile: f64) -> u64 {
        self.histogram.value_at_quantile(quantile)
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "ok": self.ok,
            "failed": self.failed,
            "throughput_per_s": (self.throughput() * 10.0).round() / 10.0,
            "p50_us": self.micros(0.5),
            "p90_us": self.micros(0.9),
            "p99_us": self.micros(0.99),
            "p999_us": self.micros(0.999),
            "max_us": self.histogram.max(),
            "failure_samples": self.samples,
        })
    }
}

struct Shared {
    stats: Mutex<Stats>,
}

impl Shared {
    fn record(&self, took: Duration, result: Result<(), String>) {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let _ = stats.histogram.record(micros.min(60_000_000));
        match result {
            Ok(()) => stats.ok += 1,
            Err(e) => {
                stats.failed += 1;
                if stats.samples.len() < 5 {
                    stats.samples.push(e);
                }
            }
        }
    }
}

/// Sends `rate` requests per second for `duration`, each in its own task,
/// whatever the answers do; waits for the stragglers.
pub async fn open_loop(request: &Request, rate: u32, duration: Duration) -> Stats {
    let shared = Arc::new(Shared {
        stats: Mutex::new(Stats::new()),
    });
    let total = (f64::from(rate) * duration.as_secs_f64()).round() as u64;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for i in 0..total {
        // Dispatch on the intended schedule; a late tick sends its backlog
        // at once rather than silently lowering the rate.
        let due = started + period.mul_f64(i as f64);
        let now = Instant::now();
        if due > now {
            tokio::time::sleep(due - now).await;
        }
        let request = request.clone();
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let result = request().await;
            shared.record(sent.elapsed(), result);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut stats = take(shared);
    stats.elapsed = duration;
    stats
}

/// Runs `concurrency` workers back to back for `duration`.
pub async fn saturate(request: &Request, concurrency: usize, duration: Duration) -> Stats {
    let shared = Arc::new(Shared {
        stats: Mutex::new(Stats::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let request = request.clone();
            let shared = shared.clone();
            let stop = stop.clone();
            let count = count.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let result = request().await;
                    shared.record(sent.elapsed(), result);
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let mut stats = take(shared);
    stats.elapsed = started.elapsed();
    stats
}

fn take(shared: Arc<Shared>) -> Stats {
    match Arc::try_unwrap(shared) {
        Ok(s) => s.stats.into_inner().unwrap_or_else(|e| e.into_inner()),
        Err(shared) => {
            let mut stats = shared.stats.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *stats, Stats::new())
        }
    }
}
