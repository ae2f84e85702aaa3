//! The lower layers of Linli (docs/ARCHITECTURE.md), bottom first: the WIT bindings, the
//! kinds of failure, metrics and small helpers; the store (the database and the keys that seal it); package
//! formats and the tenant tree; identity and plugin usage; the host capabilities, each a
//! domain service with a thin WIT adapter; and `help` (一键求助), built on tickets, base
//! contacts and notify. Nothing here can reach the runtime, the platform
//! or the HTTP layer: they live in `linli-host`, which depends on this crate.
pub mod bindings;
pub mod errors;
pub mod metrics;
pub mod util;

pub mod store;

pub mod packages;
pub mod tenancy;

pub mod auth;
pub mod usage;

pub mod capabilities;

pub mod help;
