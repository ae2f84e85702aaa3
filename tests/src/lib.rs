//! Helpers for end-to-end tests: a real host on a real database, real packages made with
//! the real `linli` CLI from plugins built for wasm32-wasip2.
//!
//! The test command (scripts/test) builds the `linli` binary and the plugins first.
pub mod demo;
pub mod lab;
pub mod origin;
pub mod serve;

use anyhow::{bail, Context, Result};
use linli_host::config::Config;
use linli_host::packages::{signing, Package};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// `target/` of this workspace (honours CARGO_TARGET_DIR).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// The `linli` binary of the same profile as this test.
pub fn linli_bin() -> PathBuf {
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let path = target_dir().join(profile).join("linli");
    assert!(path.exists(), "{} is missing: run scripts/test, or `cargo build --release -p linli-host` first", path.display());
    path
}

/// A plugin component built by `scripts/build` (cargo names it after the crate, `-` as `_`).
pub fn plugin_wasm(crate_name: &str) -> PathBuf {
    let path = target_dir().join("wasm32-wasip2/release").join(format!("{}.wasm", crate_name.replace('-', "_")));
    assert!(path.exists(), "{} is missing: run scripts/test, or scripts/build first", path.display());
    path
}

/// Where a plugin's sources (and its linli.toml) live.
pub fn plugin_dir(crate_name: &str) -> PathBuf {
    let root = workspace_root();
    [root.join("plugins").join(crate_name), root.join("tests/plugins").join(crate_name)]
        .into_iter()
        .find(|p| p.join("linli.toml").exists())
        .unwrap_or_else(|| panic!("no plugin named {crate_name}"))
}

/// A TypeScript, JavaScript or Python plugin built through the CLI by scripts/build-polyglot.
pub fn polyglot_dir(name: &str) -> PathBuf {
    let dir = target_dir().join("polyglot").join(name);
    assert!(dir.join("dist/plugin.wasm").exists(), "{} is not built: run scripts/test, or scripts/build-polyglot first", dir.display());
    dir
}

/// Run the real CLI; fail with its output when it fails.
pub fn linli(args: &[&str]) -> Result<String> {
    let out = Command::new(linli_bin()).args(args).output().context("running linli")?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("linli {} failed: {text}", args.join(" "));
    }
    Ok(text)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A vendor: a key pair made with `linli keys gen`, and packages made with
/// `linli plugin pack` and `linli plugin sign`.
pub struct Vendor {
    pub dir: tempfile::TempDir,
    pub name: String,
}

impl Vendor {
    pub fn new(name: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let prefix = dir.path().join(name);
        linli(&["keys", "gen", "--out", prefix.to_str().context("path")?])?;
        Ok(Self { dir, name: name.to_string() })
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join(format!("{}.key", self.name))
    }

    pub fn public_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{}.pub", self.name))).unwrap_or_default().trim().to_string()
    }

    /// Pack and sign `crate_name`'s component with its linli.toml, changed by `edit`
    /// (e.g. another version). Returns the package bytes.
    pub fn package(&self, crate_name: &str, edit: impl FnOnce(&mut toml::Table)) -> Result<Vec<u8>> {
        self.package_from(&plugin_dir(crate_name), &plugin_wasm(crate_name), edit)
    }

    /// Pack and sign the plugin in `source` with the component `wasm`, as `package` does.
    pub fn package_from(&self, source: &Path, wasm: &Path, edit: impl FnOnce(&mut toml::Table)) -> Result<Vec<u8>> {
        let mut manifest: toml::Table = std::fs::read_to_string(source.join("linli.toml"))?.parse()?;
        manifest.insert("vendor".into(), toml::Value::String(self.name.clone()));
        edit(&mut manifest);
        let work = tempfile::tempdir_in(self.dir.path())?;
        std::fs::write(work.path().join("linli.toml"), toml::to_string(&manifest)?)?;
        if source.join("ui").is_dir() {
            std::fs::create_dir_all(work.path().join("ui"))?;
            for entry in std::fs::read_dir(source.join("ui"))? {
                let entry = entry?;
                std::fs::copy(entry.path(), work.path().join("ui").join(entry.file_name()))?;
            }
        }
        let out = work.path().join("out.lpkg");
        let dir = work.path().to_str().context("path")?;
        linli(&["plugin", "pack", dir, "--wasm", wasm.to_str().context("path")?, "--out", out.to_str().context("path")?])?;
        linli(&["plugin", "sign", out.to_str().context("path")?, "--key", self.key().to_str().context("path")?])?;
        Ok(std::fs::read(out)?)
    }

    /// Sign an already built package (for packages the CLI refuses to make).
    pub fn sign(&self, mut package: Package) -> Result<Vec<u8>> {
        let key = signing::decode_secret(&std::fs::read_to_string(self.key())?)?;
        package.signature = Some(signing::SignatureFile::sign(&key, package.manifest_text.as_bytes()));
        Ok(package.write()?)
    }
}

pub fn set_version(version: &str) -> impl FnOnce(&mut toml::Table) + '_ {
    move |m| {
        m.insert("version".into(), toml::Value::String(version.into()));
    }
}

/// One compile cache for every test host of a run: the same component (the 12–18 MB
/// JavaScript and Python ones above all) is compiled once, not once per host.
pub fn shared_compile_cache() -> PathBuf {
    target_dir().join("test-compile-cache")
}

/// A host serving on a free port, on SQLite in a temp dir or on a fresh PostgreSQL schema.
pub struct TestHost {
    pub server: Option<linli_host::Server>,
    /// What it was started with; a restart keeps it (on a new port).
    pub config: Config,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub url: String,
    pub admin_token: String,
    pub client: reqwest::Client,
    _temp: std::sync::Arc<tempfile::TempDir>,
}

pub const DEMO_COUNTY: &str = "demo-county";

/// The MQTT broker tests use: `LINLI_TEST_MQTT_URL`, else the local Mosquitto. None only
/// when it is not reachable and CI is not set (under CI=true that is an error).
pub async fn mqtt_url() -> Result<Option<String>> {
    let url = std::env::var("LINLI_TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".to_string());
    let addr = url.trim_start_matches("mqtt://").trim_end_matches('/').to_string();
    match tokio::net::TcpStream::connect(&addr).await {
        Ok(_) => Ok(Some(url)),
        Err(e) if linli_host::store::may_skip_postgres() => {
            eprintln!("skipping: no MQTT broker at {url}: {e}");
            Ok(None)
        }
        Err(e) => bail!("an MQTT broker is required under CI=true; none at {url}: {e}"),
    }
}

/// The NATS server with JetStream that partitioned device ingest uses in tests
/// (LINLI_TEST_NATS_URL, default the local one). None only when it is missing and CI is not
/// set (under CI=true that is an error).
pub async fn nats_url() -> Result<Option<String>> {
    let url = std::env::var("LINLI_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string());
    match async_nats::connect(&url).await {
        Ok(client) => {
            // JetStream must be on, not only the server up.
            if !client.server_info().jetstream {
                bail!("the NATS server at {url} runs without JetStream (start it with -js)");
            }
            Ok(Some(url))
        }
        Err(e) if linli_host::store::may_skip_postgres() => {
            eprintln!("skipping: no NATS server at {url}: {e}");
            Ok(None)
        }
        Err(e) => bail!("a NATS server with JetStream is required under CI=true; none at {url}: {e}"),
    }
}

/// Run `story`, then delete the ingest stream of `topic_prefix` from the shared NATS server
/// whether the story passed, failed or panicked (a test's stream is its own).
pub async fn with_ingest_stream(nats: &str, topic_prefix: &str, story: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(story)).await;
    let deleted = delete_ingest_stream(nats, topic_prefix).await;
    match outcome {
        Err(panic) => std::panic::resume_unwind(panic),
        Ok(result) => result.and(deleted),
    }
}

/// Delete the ingest stream a test's topic prefix made in the shared NATS server.
pub async fn delete_ingest_stream(nats: &str, topic_prefix: &str) -> Result<()> {
    let context = async_nats::jetstream::new(async_nats::connect(nats).await?);
    let (name, _) = linli_host::capabilities::devices::partitions::names(topic_prefix);
    context.delete_stream(&name).await?;
    Ok(())
}

/// A fresh database for a test: SQLite in `dir`, or a new PostgreSQL schema. None only when
/// PostgreSQL is asked for, missing, and CI is not set (under CI=true that is an error).
pub async fn database_url(backend: Backend, dir: &Path) -> Result<Option<String>> {
    match backend {
        Backend::Sqlite => Ok(Some(linli_host::store::sqlite_url(dir))),
        Backend::Postgres => match linli_host::store::scratch_postgres_url(&linli_host::store::test_postgres_base()).await {
            Ok(url) => Ok(Some(url)),
            Err(e) if linli_host::store::may_skip_postgres() => {
                eprintln!("skipping the PostgreSQL run: {e}");
                Ok(None)
            }
            Err(e) => bail!("PostgreSQL is required under CI=true: {e}"),
        },
    }
}

impl TestHost {
    /// None only when PostgreSQL is asked for, missing, and CI is not set.
    pub async fn start(backend: Backend) -> Result<Option<Self>> {
        let temp = tempfile::tempdir()?;
        let Some(database_url) = database_url(backend, temp.path()).await? else { return Ok(None) };
        let data_dir = temp.path().to_path_buf();
        let mut host = Self::start_with(data_dir, database_url, std::sync::Arc::new(temp), |_| {}).await?;
        host.load_demo_tenants().await?;
        Ok(Some(host))
    }

    /// Like `start`, with the configuration changed by `tune` (kept across restarts).
    pub async fn start_tuned(backend: Backend, tune: impl FnOnce(&mut Config)) -> Result<Option<Self>> {
        let temp = tempfile::tempdir()?;
        let Some(database_url) = database_url(backend, temp.path()).await? else { return Ok(None) };
        let data_dir = temp.path().to_path_buf();
        let mut host = Self::start_with(data_dir, database_url, std::sync::Arc::new(temp), tune).await?;
        host.load_demo_tenants().await?;
        Ok(Some(host))
    }

    async fn start_with(data_dir: PathBuf, database_url: String, temp: std::sync::Arc<tempfile::TempDir>, tune: impl FnOnce(&mut Config)) -> Result<Self> {
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            data_dir: data_dir.clone(),
            database_url: database_url.clone(),
            compile_cache_dir: Some(shared_compile_cache()),
            ..Config::default()
        };
        // Tests that want devices name their broker; many hosts run at once.
        config.devices.broker = "off".into();
        tune(&mut config);
        Self::start_config(config, temp).await
    }

    async fn start_config(config: Config, temp: std::sync::Arc<tempfile::TempDir>) -> Result<Self> {
        let (data_dir, database_url) = (config.data_dir.clone(), config.database_url.clone());
        let server = linli_host::start(config.clone(), None).await?;
        Ok(Self {
            config,
            url: server.url(),
            admin_token: server.admin_token.clone(),
            server: Some(server),
            data_dir,
            database_url,
            client: reqwest::Client::new(),
            _temp: temp,
        })
    }

    /// Stop this host and start another on the same data directory and database.
    pub async fn restart(self) -> Result<Self> {
        self.restart_after(async { Ok(()) }).await
    }

    /// `restart`, doing `while_down` between the stop and the start.
    pub async fn restart_after(mut self, while_down: impl std::future::Future<Output = Result<()>>) -> Result<Self> {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        while_down.await?;
        Self::start_config(self.config.clone(), self._temp.clone()).await
    }

    /// The host's database opened beside it, with its master key.
    pub async fn store(&self) -> Result<linli_host::store::Store> {
        Ok(linli_host::store::Store::open(&self.database_url, self.config.keys()?).await?)
    }

    /// Import the demo county's generated residents (`per_grid` in every grid, from `seed`)
    /// as the demo does; their (ID number, phone number) pairs.
    pub async fn import_demo_residents(&self, per_grid: usize, seed: u64) -> Result<Vec<(String, String)>> {
        let tree = self.server.as_ref().map(|s| s.platform.tenants()).context("the host is not running")?;
        let data = linli_host::capabilities::base::demo::generate(&tree, DEMO_COUNTY, per_grid, seed);
        let mut residents = Vec::new();
        for (tenant, csv) in &data.residents {
            let report = self.import_csv("residents", tenant, csv).await?;
            anyhow::ensure!(report["status"] == "done", "importing the demo residents of {tenant}: {report}");
            for line in csv.lines().skip(1) {
                let fields: Vec<&str> = line.split(',').collect();
                residents.push((fields.get(1).unwrap_or(&"").to_string(), fields.get(2).unwrap_or(&"").to_string()));
            }
        }
        Ok(residents)
    }

    /// A second replica: another host on the same database and data directory.
    pub async fn replica(&self) -> Result<Self> {
        Self::start_config(self.config.clone(), self._temp.clone()).await
    }

    pub async fn load_demo_tenants(&mut self) -> Result<()> {
        let text = std::fs::read_to_string(workspace_root().join("demo/tenants.toml"))?;
        let doc = linli_host::tenancy::tree::parse_tenants_file(&text)?;
        self.admin("POST", "/tenants", Some(serde_json::to_value(doc)?)).await?.expect_status(200)?;
        Ok(())
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Result<Reply> {
        let mut request = self.client.request(method.parse()?, format!("{}/admin{path}", self.url)).bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::from(request.send().await?).await
    }

    pub async fn trust(&self, vendor: &Vendor) -> Result<()> {
        self.admin("POST", "/keys", Some(json!({ "county": DEMO_COUNTY, "vendor": vendor.name, "public_key": vendor.public_key() })))
            .await?
            .expect_status(201)?;
        Ok(())
    }

    pub async fn upload(&self, package: Vec<u8>) -> Result<Reply> {
        let request = self.client.post(format!("{}/admin/packages?county={DEMO_COUNTY}", self.url)).bearer_auth(&self.admin_token).body(package);
        Reply::from(request.send().await?).await
    }

    pub async fn install(&self, plugin: &str, version: &str, tenant: &str, grants: &[&str], limits: Value) -> Result<Reply> {
        self.admin("POST", "/installations", Some(json!({ "plugin_id": plugin, "version": version, "tenant_id": tenant, "grants": grants, "limits": limits })))
            .await
    }

    /// A request to a plugin route, tenant in the path: `/t/{tenant}/p/{rest}`.
    pub async fn plugin(&self, method: &str, tenant: &str, rest: &str) -> Result<Reply> {
        let request = self.client.request(method.parse()?, format!("{}/t/{tenant}/p/{rest}", self.url));
        Reply::from(request.send().await?).await
    }

    pub async fn get(&self, path: &str) -> Result<Reply> {
        Reply::from(self.client.get(format!("{}{path}", self.url)).send().await?).await
    }

    /// The alarms with `status` (`active`, `acknowledged`, `cleared`), as the operator sees them.
    pub async fn alarms(&self, status: &str) -> Result<Vec<Value>> {
        let reply = self.admin("GET", &format!("/alarms?status={status}"), None).await?.expect_status(200)?;
        Ok(reply.json()["alarms"].as_array().cloned().unwrap_or_default())
    }

    /// A counter from `/metrics`, `name{label="value"}`; 0 while it has not been counted.
    pub async fn counter(&self, name: &str, label: &str, value: &str) -> Result<u64> {
        Ok(counter_in(&self.get("/metrics").await?.text, name, label, value))
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }
}

/// The counter `name{label="value"}` in a `/metrics` text; 0 while it has not been counted.
pub fn counter_in(metrics: &str, name: &str, label: &str, value: &str) -> u64 {
    let line = format!("{name}{{{label}=\"{value}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(&line)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Result<Self> {
        Ok(Self { status: response.status().as_u16(), headers: response.headers().clone(), text: response.text().await? })
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    pub fn expect_status(self, status: u16) -> Result<Self> {
        if self.status != status {
            bail!("expected {status}, got {}: {}", self.status, self.text);
        }
        Ok(self)
    }

    /// The error code of a `{"error": {"code", "message"}}` body.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_string()
    }

    pub fn error_message(&self) -> String {
        self.json()["error"]["message"].as_str().unwrap_or_default().to_string()
    }
}

/// Define a test that runs once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_databases {
    ($name:ident, $body:path) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() -> anyhow::Result<()> {
                match $crate::TestHost::start($crate::Backend::Sqlite).await? {
                    Some(host) => $body(host).await,
                    None => Ok(()),
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() -> anyhow::Result<()> {
                match $crate::TestHost::start($crate::Backend::Postgres).await? {
                    Some(host) => $body(host).await,
                    None => Ok(()),
                }
            }
        }
    };
}

/// Define a test that runs `$body(backend)` once on SQLite and once on PostgreSQL, for
/// stories that start their own host (with a tuned configuration, say).
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() -> anyhow::Result<()> {
                super::$name($crate::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() -> anyhow::Result<()> {
                super::$name($crate::Backend::Postgres).await
            }
        }
    };
}

/// Someone signed in to a test host, calling it with their session.
pub struct Person {
    pub token: String,
    /// The account id (empty for the operator).
    pub account_id: String,
    url: String,
    client: reqwest::Client,
}

impl Person {
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Reply> {
        let mut request = self.client.request(method.parse()?, format!("{}{path}", self.url)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::from(request.send().await?).await
    }

    pub async fn get(&self, path: &str) -> Result<Reply> {
        self.call("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Reply> {
        self.call("POST", path, Some(body)).await
    }

    /// POST `bytes` as `content_type` (a photo, a file).
    pub async fn post_bytes(&self, path: &str, content_type: &str, bytes: Vec<u8>) -> Result<Reply> {
        let request = self.client.post(format!("{}{path}", self.url)).bearer_auth(&self.token).header("content-type", content_type).body(bytes);
        Reply::from(request.send().await?).await
    }

    /// GET an answer that is not text (an image): status, headers and the bytes.
    pub async fn get_bytes(&self, path: &str) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>)> {
        let response = self.client.get(format!("{}{path}", self.url)).bearer_auth(&self.token).send().await?;
        Ok((response.status().as_u16(), response.headers().clone(), response.bytes().await?.to_vec()))
    }
}

impl TestHost {
    /// Create an account (through the admin API) and log it in.
    pub async fn person(&self, account: Value) -> Result<Person> {
        let phone = account["phone"].as_str().context("phone")?.to_string();
        let password = account["password"].as_str().context("password")?.to_string();
        let created = self.admin("POST", "/accounts", Some(account)).await?.expect_status(201)?.json();
        let account_id = created["id"].as_str().context("account id")?.to_string();
        let login = self.client.post(format!("{}/api/auth/login", self.url)).json(&json!({ "phone": phone, "password": password })).send().await?;
        let tokens = Reply::from(login).await?.expect_status(200)?.json();
        Ok(Person {
            token: tokens["access_token"].as_str().context("access token")?.to_string(),
            account_id,
            url: self.url.clone(),
            client: self.client.clone(),
        })
    }

    /// A person holding the admin token (a platform operator).
    pub fn operator(&self) -> Person {
        Person { token: self.admin_token.clone(), account_id: String::new(), url: self.url.clone(), client: self.client.clone() }
    }

    /// Package `crate_name` as `vendor`, upload it and install it with `grants` at each tenant.
    pub async fn publish(&self, vendor: &Vendor, crate_name: &str, grants: &[&str], tenants: &[&str]) -> Result<()> {
        let package = vendor.package(crate_name, |_| {})?;
        let uploaded = self.upload(package).await?.expect_status(201)?.json();
        let (plugin, version) =
            (uploaded["plugin_id"].as_str().context("plugin id")?.to_string(), uploaded["version"].as_str().context("version")?.to_string());
        for tenant in tenants {
            self.install(&plugin, &version, tenant, grants, json!({})).await?.expect_status(201)?;
        }
        Ok(())
    }

    /// Import a base-data CSV as the platform operator and wait for the outcome.
    pub async fn import_csv(&self, kind: &str, tenant: &str, csv: &str) -> Result<Value> {
        let started = self
            .client
            .post(format!("{}/api/base/imports?kind={kind}&tenant={tenant}", self.url))
            .bearer_auth(&self.admin_token)
            .header("content-type", "text/csv")
            .body(csv.to_string())
            .send()
            .await?;
        let report = Reply::from(started).await?.expect_status(202)?.json();
        let id = report["id"].as_str().context("import id")?.to_string();
        for _ in 0..600 {
            let now = self.operator().get(&format!("/api/base/imports/{id}")).await?.expect_status(200)?.json();
            if !matches!(now["status"].as_str(), Some("validating" | "writing")) {
                return Ok(now);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        bail!("import {id} did not finish in 30 s")
    }
}

/// A valid citizen ID number (GB 11643) from its first 17 digits.
pub fn id_number(first17: &str) -> String {
    format!("{first17}{}", linli_host::capabilities::base::records::id_check_char(first17).unwrap_or('0'))
}

/// Unix milliseconds as China Standard Time to the minute (`2026-11-28T09:30`), the form
/// plugins take times in.
pub fn cst_minute(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms + 8 * 3_600_000).map(|t| t.format("%Y-%m-%dT%H:%M").to_string()).unwrap_or_default()
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}
