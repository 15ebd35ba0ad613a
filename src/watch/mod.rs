//! Following changes until they are done: the completion rules (`phase`),
//! the shared per-gateway pollers (`hub`) and the per-stream producers
//! (`stream`).

pub mod hub;
pub mod phase;
pub mod stream;

pub use hub::{PollConfig, WatchHub};
