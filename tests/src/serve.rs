//! The real `linli serve` as a child process: for tests that kill it and for benchmarks
//! that measure it apart from the load generator (start time, resident memory).
use crate::{linli_bin, workspace_root, Reply};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The admin token every `Serve` runs with.
pub const SERVE_ADMIN_TOKEN: &str = "serve-admin-token";
/// The master key every `Serve` runs with (`LINLI_MASTER_KEY`): replicas on one database
/// share it, as a county's replicas share theirs through configuration.
pub const SERVE_MASTER_KEY: &str = "bGlubGktdGVzdC1tYXN0ZXIta2V5LTAxMjM0NTY3ODk=";

/// The keys to open the database of a `Serve` beside it.
pub fn serve_keys() -> linli_host::store::vault::Keys {
    let master = linli_host::store::vault::MasterKey::parse(SERVE_MASTER_KEY).expect("SERVE_MASTER_KEY is base64 of 32 bytes");
    linli_host::store::vault::Keys { master, suite: Default::default() }
}

/// `linli serve` on a fixed address, so it can be killed and come back where clients
/// expect it. Its log goes to `serve.log` in the data directory.
pub struct Serve {
    child: Option<Child>,
    pub addr: String,
    pub data_dir: PathBuf,
    env: Vec<(String, String)>,
    args: Vec<String>,
    pub http: reqwest::Client,
}

impl Serve {
    /// A host on `database_url` with the demo tenant tree and no MQTT broker (two of these
    /// may run at once); `env` and `arg` change that before `launch`.
    pub fn new(data_dir: &Path, database_url: &str) -> Result<Self> {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.to_string();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let env = vec![
            ("LINLI_DATABASE_URL".to_string(), database_url.to_string()),
            ("LINLI_ADMIN_TOKEN".to_string(), SERVE_ADMIN_TOKEN.to_string()),
            ("LINLI_MASTER_KEY".to_string(), SERVE_MASTER_KEY.to_string()),
            ("LINLI_DEVICES__BROKER".to_string(), "off".to_string()),
            ("LINLI_TENANTS_FILE".to_string(), workspace_root().join("demo/tenants.toml").display().to_string()),
        ];
        Ok(Self { child: None, addr, data_dir: data_dir.to_path_buf(), env, args: vec![], http })
    }

    /// A replica in `root/name` on `database_url` for device tests: on the test `broker`
    /// under topic `prefix`, events polled every 50 ms, sessions issued as one address.
    pub fn device_replica(root: &Path, name: &str, database_url: &str, broker: &str, prefix: &str) -> Result<Self> {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        Ok(Self::new(&dir, database_url)?
            .env("LINLI_DEVICES__BROKER", broker)
            .env("LINLI_DEVICES__TOPIC_PREFIX", prefix)
            .env("LINLI_EVENTS__POLL_MS", "50")
            .env("LINLI_PUBLIC_URL", "http://linli.test"))
    }

    /// Start a host and wait until it is ready.
    pub async fn start(data_dir: PathBuf, database_url: String) -> Result<Self> {
        let mut serve = Self::new(&data_dir, &database_url)?;
        serve.spawn().await?;
        Ok(serve)
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Start the process without waiting for it; returns when it was started.
    pub fn launch(&mut self) -> Result<Instant> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.data_dir.join("serve.log"))?;
        let mut command = Command::new(linli_bin());
        command.arg("serve").args(&self.args).env("LINLI_LISTEN", &self.addr).env("LINLI_DATA_DIR", &self.data_dir);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let started = Instant::now();
        self.child = Some(command.stdout(Stdio::null()).stderr(log).spawn()?);
        Ok(started)
    }

    /// Start the process and wait until `/readyz` answers 200.
    pub async fn spawn(&mut self) -> Result<()> {
        self.launch()?;
        self.wait_for("/readyz", Duration::from_secs(120)).await
    }

    /// Poll `path` until it answers 200, for at most `within`.
    pub async fn wait_for(&mut self, path: &str, within: Duration) -> Result<()> {
        let started = Instant::now();
        let url = format!("{}{path}", self.url());
        while started.elapsed() < within {
            if let Ok(reply) = self.http.get(&url).send().await {
                if reply.status().is_success() {
                    return Ok(());
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("linli serve exited ({status}); see {}", self.data_dir.join("serve.log").display());
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        bail!("{path} did not answer 200 within {within:?}; see {}", self.data_dir.join("serve.log").display())
    }

    /// SIGKILL: no shutdown, no flushing, mid-transaction.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM and wait: the clean stop an operator's service manager does.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status()?;
            anyhow::ensure!(status.success(), "could not signal linli serve");
            child.wait()?;
        }
        Ok(())
    }

    /// Resident memory of the process (VmRSS) and its peak (VmHWM), in KiB.
    pub fn memory_kib(&self) -> Result<(u64, u64)> {
        let pid = self.pid().context("not running")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<u64>().ok())
                .with_context(|| format!("{name} in /proc/{pid}/status"))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// Call the admin API with the admin token; a non-2xx answer is an error.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut request = self.http.request(method, format!("{}/admin{path}", self.url())).bearer_auth(SERVE_ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = Reply::from(request.send().await?).await?;
        if !(200..300).contains(&reply.status) {
            bail!("admin {path}: {} {}", reply.status, reply.text);
        }
        Ok(reply.json())
    }

    /// A counter from `/metrics`, `name{label="value"}`; 0 while it has not been counted.
    pub async fn counter(&self, name: &str, label: &str, value: &str) -> Result<u64> {
        let text = self.http.get(format!("{}/metrics", self.url())).send().await?.error_for_status()?.text().await?;
        Ok(crate::counter_in(&text, name, label, value))
    }

    /// Upload a signed package for `county`.
    pub async fn upload(&self, county: &str, package: Vec<u8>) -> Result<Value> {
        let reply = self.http.post(format!("{}/admin/packages?county={county}", self.url())).bearer_auth(SERVE_ADMIN_TOKEN).body(package).send().await?;
        Ok(Reply::from(reply).await?.expect_status(201)?.json())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
