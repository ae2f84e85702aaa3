//! `linli`: serve, keys, plugin new/build/pack/sign/verify, admin, devices simulate.
mod admin;
mod plugin;
mod simulate;

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
    /// Vendor signing keys.
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
    /// Devices: simulate sensors over MQTT.
    Devices {
        #[command(subcommand)]
        command: DevicesCommand,
    },
}

#[derive(Subcommand)]
enum DevicesCommand {
    /// Water meters, smoke detectors, door sensors, fall buttons and parking sensors
    /// publishing over MQTT on an accelerated clock, with scenarios.
    Simulate(simulate::SimulateArgs),
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
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve { config, setup } => serve(config, setup),
        Command::Keys { command: KeysCommand::Gen { out, force } } => keys_gen(&out, force),
        Command::Plugin { command } => plugin::run(command),
        Command::Admin(args) => admin::run(args),
        Command::Devices { command: DevicesCommand::Simulate(args) } => simulate::run(args),
    }
}

fn serve(config: Option<PathBuf>, setup: Option<PathBuf>) -> Result<()> {
    let config = crate::config::Config::load(config.as_deref())?;
    let setup = setup.map(|p| crate::setup::Setup::load(&p)).transpose()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let public_url = config.public_url.clone();
        let server = crate::start(config, setup).await?;
        let url = public_url.unwrap_or_else(|| server.url());
        println!("邻里 Linli is serving at {url}");
        println!("admin token: {}", server.admin_token);
        server.wait_for_signal().await;
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
