//! Following changes until they are done: the completion rules (`phase`),
//! the shared per-gateway pollers (`hub`), the per-stream producers
//! (`stream`) and what they record (`metrics`).

pub mod hub;
pub mod metrics;
pub mod phase;
pub mod stream;

pub use hub::{PollConfig, WatchHub};
pub use metrics::WatchMetrics;
