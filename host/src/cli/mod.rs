//! `linli`: serve, keys, plugin new/build/pack/sign/verify, admin, devices simulate.
mod admin;
mod devhost;
mod devloop;
mod plugin;
mod polyglot;
mod simulate;
mod stories;
mod toolchain;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "linli", version, about = "邻里 Linli — WebAssembly plugin host for smart-community services")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the host.
    Serve {
        /// Config file (TOML); LINLI_* environment variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// A set-up file applied at start: tenants, trusted keys, packages, installs.
        #[arg(long)]
        setup: Option<PathBuf>,
    },
    /// Vendor signing keys, and the host's master and data keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Create, build, pack, sign and verify plugins.
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
    },
    /// Operate a running host over its admin API.
    Admin(admin::AdminArgs),
    /// A consistent copy of the database while the host serves (SQLite; PostgreSQL: pg_dump).
    Backup {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The file to write; it must not exist.
        #[arg(long)]
        out: PathBuf,
    },
    /// Put a backup in place of the database (SQLite), after checking it is whole and opens
    /// with the configured master key. Stop the host first.
    Restore {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// Replace an existing database.
        #[arg(long)]
        force: bool,
    },
    /// Devices: simulate sensors over MQTT; broker credentials for Mosquitto.
    Devices {
        #[command(subcommand)]
        command: DevicesCommand,
    },
    /// Print the OpenAPI document of the host's HTTP API (what `/openapi.json` serves), to
    /// generate a client without a running host.
    Openapi,
}

#[derive(Subcommand)]
enum DevicesCommand {
    /// Water meters, smoke detectors, door sensors, fall buttons and parking sensors
    /// publishing over MQTT on an accelerated clock, with scenarios.
    Simulate(simulate::SimulateArgs),
    /// Write Mosquitto's password and ACL files (`passwd`, `acl`) from the device registry:
    /// the host's user (`[devices] broker_username`/`broker_password`) on every device topic,
    /// each device (user = its id, password = its secret) on its own. Point Mosquitto's
    /// `password_file` and `acl_file` at them and set `allow_anonymous false`; send it SIGHUP
    /// after a change (`[devices] mosquitto_files` makes the host rewrite them on every
    /// registration).
    BrokerAuth {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The directory to write `passwd` and `acl` into.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a new ed25519 key pair: PREFIX.key (secret, PKCS#8 PEM) and PREFIX.pub.
    Gen {
        /// Path prefix of the two files, e.g. `keys/acme`.
        #[arg(long, default_value = "vendor")]
        out: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Print a new master key (base64) for LINLI_MASTER_KEY; replicas share one.
    GenMaster,
    /// Wrap every data key with a new master key. With a key file, the new key replaces it
    /// (a stop midway is finished at the next start); with LINLI_MASTER_KEY, the new key is
    /// written to --out for you to put in every replica's configuration.
    RotateMaster {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Where to write the new key when the current one comes from LINLI_MASTER_KEY.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Seal every sensitive value again under a new data key, in batches, then destroy the
    /// old key. Stopped midway, everything stays readable and running it again resumes.
    RotateData {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Values re-sealed per transaction.
        #[arg(long, default_value_t = 500)]
        batch: u32,
        /// How long replicas may go on sealing with the old key before it is destroyed
        /// (they reload keys every `cluster.sync_seconds`).
        #[arg(long, default_value_t = 10)]
        grace_seconds: u64,
    },
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve { config, setup } => serve(config, setup),
        Command::Keys { command: KeysCommand::Gen { out, force } } => keys_gen(&out, force),
        Command::Keys { command: KeysCommand::GenMaster } => {
            println!("{}", crate::store::vault::MasterKey::generate().encode().as_str());
            Ok(())
        }
        Command::Keys { command: KeysCommand::RotateMaster { config, out } } => rotate_master(config, out),
        Command::Keys { command: KeysCommand::RotateData { config, batch, grace_seconds } } => rotate_data(config, batch, grace_seconds),
        Command::Plugin { command } => plugin::run(command),
        Command::Backup { config, out } => backup(config, &out),
        Command::Restore { config, from, force } => restore(config, &from, force),
        Command::Admin(args) => admin::run(args),
        Command::Devices { command: DevicesCommand::Simulate(args) } => simulate::run(args),
        Command::Devices { command: DevicesCommand::BrokerAuth { config, out } } => broker_auth(config, &out),
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(&crate::api::openapi())?);
            Ok(())
        }
    }
}

fn serve(config: Option<PathBuf>, setup: Option<PathBuf>) -> Result<()> {
    let config = crate::config::Config::load(config.as_deref())?;
    let setup = setup.map(|p| crate::setup::Setup::load(&p)).transpose()?;
    block_on(async move {
        let public_url = config.public_url.clone();
        let server = crate::start(config, setup).await?;
        let url = public_url.unwrap_or_else(|| server.url());
        println!("邻里 Linli is serving at {url}");
        if server.admin_token.is_empty() {
            println!("admin token: the one whose SHA-256 is admin_token_sha256");
        } else {
            println!("admin token: {}", server.admin_token);
        }
        server.wait_for_signal().await;
        Ok(())
    })
}

/// Run `work` to completion on a new async runtime.
fn block_on(work: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    tokio::runtime::Runtime::new().context("starting the async runtime")?.block_on(work)
}

fn backup(config: Option<PathBuf>, out: &std::path::Path) -> Result<()> {
    let config = crate::config::Config::load(config.as_deref())?;
    block_on(async move {
        let store = crate::open_store(&config).await?;
        let made = store.backup_to(out).await?;
        println!("backed up {} residents in {} bytes to {}", made.residents, made.bytes, out.display());
        println!("it opens only with master key {}: keep that key safe, apart from the backup", made.master_id);
        Ok(())
    })
}

fn broker_auth(config: Option<PathBuf>, out: &std::path::Path) -> Result<()> {
    let config = crate::config::Config::load(config.as_deref())?;
    block_on(async move {
        let store = crate::open_store(&config).await?;
        let written = crate::capabilities::devices::write_mosquitto_files(&store, &config.devices, out).await?;
        println!(
            "wrote {0}/passwd ({1} devices and the host's user `{2}`) and {0}/acl (topic prefix `{3}`)",
            out.display(),
            written.devices,
            config.devices.broker_username,
            config.devices.topic_prefix
        );
        if !written.without_hash.is_empty() {
            println!(
                "left out {} devices registered before brokers needed credentials; give each a new secret (POST /admin/devices/{{id}}/secret): {}",
                written.without_hash.len(),
                written.without_hash.join(", ")
            );
        }
        println!("Mosquitto: password_file {0}/passwd, acl_file {0}/acl, allow_anonymous false; send it SIGHUP to reread them", out.display());
        Ok(())
    })
}

fn restore(config: Option<PathBuf>, from: &std::path::Path, force: bool) -> Result<()> {
    let config = crate::config::Config::load(config.as_deref())?;
    block_on(async move {
        let done = crate::store::backup::restore_sqlite(from, &config.database_url(), config.keys()?, force).await?;
        println!("restored {} residents ({} bytes) from {}; start the host", done.residents, done.bytes, from.display());
        Ok(())
    })
}

fn rotate_master(config: Option<PathBuf>, out: Option<PathBuf>) -> Result<()> {
    let config = crate::config::Config::load(config.as_deref())?;
    let inline = !config.master_key.is_empty();
    if inline && out.is_none() {
        anyhow::bail!("the master key comes from LINLI_MASTER_KEY (or master_key): pass --out FILE for the new one");
    }
    block_on(async move {
        let store = crate::open_store(&config).await?;
        let new = crate::store::vault::MasterKey::generate();
        let file = config.master_key_file();
        let next = out.clone().unwrap_or_else(|| crate::store::vault::sibling(&file, "next"));
        let old_id = store.vault.master_id();
        let rewrapped = crate::store::vault::rotate_master(&store, &new, Some(&next)).await?;
        println!("{rewrapped} data keys are now wrapped by master key {} (was {old_id})", new.id());
        if inline {
            println!("the new key is in {}: set LINLI_MASTER_KEY to it on every replica, then restart them", next.display());
        } else {
            std::fs::rename(&next, &file).with_context(|| format!("moving {} to {}", next.display(), file.display()))?;
            println!("the new key is in {}; replicas configured with a key file need it too", file.display());
        }
        println!("backups made before now open only with the old key ({old_id}): keep a copy of it as long as you keep them");
        Ok(())
    })
}

fn rotate_data(config: Option<PathBuf>, batch: u32, grace_seconds: u64) -> Result<()> {
    let config = crate::config::Config::load(config.as_deref())?;
    block_on(async move {
        let store = crate::open_store(&config).await?;
        let report = crate::store::vault::rotate_data_keys(&store, batch, std::time::Duration::from_secs(grace_seconds), |p| {
            println!("{}: {}/{}", p.column, p.done, p.total);
        })
        .await?;
        if report.resumed {
            println!("finished the rotation an earlier run began");
        }
        println!("{} values sealed again under data key {}", report.resealed, report.current);
        for id in &report.destroyed {
            println!("destroyed the old data key {id}");
        }
        for (id, left) in &report.kept {
            println!("kept the old data key {id}: {left} values still under it; run this again to finish");
        }
        Ok(())
    })
}

fn keys_gen(out: &std::path::Path, force: bool) -> Result<()> {
    use crate::packages::signing;
    let secret_path = out.with_extension("key");
    let public_path = out.with_extension("pub");
    if !force && (secret_path.exists() || public_path.exists()) {
        anyhow::bail!("{} or {} exists already; pass --force to replace it", secret_path.display(), public_path.display());
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let key = signing::generate();
    std::fs::write(&secret_path, signing::encode_secret(&key)?).with_context(|| format!("writing {}", secret_path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret_path, std::fs::Permissions::from_mode(0o600))?;
    }
    let public = signing::encode_public(&key.verifying_key());
    std::fs::write(&public_path, format!("{public}\n")).with_context(|| format!("writing {}", public_path.display()))?;
    println!("secret key: {} (keep it private)", secret_path.display());
    println!("public key: {} (give it to the county)", public_path.display());
    println!("key id:     {}", signing::key_id(&key.verifying_key()));
    Ok(())
}
