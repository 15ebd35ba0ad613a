//! Following changes until they are done: the completion rules (`phase`),
//! the watched gateways and their region sweepers (`hub`), one round's
//! cheapest reads (`sweep`), what the watchers of one observation share
//! (`shared`), the per-stream producers (`stream`) and what they record
//! (`metrics`).

pub mod hub;
pub mod metrics;
pub mod phase;
pub mod shared;
pub mod stream;
pub mod sweep;

pub use hub::{PollConfig, WatchHub};
pub use metrics::WatchMetrics;
