//! Every end-to-end story, one module per file beside this one. `cargo test -p linli-tests
//! browser::` (say) runs one file's stories.
mod at_rest;
mod backup;
mod base_data;
mod broker_auth;
mod browser;
mod console;
mod council;
mod devices;
mod elderly_care;
mod foundation;
mod guards;
mod keys;
mod ledger;
mod legal_aid;
mod oidc;
mod outbound;
mod parking;
mod polyglot;
mod property;
mod replicas;
mod sessions;
mod startup;
mod time_bank;
mod vendor_cli;
mod wasi_http;
