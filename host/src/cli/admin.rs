//! `linli admin …`: the admin API from the command line.
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Args)]
pub struct AdminArgs {
    /// The host's URL.
    #[arg(long, env = "LINLI_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The admin token (printed by `linli serve`, kept in DATA_DIR/admin.token).
    #[arg(long, env = "LINLI_ADMIN_TOKEN")]
    token: String,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Load (add to / rename in) the tenant tree from a TOML or JSON file.
    LoadTenants { file: PathBuf },
    /// Show the tenant tree.
    Tenants,
    /// Trust a vendor's public key for a county.
    TrustKey {
        #[arg(long)]
        county: String,
        #[arg(long)]
        vendor: String,
        /// The vendor's .pub file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Upload a signed package for a county.
    Upload {
        package: PathBuf,
        #[arg(long)]
        county: String,
    },
    /// Install an uploaded package at a tenant node.
    Install {
        plugin: String,
        version: String,
        #[arg(long)]
        tenant: String,
        /// A capability to grant (repeat for several).
        #[arg(long = "grant")]
        grants: Vec<String>,
        #[arg(long)]
        deadline_ms: Option<u64>,
        #[arg(long)]
        memory_mib: Option<u64>,
        #[arg(long)]
        max_concurrency: Option<u32>,
        /// Requests one instance may serve for the same caller (1: a fresh instance each).
        #[arg(long)]
        requests_per_instance: Option<u32>,
    },
    /// List installations.
    List,
    /// List uploaded packages.
    Packages,
    /// Upgrade an installation (ID is PLUGIN@TENANT); data is kept.
    Upgrade {
        id: String,
        version: String,
        #[arg(long = "grant")]
        grants: Option<Vec<String>>,
    },
    /// Go back to the version before the last upgrade.
    Rollback { id: String },
    /// Remove an installation; its data is kept unless --purge.
    Uninstall {
        id: String,
        #[arg(long)]
        purge: bool,
    },
    /// Register a vendor's web app for "Sign in with Linli" (OIDC). Prints the client id
    /// and, once only, the client secret.
    AddOidcClient {
        #[arg(long)]
        county: String,
        #[arg(long)]
        vendor: String,
        /// Shown to residents on the consent screen.
        #[arg(long)]
        name: String,
        /// An exact redirect URI (repeat for several).
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// profile, phone (openid is always included; repeat for several).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A mobile or single-page app without a secret (PKCE only).
        #[arg(long)]
        public: bool,
    },
    /// List the registered OIDC clients.
    OidcClients,
    /// Disable an OIDC client and revoke its tokens.
    DisableOidcClient { id: String },
}

pub fn run(args: AdminArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let value = runtime.block_on(call(&args))?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

async fn call(args: &AdminArgs) -> Result<Value> {
    let client = reqwest::Client::new();
    let base = args.server.trim_end_matches('/');
    let url = |path: &str| format!("{base}/admin{path}");
    let read = |path: &PathBuf| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let request = match &args.command {
        AdminCommand::LoadTenants { file } => {
            let text = String::from_utf8(read(file)?)?;
            let doc = crate::tenancy::tree::parse_tenants_file(&text)?;
            client.post(url("/tenants")).json(&doc)
        }
        AdminCommand::Tenants => client.get(url("/tenants")),
        AdminCommand::TrustKey { county, vendor, key } => {
            let public_key = String::from_utf8(read(key)?)?;
            client.post(url("/keys")).json(&json!({ "county": county, "vendor": vendor, "public_key": public_key.trim() }))
        }
        AdminCommand::Upload { package, county } => client.post(url("/packages")).query(&[("county", county)]).body(read(package)?),
        AdminCommand::Install { plugin, version, tenant, grants, deadline_ms, memory_mib, max_concurrency, requests_per_instance } => client.post(url("/installations")).json(&json!({
            "plugin_id": plugin, "version": version, "tenant_id": tenant, "grants": grants,
            "limits": { "deadline_ms": deadline_ms, "memory_mib": memory_mib, "max_concurrency": max_concurrency, "requests_per_instance": requests_per_instance },
        })),
        AdminCommand::List => client.get(url("/installations")),
        AdminCommand::Packages => client.get(url("/packages")),
        AdminCommand::Upgrade { id, version, grants } => client.post(url(&format!("/installations/{id}/upgrade"))).json(&json!({ "version": version, "grants": grants })),
        AdminCommand::Rollback { id } => client.post(url(&format!("/installations/{id}/rollback"))),
        AdminCommand::Uninstall { id, purge } => client.delete(url(&format!("/installations/{id}"))).query(&[("purge", purge)]),
        AdminCommand::AddOidcClient { county, vendor, name, redirect_uris, scopes, public } => client.post(url("/oidc/clients")).json(&json!({
            "county": county, "vendor": vendor, "name": name, "redirect_uris": redirect_uris, "scopes": scopes, "public": public,
        })),
        AdminCommand::OidcClients => client.get(url("/oidc/clients")),
        AdminCommand::DisableOidcClient { id } => client.delete(url(&format!("/oidc/clients/{id}"))),
    };
    let response = request.bearer_auth(&args.token).send().await.with_context(|| format!("cannot reach {base}; is `linli serve` running?"))?;
    let status = response.status();
    let text = response.text().await?;
    let value: Value = if text.is_empty() { json!({ "status": status.as_u16() }) } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    if !status.is_success() {
        let message = value["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
        bail!("{status}: {message}");
    }
    Ok(value)
}
