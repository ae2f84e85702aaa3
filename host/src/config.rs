//! `linli serve` configuration: defaults, then a TOML file, then `LINLI_*` environment
//! variables (and `DATABASE_URL`).
use crate::runtime::RuntimeConfig;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Debug is written by hand: the master key, the admin token and a database password must
/// not reach a log through `{:?}`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Where the embedded database, the compile cache and the admin token live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; empty means SQLite in `data_dir`.
    pub database_url: String,
    /// Where compiled components are kept; `data_dir/cache` when unset. Hosts on one machine
    /// may share one (each file is named by the engine's settings and the wasm's sha256). What
    /// is in it runs as native code: only the host's own user should write it (the host refuses
    /// a folder anyone may write).
    pub compile_cache_dir: Option<PathBuf>,
    /// Bearer token for /admin; empty means `admin_token_sha256`, else one generated into
    /// `data_dir/admin.token` (for the demo and development).
    pub admin_token: String,
    /// The SHA-256 (hex) of the admin token: the host then keeps no token in clear anywhere
    /// (`printf %s TOKEN | sha256sum`).
    pub admin_token_sha256: String,
    /// The master key (base64 of 32 bytes; `LINLI_MASTER_KEY`), which replicas share; empty
    /// means the key file.
    pub master_key: String,
    /// Where the master key is kept when `master_key` is empty: `data_dir/master.key` by
    /// default, made with mode 0600 at first start. Keep a copy apart from the database.
    pub master_key_file: Option<PathBuf>,
    /// `aes` (AES-256-GCM, HMAC-SHA-256; the default) or `gm` (SM4-GCM, HMAC-SM3) for the data
    /// keys made from now on.
    pub crypto: crate::store::vault::Suite,
    /// A tenants file (TOML or JSON) loaded at start; optional.
    pub tenants_file: Option<PathBuf>,
    /// The URL printed for people to open; defaults to `http://{listen}`.
    pub public_url: Option<String>,
    pub runtime: RuntimeConfig,
    /// MQTT broker, ingest limits, telemetry retention (`[devices]`).
    pub devices: crate::capabilities::devices::DevicesConfig,
    /// Delivery of platform events to plugins (`[events]`).
    pub events: crate::capabilities::events::EventsConfig,
    /// Work orders: how often overdue ones are escalated (`[tickets]`).
    pub tickets: crate::capabilities::tickets::TicketsConfig,
    /// Replicas sharing one database (`[cluster]`).
    pub cluster: crate::platform::cluster::ClusterConfig,
    /// Sign-in rate limits per client address and per account (`[limits]`).
    pub limits: crate::api::rate_limit::RateLimitConfig,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &crate::store::redact(&self.database_url))
            .field("compile_cache_dir", &self.compile_cache_dir)
            .field("admin_token", &crate::store::redacted(&self.admin_token))
            .field("admin_token_sha256", &self.admin_token_sha256)
            .field("master_key", &crate::store::redacted(&self.master_key))
            .field("master_key_file", &self.master_key_file)
            .field("crypto", &self.crypto)
            .field("tenants_file", &self.tenants_file)
            .field("public_url", &self.public_url)
            .field("runtime", &self.runtime)
            .field("devices", &self.devices)
            .field("events", &self.events)
            .field("tickets", &self.tickets)
            .field("cluster", &self.cluster)
            .field("limits", &self.limits)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("data"),
            database_url: String::new(),
            compile_cache_dir: None,
            admin_token: String::new(),
            admin_token_sha256: String::new(),
            master_key: String::new(),
            master_key_file: None,
            crypto: Default::default(),
            tenants_file: None,
            public_url: None,
            runtime: RuntimeConfig::default(),
            devices: Default::default(),
            events: Default::default(),
            tickets: Default::default(),
            cluster: Default::default(),
            limits: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Defaults ← `file` (if given) ← `LINLI_*` variables (`LINLI_RUNTIME__DEFAULT_DEADLINE_MS`
    /// for nested keys) ← `DATABASE_URL`.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError(format!("the config file {} does not exist", file.display())));
            }
            figment = figment.merge(Toml::file(file));
        }
        // LINLI_TEST_* belong to the test and fuzz scripts (a database URL for the tests, fuzzing
        // time), LINLI_LOG to the log filter and LINLI_TOOLCHAINS to `linli plugin build`;
        // hosts they start inherit them and must not take them for settings.
        let settings = Env::prefixed("LINLI_")
            .filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                !key.starts_with("test_") && key != "log" && key != "toolchains"
            })
            .split("__");
        figment = figment.merge(settings).merge(Env::raw().only(&["DATABASE_URL"]));
        figment.extract().map_err(|e| ConfigError(e.to_string()))
    }

    /// The file the master key is read from when it is not configured inline.
    pub fn master_key_file(&self) -> PathBuf {
        self.master_key_file.clone().unwrap_or_else(|| crate::store::vault::Keys::default_file(&self.data_dir))
    }

    /// The master key (from the setting, else the key file, made if there is none) and the
    /// suite for new data keys.
    pub fn keys(&self) -> Result<crate::store::vault::Keys, crate::store::vault::VaultError> {
        let master = if self.master_key.is_empty() {
            crate::store::vault::MasterKey::from_file_or_create(&self.master_key_file())?
        } else {
            crate::store::vault::MasterKey::parse(&self.master_key)?
        };
        Ok(crate::store::vault::Keys { master, suite: self.crypto })
    }

    pub fn compile_cache_dir(&self) -> PathBuf {
        self.compile_cache_dir.clone().unwrap_or_else(|| self.data_dir.join("cache"))
    }

    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            crate::store::sqlite_url(&self.data_dir)
        } else {
            self.database_url.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_names_no_secret() {
        let mut config = Config {
            admin_token: "token-abc".into(),
            master_key: "bWFzdGVyLWtleQ==".into(),
            database_url: "postgres://linli:pw-xyz@db/linli".into(),
            ..Config::default()
        };
        config.devices.broker_password = "broker-pw".into();
        let shown = format!("{config:?}");
        for secret in ["token-abc", "bWFzdGVyLWtleQ==", "pw-xyz", "broker-pw"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("(set, redacted)") && shown.contains("postgres://linli:***@db/linli"), "{shown}");
    }

    #[test]
    // figment's Jail takes a closure returning figment's own (large) error type.
    #[allow(clippy::result_large_err)]
    fn file_then_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("linli.toml", "listen = \"0.0.0.0:9000\"\n[runtime]\ndefault_deadline_ms = 500\n")?;
            jail.set_env("LINLI_RUNTIME__DEFAULT_MEMORY_MIB", "16");
            jail.set_env("DATABASE_URL", "postgres://db/linli");
            let config = Config::load(Some(Path::new("linli.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.listen, "0.0.0.0:9000");
            assert_eq!(config.runtime.default_deadline_ms, 500);
            assert_eq!(config.runtime.default_memory_mib, 16);
            assert_eq!(config.database_url(), "postgres://db/linli");
            jail.set_env("LINLI_TEST_POSTGRES_URL", "postgres://elsewhere/test");
            jail.set_env("LINLI_TEST_FUZZ_SECONDS", "5");
            assert!(Config::load(Some(Path::new("linli.toml"))).is_ok(), "the test scripts' variables are not settings");
            jail.set_env("LINLI_LOG", "debug");
            jail.set_env("LINLI_TOOLCHAINS", "/tmp/toolchains");
            assert!(Config::load(Some(Path::new("linli.toml"))).is_ok(), "the log filter and the toolchain cache are not settings");
            jail.set_env("LINLI_LISTEN", "127.0.0.1:1");
            assert_eq!(Config::load(Some(Path::new("linli.toml"))).map_err(|e| e.to_string())?.listen, "127.0.0.1:1");
            jail.create_file("gm.toml", "crypto = \"gm\"\n")?;
            assert_eq!(Config::load(Some(Path::new("gm.toml"))).map_err(|e| e.to_string())?.crypto, crate::store::vault::Suite::Gm);
            jail.create_file("sm2.toml", "crypto = \"sm2\"\n")?;
            assert!(Config::load(Some(Path::new("sm2.toml"))).is_err(), "an unknown suite is an error");
            jail.create_file("bad.toml", "lisen = 1\n")?;
            assert!(Config::load(Some(Path::new("bad.toml"))).is_err(), "unknown keys are errors");
            assert!(Config::load(Some(Path::new("missing.toml"))).unwrap_err().to_string().contains("does not exist"));
            jail.set_env("LINLI_LISTNE", "127.0.0.1:1");
            assert!(Config::load(Some(Path::new("linli.toml"))).is_err(), "a misspelt setting is an error");
            Ok(())
        });
    }
}
