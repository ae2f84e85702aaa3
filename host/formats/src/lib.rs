//! Decoders of untrusted input, each total: any bytes give a value or a typed error,
//! never a panic. The fuzz targets in host/fuzz drive them with arbitrary input.
//!
//! - `archive`, `manifest`, `signing`: plugin packages (`.lpkg`), `linli.toml`, signatures;
//! - `listing`: how the resident app lists a plugin and its names in other languages;
//! - `sections`: the manifest sections that belong to one capability (`[ledger]`,
//!   `[events]`, `[dashboard]`), re-exported by those capabilities in the host;
//! - `csv_table`: base-data CSV files (residents, places, organisations) into rows;
//! - `telemetry`: one MQTT (or HTTP) telemetry message from a device.
pub mod archive;
pub mod csv_table;
pub mod listing;
pub mod manifest;
pub mod sections;
pub mod signing;
pub mod telemetry;
