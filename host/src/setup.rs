//! A declarative set-up applied at start (`linli serve --setup FILE`): tenants, trusted
//! keys, packages, installations, base data (CSV files and a generated demo county) and
//! accounts. Applying it twice changes nothing the second time,
//! so a county can keep its set-up in version control.
use crate::capabilities::base::demo;
use crate::capabilities::base::import::{self, ImportKind, ImportState, Imports};
use crate::packages::Limits;
use crate::platform::{InstallRequest, Platform, PlatformError, UpgradeRequest};
use crate::tenancy::tree::parse_tenants_file;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Import `bytes` unless an import tagged `tag` already finished.
async fn import_once(platform: &Platform, kind: ImportKind, tenant: &str, bytes: &[u8], tag: &str, what: &str) -> Result<(), SetupError> {
    let failed = |message: String| SetupError::Import { what: what.to_string(), message };
    if import::done_by(&platform.store, tag).await.map_err(|e| failed(e.to_string()))? {
        return Ok(());
    }
    let report = Imports::run_now(&platform.store, &platform.tenants(), kind, tenant, bytes, tag).await.map_err(|e| failed(e.to_string()))?;
    if report.status != ImportState::Done {
        let problems: Vec<String> = report.problems.iter().take(10).map(|p| format!("row {} {}: {}", p.row, p.column, p.problem)).collect();
        return Err(failed(problems.join("; ")));
    }
    tracing::info!(rows = report.total_rows, "{what} imported");
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    pub tenants_file: Option<PathBuf>,
    #[serde(default)]
    pub trust: Vec<Trust>,
    #[serde(default)]
    pub packages: Vec<PackageFile>,
    #[serde(default)]
    pub install: Vec<Install>,
    /// Accounts to create if their phone number has none yet (existing ones are left as
    /// they are, passwords included).
    #[serde(default)]
    pub accounts: Vec<crate::auth::accounts::NewAccount>,
    /// Generated base data for a demo county (once).
    #[serde(default)]
    pub demo_data: Option<DemoData>,
    /// Base-data CSV files to import (each file once).
    #[serde(default)]
    pub base_imports: Vec<BaseImport>,
    /// Requests to plugins made as one of the accounts, after everything else (e.g. a
    /// plugin loading its demo data through its own API). They run at every start, so the
    /// plugin's route must be idempotent, unless marked `once`; anything but a 2xx answer
    /// stops the start.
    #[serde(default)]
    pub plugin_requests: Vec<PluginCall>,
    /// Devices to register (re-registering updates them; their secrets are kept).
    #[serde(default)]
    pub devices: Vec<crate::capabilities::devices::registry::NewDevice>,
    /// Alarm rules to create or replace.
    #[serde(default)]
    pub alarm_rules: Vec<crate::capabilities::devices::rules::RuleSpec>,
    /// Duty lines (值班电话) that 一键求助 gives residents, per tenant node.
    #[serde(default)]
    pub duty_lines: Vec<DutyLineSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DutyLineSpec {
    pub tenant: String,
    pub phone: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginCall {
    /// The plugin's route prefix (usually its id).
    pub plugin: String,
    /// The tenant the request is for, as in `/t/{tenant}/p/{plugin}/…`.
    pub tenant: String,
    #[serde(default = "default_method")]
    pub method: String,
    /// The path inside the plugin, e.g. `/demo/seed`.
    pub path: String,
    /// JSON text.
    #[serde(default)]
    pub body: Option<String>,
    /// The account the request is made as (its phone number).
    pub as_phone: String,
    /// For a route that does its work a page at a time: the answer's `next` is put into the
    /// body's field of this name (e.g. `cursor`) and the request made again, until `next` is
    /// null or absent.
    #[serde(default)]
    pub follow: Option<String>,
    /// Make it at the first start only: once it answered 2xx (every page of it), it is
    /// recorded and left out at later starts — for requests that do much work, such as
    /// billing every house. Changing it (its body, say) makes it a new request.
    #[serde(default)]
    pub once: bool,
}

/// A paged set-up request stops with an error after this many pages.
const MAX_FOLLOWED_PAGES: usize = 10_000;

fn default_method() -> String {
    "POST".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoData {
    pub county: String,
    #[serde(default = "default_per_grid")]
    pub residents_per_grid: usize,
    #[serde(default)]
    pub seed: u64,
}

fn default_per_grid() -> usize {
    600
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseImport {
    /// residents | places | organisations
    pub kind: String,
    pub tenant: String,
    pub file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    pub county: String,
    pub vendor: String,
    pub public_key_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageFile {
    pub county: String,
    pub file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Install {
    pub plugin: String,
    pub version: String,
    pub tenants: Vec<String>,
    #[serde(default)]
    pub grants: Vec<String>,
    #[serde(default)]
    pub limits: Limits,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a valid set-up file: {message}")]
    Syntax { path: String, message: String },
    #[error("{what}: {source}")]
    Step { what: String, source: PlatformError },
    #[error("the duty line of {tenant}: {source}")]
    DutyLine { tenant: String, source: crate::help::HelpError },
    #[error("importing {what}: {message}")]
    Import { what: String, message: String },
    #[error("creating the account {phone}: {source}")]
    Account { phone: String, source: crate::auth::AuthError },
    #[error("{what}: {message}")]
    PluginCall { what: String, message: String },
}

fn read(path: &Path) -> Result<String, SetupError> {
    std::fs::read_to_string(path).map_err(|source| SetupError::Read { path: path.display().to_string(), source })
}

impl Setup {
    pub fn load(path: &Path) -> Result<Self, SetupError> {
        let text = read(path)?;
        let mut setup: Setup = toml::from_str(&text).map_err(|e| SetupError::Syntax { path: path.display().to_string(), message: e.to_string() })?;
        // Paths in the file are relative to the file.
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = setup.tenants_file.as_mut() {
            resolve(p);
        }
        setup.trust.iter_mut().for_each(|t| resolve(&mut t.public_key_file));
        setup.packages.iter_mut().for_each(|p| resolve(&mut p.file));
        setup.base_imports.iter_mut().for_each(|i| resolve(&mut i.file));
        Ok(setup)
    }

    async fn import_demo_data(&self, platform: &Platform, demo: &DemoData) -> Result<(), SetupError> {
        // The data is the same for the same seed, and each file is imported once, so
        // applying the set-up again imports nothing.
        let tag = format!("setup:demo:{}:{}:{}", demo.county, demo.seed, demo.residents_per_grid);
        let data = demo::generate(&platform.tenants(), &demo.county, demo.residents_per_grid, demo.seed);
        let total: usize = data.residents.iter().map(|(_, csv)| csv.lines().count().saturating_sub(1)).sum();
        tracing::info!(residents = total, "importing the demo base data");
        for (kind, files) in [(ImportKind::Residents, &data.residents), (ImportKind::Places, &data.places), (ImportKind::Organisations, &data.organisations)] {
            for (tenant, csv) in files {
                import_once(platform, kind, tenant, csv.as_bytes(), &format!("{tag}:{tenant}:{kind:?}"), &format!("demo {kind:?} for {tenant}")).await?;
            }
        }
        Ok(())
    }

    pub async fn apply(&self, platform: &Platform, auth: &crate::auth::Auth) -> Result<(), SetupError> {
        let step = |what: String| move |source| SetupError::Step { what, source };
        if let Some(path) = &self.tenants_file {
            let doc = parse_tenants_file(&read(path)?).map_err(|e| SetupError::Syntax { path: path.display().to_string(), message: e.to_string() })?;
            let n = platform.load_tenants(&doc.tenants).await.map_err(step(format!("loading {}", path.display())))?;
            tracing::info!(tenants = n, "tenants loaded");
        }
        for t in &self.trust {
            let key = read(&t.public_key_file)?;
            platform.trust_key(&t.county, &t.vendor, &key).await.map_err(step(format!("trusting {}", t.public_key_file.display())))?;
        }
        for p in &self.packages {
            let bytes = std::fs::read(&p.file).map_err(|source| SetupError::Read { path: p.file.display().to_string(), source })?;
            let summary = platform.upload(&p.county, bytes).await.map_err(step(format!("uploading {}", p.file.display())))?;
            tracing::info!(plugin = summary.plugin_id, version = summary.version, "package ready");
        }
        let installed = platform.installations().await.map_err(step("listing installations".into()))?;
        for i in &self.install {
            for tenant in &i.tenants {
                let what = format!("installing {} {} at {tenant}", i.plugin, i.version);
                match installed.iter().find(|x| x.plugin_id == i.plugin && &x.tenant_id == tenant) {
                    Some(existing) if existing.version == i.version => continue,
                    Some(existing) => {
                        let req = UpgradeRequest { version: i.version.clone(), grants: Some(i.grants.clone()) };
                        platform.upgrade(&existing.id, &req, "setup").await.map_err(step(what))?;
                    }
                    None => {
                        let req = InstallRequest {
                            plugin_id: i.plugin.clone(),
                            version: i.version.clone(),
                            tenant_id: tenant.clone(),
                            grants: i.grants.clone(),
                            limits: i.limits.clone(),
                        };
                        platform.install(&req, "setup").await.map_err(step(what))?;
                    }
                }
            }
        }
        if let Some(demo) = &self.demo_data {
            self.import_demo_data(platform, demo).await?;
        }
        for import in &self.base_imports {
            let what = import.file.display().to_string();
            let bytes = std::fs::read(&import.file).map_err(|source| SetupError::Read { path: what.clone(), source })?;
            let kind =
                ImportKind::parse(&import.kind).ok_or_else(|| SetupError::Import { what: what.clone(), message: format!("unknown kind `{}`", import.kind) })?;
            import_once(platform, kind, &import.tenant, &bytes, &format!("setup:{}", crate::packages::sha256_hex(&bytes)), &what).await?;
        }
        for account in &self.accounts {
            match auth.create_account(&platform.tenants(), account).await {
                Ok(_) | Err(crate::auth::AuthError::Conflict(_)) => {}
                Err(e) => return Err(SetupError::Account { phone: crate::auth::accounts::mask_phone(&account.phone), source: e }),
            }
        }
        for device in &self.devices {
            platform.devices.register(device).await.map_err(|e| step(format!("registering device {}", device.id))(e.into()))?;
        }
        for rule in &self.alarm_rules {
            platform.devices.set_rule(rule).await.map_err(|e| step(format!("alarm rule {}", rule.id))(e.into()))?;
        }
        for line in &self.duty_lines {
            crate::help::set_duty_line(&platform.store, &platform.tenants(), &line.tenant, Some(&line.phone), "setup")
                .await
                .map_err(|source| SetupError::DutyLine { tenant: line.tenant.clone(), source })?;
        }
        for call in &self.plugin_requests {
            call_plugin(platform, auth, call).await?;
        }
        Ok(())
    }
}

async fn call_plugin(platform: &Platform, auth: &crate::auth::Auth, call: &PluginCall) -> Result<(), SetupError> {
    use crate::capabilities::identity::RequestUser;
    let what = format!("{} {} of `{}` at {}", call.method, call.path, call.plugin, call.tenant);
    let fail = |message: String| SetupError::PluginCall { what: what.clone(), message };
    let plugin = platform.resolve(&call.plugin, &call.tenant).ok_or_else(|| fail("no such plugin serves that tenant".into()))?;
    let account_id = crate::auth::accounts::id_by_phone(&platform.store, &call.as_phone).await.map_err(|e| fail(e.to_string()))?;
    let account = match account_id {
        Some(id) => auth.account(&id).await.map_err(|e| fail(e.to_string()))?,
        None => None,
    }
    .ok_or_else(|| fail(format!("no account with the phone {}", crate::auth::accounts::mask_phone(&call.as_phone))))?;
    let key = crate::packages::sha256_hex(
        [call.plugin.as_str(), &call.tenant, &call.method.to_uppercase(), &call.path, call.body.as_deref().unwrap_or_default(), &call.as_phone]
            .join("\u{0}")
            .as_bytes(),
    );
    if call.once {
        let done: Option<i64> = sqlx::query_scalar("SELECT done_at FROM setup_requests WHERE request_key = $1")
            .bind(&key)
            .fetch_optional(&platform.store.pool)
            .await
            .map_err(|e| fail(e.to_string()))?;
        if done.is_some() {
            tracing::debug!(call = what, "set-up request made at an earlier start");
            return Ok(());
        }
    }
    let user = std::sync::Arc::new(RequestUser::at(
        &platform.tenants(),
        account.id,
        account.display_name,
        account.kind,
        account.tenant_id,
        account.roles,
        &call.tenant,
    ));
    let mut body = call.body.clone().unwrap_or_default();
    for page in 1..=MAX_FOLLOWED_PAGES {
        let request = crate::runtime::PluginRequest {
            method: call.method.to_uppercase(),
            path: call.path.clone(),
            query: String::new(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.clone().into_bytes(),
            tenant: call.tenant.clone(),
            request_id: format!("setup-{}", uuid::Uuid::new_v4().simple()),
            user: Some(user.clone()),
        };
        let response = platform.runtime.invoke(plugin.clone(), request).await.map_err(|e| fail(e.to_string()))?;
        let answer = String::from_utf8_lossy(&response.body);
        if !(200..300).contains(&response.status) {
            return Err(fail(format!("answered {}: {answer}", response.status)));
        }
        tracing::info!(call = what, page, answer = %answer, "set-up request done");
        let next = match &call.follow {
            None => None,
            Some(_) => serde_json::from_slice::<serde_json::Value>(&response.body).ok().and_then(|mut v| v.get_mut("next").map(serde_json::Value::take)),
        };
        match (next, &call.follow) {
            (Some(next), Some(field)) if !next.is_null() => body = with_field(&body, field, next).map_err(fail)?,
            _ => {
                if call.once {
                    sqlx::query("INSERT INTO setup_requests (request_key, done_at) VALUES ($1, $2) ON CONFLICT (request_key) DO NOTHING")
                        .bind(&key)
                        .bind(crate::store::now_millis())
                        .execute(&platform.store.pool)
                        .await
                        .map_err(|e| fail(e.to_string()))?;
                }
                return Ok(());
            }
        }
    }
    Err(fail(format!("still had a `next` page after {MAX_FOLLOWED_PAGES} pages")))
}

/// `body` (a JSON object, or nothing) with `field` set to `value`.
fn with_field(body: &str, field: &str, value: serde_json::Value) -> Result<String, String> {
    let mut object = if body.trim().is_empty() {
        serde_json::Map::new()
    } else {
        match serde_json::from_str::<serde_json::Value>(body) {
            Ok(serde_json::Value::Object(object)) => object,
            _ => return Err(format!("`follow` needs a body that is a JSON object: {body}")),
        }
    };
    object.insert(field.to_string(), value);
    Ok(serde_json::Value::Object(object).to_string())
}

#[cfg(test)]
mod tests {
    use super::with_field;
    use serde_json::json;

    #[test]
    fn a_followed_page_sets_the_cursor_field_and_keeps_the_rest() {
        let body = with_field(r#"{"period": "2026-12", "cursor": null}"#, "cursor", json!("h-100")).unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap(), json!({ "period": "2026-12", "cursor": "h-100" }));
        assert_eq!(with_field("", "cursor", json!(2)).unwrap(), r#"{"cursor":2}"#);
        assert!(with_field("[1, 2]", "cursor", json!(2)).unwrap_err().contains("JSON object"));
        assert!(with_field("not json", "cursor", json!(2)).is_err());
    }
}
