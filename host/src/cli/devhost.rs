//! A throwaway local host for one plugin (`linli plugin test`, `linli plugin dev`): SQLite in
//! a temporary folder, the demo county's tenants and people, the plugin signed with a key made
//! for the occasion and installed for the whole county with everything its manifest requests.
use crate::packages::signing::{self, SignatureFile};
use crate::packages::{Manifest, Package};
use crate::Server;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

const DEMO_TENANTS: &str = include_str!("../../../demo/tenants.toml");
const PEOPLE: &str = include_str!("dev/accounts.toml");
/// The base records of the residents among them: their houses and households.
const RESIDENTS: &str = include_str!("dev/residents.csv");
/// The property companies of 幸福社区 and 和平社区 and the county's legal-aid centre.
const ORGANISATIONS: &str = include_str!("dev/organisations.csv");
/// Every dev person's password (the host is a local, throwaway one).
pub const PASSWORD: &str = "linli-dev-2026";
/// Where the plugin is installed: the whole demo county.
pub const COUNTY: &str = "demo-county";

#[derive(Deserialize)]
struct People {
    people: Vec<Person>,
}

#[derive(Deserialize)]
pub struct Person {
    pub handle: String,
    pub about: String,
    account: toml::Table,
}

impl Person {
    pub fn phone(&self) -> &str {
        self.account.get("phone").and_then(|p| p.as_str()).unwrap_or_default()
    }

    /// The community a resident belongs to.
    pub fn community(&self) -> Option<&str> {
        self.account.get("tenant_id").and_then(|t| t.as_str())
    }
}

/// The dev host's people, read once from the file built into the binary.
pub fn people() -> Result<&'static [Person]> {
    static PARSED: std::sync::OnceLock<Result<Vec<Person>, String>> = std::sync::OnceLock::new();
    let parsed = PARSED.get_or_init(|| toml::from_str::<People>(PEOPLE).map(|p| p.people).map_err(|e| e.to_string()));
    parsed.as_deref().map_err(|e| anyhow::anyhow!("the dev host's people: {e}"))
}

/// Every grant the manifest asks for: capabilities, their scopes and the origins of `http`.
pub fn requested_grants(manifest: &Manifest) -> Vec<String> {
    let mut grants = Vec::new();
    for capability in &manifest.capabilities {
        grants.push(capability.name.clone());
        grants.extend(capability.scopes.iter().map(|scope| format!("{}:{scope}", capability.name)));
        grants.extend(capability.hosts.iter().map(|origin| format!("{}{origin}", crate::packages::HTTP_HOST_GRANT)));
    }
    grants
}

pub struct DevHost {
    pub server: Server,
    pub manifest: Manifest,
    /// The throwaway vendor key (PKCS#8 PEM) the dev packages are signed with.
    key: String,
    /// Holds the data folder until the host is dropped.
    work: tempfile::TempDir,
    tokens: BTreeMap<String, String>,
}

impl DevHost {
    /// Start on `listen` with `package` (signed here with a key made for this host).
    pub async fn start(package: Package, listen: &str) -> Result<Self> {
        let work = tempfile::Builder::new().prefix("linli-dev-").tempdir().context("a temporary folder for the dev host")?;
        let key = signing::encode_secret(&signing::generate())?;
        let manifest = package.manifest.clone();
        let signed = work.path().join("plugin.lpkg");
        std::fs::write(&signed, sign(package, &key)?)?;
        std::fs::write(work.path().join("vendor.pub"), signing::encode_public(&signing::decode_secret(&key)?.verifying_key()))?;
        std::fs::write(work.path().join("tenants.toml"), DEMO_TENANTS)?;

        let mut setup = toml::Table::new();
        setup.insert("tenants_file".into(), "tenants.toml".into());
        let trust = toml::toml! { county = COUNTY public_key_file = "vendor.pub" };
        let mut trust = trust;
        trust.insert("vendor".into(), manifest.vendor.clone().into());
        setup.insert("trust".into(), toml::Value::Array(vec![trust.into()]));
        setup.insert("packages".into(), toml::Value::Array(vec![toml::toml! { county = COUNTY file = "plugin.lpkg" }.into()]));
        let mut install = toml::Table::new();
        install.insert("plugin".into(), manifest.id.clone().into());
        install.insert("version".into(), manifest.version.to_string().into());
        install.insert("tenants".into(), toml::Value::Array(vec![COUNTY.into()]));
        install.insert("grants".into(), toml::Value::Array(requested_grants(&manifest).into_iter().map(Into::into).collect()));
        setup.insert("install".into(), toml::Value::Array(vec![install.into()]));
        std::fs::write(work.path().join("residents.csv"), RESIDENTS)?;
        std::fs::write(work.path().join("organisations.csv"), ORGANISATIONS)?;
        setup.insert(
            "base_imports".into(),
            toml::Value::Array(vec![
                toml::toml! { kind = "residents" tenant = COUNTY file = "residents.csv" }.into(),
                toml::toml! { kind = "organisations" tenant = COUNTY file = "organisations.csv" }.into(),
            ]),
        );
        let accounts = people()?
            .iter()
            .map(|person| {
                let mut account = person.account.clone();
                account.insert("password".into(), PASSWORD.into());
                toml::Value::Table(account)
            })
            .collect();
        setup.insert("accounts".into(), toml::Value::Array(accounts));
        let setup_file = work.path().join("setup.toml");
        std::fs::write(&setup_file, toml::to_string(&setup)?)?;
        let setup = crate::setup::Setup::load(&setup_file)?;

        let mut config = crate::config::Config::load(None)?;
        config.listen = listen.to_string();
        config.data_dir = work.path().join("data");
        config.database_url = String::new();
        if config.compile_cache_dir.is_none() {
            config.compile_cache_dir = Some(super::toolchain::compiled_components()?);
        }
        config.admin_token = String::new();
        config.admin_token_sha256 = String::new();
        config.master_key = String::new();
        config.master_key_file = None;
        config.tenants_file = None;
        config.public_url = None;
        // A broker of its own on a free port, beside any other Linli on this machine.
        config.devices.broker = "embedded".into();
        config.devices.embedded_listen = "127.0.0.1:0".into();
        std::fs::create_dir_all(&config.data_dir)?;
        let server = crate::start(config, Some(setup)).await.context("starting the dev host")?;
        Ok(Self { server, manifest, key, work, tokens: BTreeMap::new() })
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn data_dir(&self) -> std::path::PathBuf {
        self.work.path().join("data")
    }

    /// A bearer token of the person with `handle`, signed in on first use.
    pub async fn token(&mut self, handle: &str) -> Result<String> {
        if let Some(token) = self.tokens.get(handle) {
            return Ok(token.clone());
        }
        let people = people()?;
        let known = people.iter().map(|p| p.handle.as_str()).collect::<Vec<_>>().join(", ");
        let person =
            people.iter().find(|p| p.handle == handle).with_context(|| format!("no person `{handle}` on the dev host; use one of: visitor, {known}"))?;
        let tokens = self.server.auth.login_password(person.phone(), PASSWORD).await.with_context(|| format!("signing in {handle}"))?;
        self.tokens.insert(handle.to_string(), tokens.access_token.clone());
        Ok(tokens.access_token)
    }

    /// Upload `package` (a newer version of the plugin), signed with this host's key, and
    /// upgrade the installation to it with everything it requests.
    pub async fn upgrade(&mut self, package: Package) -> Result<String> {
        let manifest = package.manifest.clone();
        let platform = &self.server.platform;
        platform.upload(COUNTY, sign(package, &self.key)?).await?;
        let installation = platform
            .installations()
            .await?
            .into_iter()
            .find(|i| i.plugin_id == manifest.id && i.tenant_id == COUNTY)
            .context("the dev installation is gone")?;
        let request = crate::platform::UpgradeRequest { version: manifest.version.to_string(), grants: Some(requested_grants(&manifest)) };
        platform.upgrade(&installation.id, &request, "linli plugin dev").await?;
        self.manifest = manifest;
        Ok(installation.id)
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

fn sign(mut package: Package, key: &str) -> Result<Vec<u8>> {
    package.signature = Some(SignatureFile::sign(&signing::decode_secret(key)?, package.manifest_text.as_bytes()));
    Ok(package.write()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_person_has_a_handle_a_phone_and_an_account_the_host_accepts() {
        let people = people().expect("people");
        assert!(people.iter().any(|p| p.handle == "resident" && p.community() == Some("xingfu")));
        for person in people {
            assert!(!person.phone().is_empty() && !person.about.is_empty(), "{}", person.handle);
            let mut account = person.account.clone();
            account.insert("password".into(), PASSWORD.into());
            let parsed: Result<crate::auth::accounts::NewAccount, _> = toml::Value::Table(account).try_into();
            assert!(parsed.is_ok(), "{}: {parsed:?}", person.handle);
        }
    }

    #[test]
    fn every_resident_has_a_base_record_with_a_house() {
        for person in people().expect("people").iter().filter(|p| p.community().is_some()) {
            let record = RESIDENTS.lines().skip(1).find(|line| line.split(',').nth(2) == Some(person.phone()));
            let fields: Vec<&str> = record.unwrap_or_else(|| panic!("{} has no base record", person.handle)).split(',').collect();
            assert!(fields[3].starts_with(person.community().unwrap_or_default()), "{}: lives in her own community", person.handle);
            assert!(fields[4..7].iter().all(|f| !f.is_empty()), "{}: has a house", person.handle);
        }
    }

    #[test]
    fn grants_everything_the_manifest_requests() {
        let manifest = Manifest::parse(
            "id = \"notes\"\nname = \"n\"\nversion = \"0.1.0\"\nvendor = \"v\"\n[[capabilities]]\nname = \"identity\"\nreason = \"r\"\nscopes = [\"real-name\"]\n[[capabilities]]\nname = \"http\"\nreason = \"r\"\nhosts = [\"https://api.vendor.cn\"]\n",
        )
        .expect("manifest");
        assert_eq!(requested_grants(&manifest), ["identity", "identity:real-name", "http", "http-host:https://api.vendor.cn"]);
    }
}
