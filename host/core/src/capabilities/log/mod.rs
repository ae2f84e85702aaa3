//! `linli:platform/log`: plugin log lines in the host's log, tagged with who wrote them. There
//! is no domain service: the host's `tracing` subscriber is where the lines go.
mod adapter;

pub use adapter::{Adapter, LogState, INFO};
