//! A declarative set-up applied at start (`linli serve --setup FILE`): tenants, trusted
//! keys, packages and installations. Applying it twice changes nothing the second time,
//! so a county can keep its set-up in version control.
use crate::packages::Limits;
use crate::platform::{InstallRequest, Platform, PlatformError, UpgradeRequest};
use crate::tenancy::tree::parse_tenants_file;
use serde::Deserialize;
use std::path::{Path, PathBuf};

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
    #[error("creating the account {phone}: {source}")]
    Account { phone: String, source: crate::auth::AuthError },
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
        Ok(setup)
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
                        platform.upgrade(&existing.id, &req).await.map_err(step(what))?;
                    }
                    None => {
                        let req = InstallRequest {
                            plugin_id: i.plugin.clone(),
                            version: i.version.clone(),
                            tenant_id: tenant.clone(),
                            grants: i.grants.clone(),
                            limits: i.limits.clone(),
                        };
                        platform.install(&req).await.map_err(step(what))?;
                    }
                }
            }
        }
        for account in &self.accounts {
            match auth.create_account(&platform.tenants(), account).await {
                Ok(_) | Err(crate::auth::AuthError::Conflict(_)) => {}
                Err(e) => return Err(SetupError::Account { phone: crate::auth::accounts::mask_phone(&account.phone), source: e }),
            }
        }
        Ok(())
    }
}
