//! `linli.toml`: what a plugin is, what it asks for and why.
use semver::Version;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MANIFEST_FILE: &str = "linli.toml";
pub const SIGNATURE_FILE: &str = "linli.sig";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Stable id, lower-case letters, digits and `-`: `elderly-care`.
    pub id: String,
    /// Display name shown to residents and operators.
    pub name: String,
    #[schema(value_type = String, example = "0.1.0")]
    pub version: Version,
    pub vendor: String,
    #[serde(default)]
    pub description: String,
    /// Routes are served under `/p/{route_prefix}/`; defaults to the id.
    #[serde(default)]
    pub route_prefix: Option<String>,
    /// Path of the component inside the package.
    #[serde(default = "default_component")]
    pub component: String,
    /// Page the resident app opens, a path inside the package (e.g. `ui/index.html`).
    #[serde(default)]
    pub ui_entry: Option<String>,
    #[serde(default)]
    pub capabilities: Vec<CapabilityRequest>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub data: DataSettings,
    /// Currencies of the plugin's ledger (`[ledger.currencies.CODE]`).
    #[serde(default)]
    pub ledger: crate::sections::LedgerSettings,
    /// Platform events delivered to `on-event` (`[events]`).
    #[serde(default)]
    pub events: crate::sections::EventSettings,
    /// Figures the plugin gives the dashboards (`[dashboard]`).
    #[serde(default)]
    pub dashboard: crate::sections::DashboardSettings,
    /// What the plugin's pages need from the browser (`[ui]`).
    #[serde(default, skip_serializing_if = "UiSettings::is_empty")]
    pub ui: UiSettings,
    /// How the resident app lists it (`[app]`).
    #[serde(default, skip_serializing_if = "crate::listing::AppSettings::is_default")]
    pub app: crate::listing::AppSettings,
    /// Name, description and reasons in the app's other languages (`[translations.en]`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub translations: BTreeMap<String, crate::listing::Translation>,
    /// sha256 (hex) of every file in the package except the manifest and signature.
    /// Filled in by `linli plugin pack`.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

fn default_component() -> String {
    "plugin.wasm".to_string()
}

/// A capability the plugin asks for, with the reason shown to the operator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapabilityRequest {
    pub name: String,
    pub reason: String,
    /// Narrower permissions inside the capability, e.g. `id-number` for `identity`;
    /// each is granted separately (`identity:id-number`) and shown with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// For `http` only: the origins the plugin's server code may call
    /// (`https://api.vendor.cn`), each granted by the county one by one (`http-host:ORIGIN`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

/// Resource limits a vendor asks for; the operator may override them per installation.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub deadline_ms: Option<u64>,
    pub memory_mib: Option<u64>,
    pub max_concurrency: Option<u32>,
    /// How many requests one instance may serve, one after another, before it is dropped.
    /// 1 (the default) is a fresh instance per request. More saves the instantiation, but
    /// whatever one request leaves in the plugin's memory the next one sees: the host only
    /// reuses an instance for the same tenant and the same signed-in user (or anonymous
    /// visitors), never across them.
    pub requests_per_instance: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataSettings {
    /// collection → top-level fields that `data.query` may filter on.
    #[serde(default)]
    pub indexes: BTreeMap<String, Vec<String>>,
}

/// `[ui]`: the external origins the plugin's pages load from or connect to (like a
/// mini-program's request domains). Each is granted by the county one by one
/// (`ui-connect:ORIGIN`); the pages' content security policy allows exactly the granted ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UiSettings {
    /// Origins such as `https://api.vendor.cn` or `https://maps.example.com:8443`.
    #[serde(default)]
    pub connect: Vec<String>,
}

impl UiSettings {
    pub fn is_empty(&self) -> bool {
        self.connect.is_empty()
    }
}

/// The grant of one `[ui] connect` origin: `ui-connect:https://api.vendor.cn`.
pub const UI_CONNECT_GRANT: &str = "ui-connect:";

/// The most origins a package may ask its pages to reach.
pub const MAX_UI_ORIGINS: usize = 16;

/// The grant of one origin the plugin's server code may call (`[[capabilities]] name =
/// "http"`, `hosts`): `http-host:https://api.vendor.cn`.
pub const HTTP_HOST_GRANT: &str = "http-host:";

/// The most origins a package may ask to call.
pub const MAX_HTTP_HOSTS: usize = 16;

/// How to write an origin, for the errors that refuse one.
const ORIGIN_HINT: &str = "write https://host or https://host:port (lower case, no path; http:// only for 127.0.0.1 or localhost)";

/// An origin a page may be allowed to reach: `https://host[:port]` with a DNS name or an
/// IP address, lower case, nothing after it; `http://` only for this machine (127.0.0.1,
/// localhost, [::1]) while developing. Strict, because it is written into a content
/// security policy.
pub fn is_valid_origin(origin: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    let Some((host, port)) = split_authority(authority) else { return false };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()) && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n)));
    let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
    let ipv6 = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit() || c == ':'));
    let name = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    let scheme_ok = scheme == "https" || (scheme == "http" && loopback);
    scheme_ok && port_ok && (name || ipv6)
}

/// `host[:port]` or `[v6][:port]`.
fn split_authority(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let (host, rest) = authority.split_at(authority.find(']')? + 1);
        return if rest.is_empty() { Some((host, None)) } else { Some((host, Some(rest.strip_prefix(':')?))) };
    }
    Some(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("linli.toml is not valid: {0}")]
    Syntax(String),
    #[error("linli.toml: {field} {problem}")]
    Invalid { field: String, problem: String },
}

fn invalid(field: &str, problem: impl Into<String>) -> ManifestError {
    ManifestError::Invalid { field: field.to_string(), problem: problem.into() }
}

/// Ids and route prefixes: 2–48 of `a-z 0-9 -`, starting with a letter.
pub fn is_valid_id(id: &str) -> bool {
    (2..=48).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A relative path inside a package: no `..`, no absolute paths, no backslashes.
pub fn is_safe_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 255
        && !path.starts_with('/')
        && !path.contains('\\')
        && path.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| ManifestError::Syntax(e.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    pub fn route_prefix(&self) -> &str {
        self.route_prefix.as_deref().unwrap_or(&self.id)
    }

    pub fn requests(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c.name == capability)
    }

    pub fn requests_scope(&self, capability: &str, scope: &str) -> bool {
        self.capabilities.iter().any(|c| c.name == capability && c.scopes.iter().any(|s| s == scope))
    }

    /// Whether the manifest asks for what `grant` gives: a capability (`data`), one of its
    /// scopes (`identity:phone`) or an origin for its pages (`ui-connect:https://…`).
    pub fn requests_grant(&self, grant: &str) -> bool {
        if let Some(origin) = grant.strip_prefix(UI_CONNECT_GRANT) {
            return self.ui.connect.iter().any(|o| o == origin);
        }
        if let Some(origin) = grant.strip_prefix(HTTP_HOST_GRANT) {
            return self.http_hosts().iter().any(|o| o == origin);
        }
        match grant.split_once(':') {
            Some((capability, scope)) => self.requests_scope(capability, scope),
            None => self.requests(grant),
        }
    }

    /// The origins listed under the `http` capability.
    pub fn http_hosts(&self) -> &[String] {
        self.capabilities.iter().find(|c| c.name == "http").map_or(&[], |c| c.hosts.as_slice())
    }

    pub fn reason_for(&self, capability: &str) -> Option<&str> {
        self.capabilities.iter().find(|c| c.name == capability).map(|c| c.reason.as_str())
    }

    /// Checks that need nothing but the manifest; the host's known capabilities are
    /// checked by `capabilities::validate_manifest`.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if !is_valid_id(&self.id) {
            return Err(invalid("id", format!("`{}` must be 2–48 of a-z, 0-9 and -, starting with a letter", self.id)));
        }
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        if self.vendor.trim().is_empty() {
            return Err(invalid("vendor", "must not be empty"));
        }
        if let Some(prefix) = &self.route_prefix {
            if !is_valid_id(prefix) {
                return Err(invalid("route_prefix", format!("`{prefix}` must be 2–48 of a-z, 0-9 and -, starting with a letter")));
            }
        }
        if !is_safe_path(&self.component) {
            return Err(invalid("component", format!("`{}` is not a safe relative path", self.component)));
        }
        if let Some(entry) = &self.ui_entry {
            if !is_safe_path(entry) {
                return Err(invalid("ui_entry", format!("`{entry}` is not a safe relative path")));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for cap in &self.capabilities {
            if !seen.insert(cap.name.as_str()) {
                return Err(invalid("capabilities", format!("`{}` is requested twice", cap.name)));
            }
            if cap.reason.trim().is_empty() {
                return Err(invalid("capabilities", format!("`{}` needs a reason to show the operator", cap.name)));
            }
            if !cap.hosts.is_empty() && cap.name != "http" {
                return Err(invalid("capabilities", format!("`{}` lists hosts; only `http` has hosts", cap.name)));
            }
        }
        if self.requests("http") {
            let hosts = self.http_hosts();
            if hosts.is_empty() || hosts.len() > MAX_HTTP_HOSTS {
                return Err(invalid("capabilities", format!("`http` lists the origins it calls under `hosts`: 1 to {MAX_HTTP_HOSTS}")));
            }
            for (i, origin) in hosts.iter().enumerate() {
                if !is_valid_origin(origin) {
                    return Err(invalid("capabilities", format!("`http` host `{origin}` is not an origin: {ORIGIN_HINT}")));
                }
                if hosts[..i].contains(origin) {
                    return Err(invalid("capabilities", format!("`http` lists `{origin}` twice")));
                }
            }
        }
        if let Some(ms) = self.limits.deadline_ms {
            if !(1..=60_000).contains(&ms) {
                return Err(invalid("limits.deadline_ms", "must be between 1 and 60000"));
            }
        }
        if let Some(mib) = self.limits.memory_mib {
            if !(1..=4096).contains(&mib) {
                return Err(invalid("limits.memory_mib", "must be between 1 and 4096"));
            }
        }
        if let Some(n) = self.limits.max_concurrency {
            if !(1..=10_000).contains(&n) {
                return Err(invalid("limits.max_concurrency", "must be between 1 and 10000"));
            }
        }
        self.dashboard.validate().map_err(|problem| invalid("dashboard", problem))?;
        self.app.validate().map_err(|problem| invalid("app", problem))?;
        let translatable = crate::listing::Translatable {
            capabilities: self.capabilities.iter().map(|c| c.name.as_str()).collect(),
            figures: self.dashboard.figures.iter().map(|f| f.key.as_str()).chain(self.dashboard.ratios.iter().map(|r| r.key.as_str())).collect(),
            reports: self.app.reports.iter().map(|r| r.id.as_str()).collect(),
        };
        crate::listing::validate_translations(&self.translations, &translatable).map_err(|problem| invalid("translations", problem))?;
        if self.ui.connect.len() > MAX_UI_ORIGINS {
            return Err(invalid("ui.connect", format!("lists {} origins; at most {MAX_UI_ORIGINS}", self.ui.connect.len())));
        }
        for origin in &self.ui.connect {
            if !is_valid_origin(origin) {
                return Err(invalid("ui.connect", format!("`{origin}` is not an origin: {ORIGIN_HINT}")));
            }
        }
        for (path, hash) in &self.files {
            if !is_safe_path(path) {
                return Err(invalid("files", format!("`{path}` is not a safe relative path")));
            }
            if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(invalid("files", format!("the sha256 of `{path}` is not 64 hex digits")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "hello"
name = "你好"
version = "0.1.0"
vendor = "linli"
[[capabilities]]
name = "data"
reason = "count visits"
"#;

    #[test]
    fn http_hosts_are_origins_of_the_http_capability_only() {
        let with = |extra: &str| Manifest::parse(&format!("{GOOD}\n[[capabilities]]\nname = \"http\"\nreason = \"asks the county's 12345 system\"\n{extra}"));
        let ok = with(r#"hosts = ["https://api.vendor.cn", "http://127.0.0.1:8080"]"#).unwrap();
        assert_eq!(ok.http_hosts(), ["https://api.vendor.cn", "http://127.0.0.1:8080"]);
        assert!(ok.requests_grant("http-host:https://api.vendor.cn"));
        assert!(!ok.requests_grant("http-host:https://evil.example"));
        for (bad, why) in [
            ("", "hosts"),
            (r#"hosts = ["http://api.vendor.cn"]"#, "not an origin"),
            (r#"hosts = ["https://api.vendor.cn/v1"]"#, "not an origin"),
            (r#"hosts = ["https://a.cn", "https://a.cn"]"#, "twice"),
        ] {
            let err = with(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let elsewhere = Manifest::parse(&GOOD.replace("reason = \"count visits\"", "reason = \"count visits\"\nhosts = [\"https://a.cn\"]")).unwrap_err();
        assert!(elsewhere.to_string().contains("only `http` has hosts"), "{elsewhere}");
    }

    #[test]
    fn ui_origins_are_plain_origins() {
        for good in [
            "https://api.vendor.cn",
            "https://maps.example.com:8443",
            "http://127.0.0.1:3000",
            "http://localhost:8080",
            "https://[2001:db8::1]",
            "https://[2001:db8::1]:443",
        ] {
            assert!(is_valid_origin(good), "{good}");
        }
        for bad in [
            "api.vendor.cn",
            "http://api.vendor.cn",
            "https://api.vendor.cn/",
            "https://api.vendor.cn/path",
            "https://*.vendor.cn",
            "https://API.vendor.cn",
            "https://api.vendor.cn:0",
            "https://api.vendor.cn:99999",
            "https://api.vendor.cn:",
            "https://a.cn; script-src *",
            "https://a.cn 'unsafe-eval'",
            "https://",
            "https://-a.cn",
            "javascript://a.cn",
            "https://a.cn?x",
            "https://user@a.cn",
        ] {
            assert!(!is_valid_origin(bad), "{bad}");
        }
        let listed = format!("{GOOD}\n[ui]\nconnect = [\"https://api.vendor.cn\"]\n");
        assert_eq!(Manifest::parse(&listed).unwrap().ui.connect, ["https://api.vendor.cn"]);
        let bad = format!("{GOOD}\n[ui]\nconnect = [\"https://api.vendor.cn/x\"]\n");
        assert!(Manifest::parse(&bad).unwrap_err().to_string().contains("ui.connect"));
    }

    #[test]
    fn parses_and_defaults() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.route_prefix(), "hello");
        assert_eq!(m.component, "plugin.wasm");
        assert!(m.requests("data"));
        assert!(!m.requests("ledger"));
        let again = Manifest::parse(&m.to_toml()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn rejects_bad_manifests_with_the_field_named() {
        let bad_version = GOOD.replace("0.1.0", "one");
        assert!(Manifest::parse(&bad_version).unwrap_err().to_string().contains("version"));
        let bad_id = GOOD.replace("\"hello\"", "\"Hello World\"");
        assert!(Manifest::parse(&bad_id).unwrap_err().to_string().contains("id"));
        let unknown = format!("{GOOD}\nsurprise = 1\n");
        assert!(Manifest::parse(&unknown).unwrap_err().to_string().contains("surprise"));
        let no_reason = GOOD.replace("count visits", " ");
        assert!(Manifest::parse(&no_reason).unwrap_err().to_string().contains("reason"));
        let traversal = format!("{GOOD}\n[files]\n\"../etc/passwd\" = \"{}\"\n", "0".repeat(64));
        assert!(Manifest::parse(&traversal).unwrap_err().to_string().contains("safe"));
    }

    #[test]
    fn app_listing_and_translations() {
        let listed = format!(
            "{GOOD}\n[app]\naudience = \"staff\"\ncategory = \"care\"\nicon = \"care\"\n[translations.en]\nname = \"Hello\"\n[translations.en.reasons]\ndata = \"counts visits\"\n"
        );
        let m = Manifest::parse(&listed).unwrap();
        assert_eq!(m.app.audience, crate::listing::Audience::Staff);
        assert_eq!(m.translations["en"].reasons["data"], "counts visits");
        assert_eq!(Manifest::parse(&m.to_toml()).unwrap(), m);
        assert!(Manifest::parse(GOOD).unwrap().app.is_default());
        let reports = format!(
            "{GOOD}\n[[app.reports]]\nid = \"repair\"\nname = \"物业维修\"\nreplaces = \"repair\"\n[[app.reports]]\nid = \"feedback\"\nname = \"物业投诉建议\"\n[translations.en.reports]\nrepair = \"Property repair\"\n"
        );
        let m = Manifest::parse(&reports).unwrap();
        assert_eq!(m.app.reports.len(), 2);
        assert_eq!(m.app.reports[0].replaces.as_deref(), Some("repair"));
        assert_eq!(m.translations["en"].reports["repair"], "Property repair");
        assert_eq!(Manifest::parse(&m.to_toml()).unwrap(), m);
        for (bad, named) in [
            ("[app]\ncategory = \"games\"", "games"),
            ("[app]\nicon = \"https://evil.example/x.svg\"", "icon"),
            ("[app]\naudience = \"everyone\"", "audience"),
            ("[translations.fr]\nname = \"Bonjour\"", "fr"),
            ("[translations.en]\nname = \" \"", "name"),
            ("[translations.en.reasons]\nledger = \"money\"", "ledger"),
            ("[translations.en.figures]\nvisits = \"Visits\"", "visits"),
            ("[translations.en.reports]\nrepair = \"Repairs\"", "repair"),
            ("[[app.reports]]\nid = \"Repair!\"\nname = \"报修\"", "Repair!"),
            ("[[app.reports]]\nid = \"repair\"\nname = \" \"", "name"),
            ("[[app.reports]]\nid = \"repair\"\nname = \"报修\"\n[[app.reports]]\nid = \"repair\"\nname = \"维修\"", "twice"),
            ("[[app.reports]]\nid = \"sos\"\nname = \"求助\"\nreplaces = \"emergency\"", "emergency"),
            ("[[app.reports]]\nid = \"alarm\"\nname = \"告警\"\nreplaces = \"device-alarm\"", "device-alarm"),
            (
                "[[app.reports]]\nid = \"a\"\nname = \"甲\"\nreplaces = \"repair\"\n[[app.reports]]\nid = \"b\"\nname = \"乙\"\nreplaces = \"repair\"",
                "two kinds",
            ),
        ] {
            let error = Manifest::parse(&format!("{GOOD}\n{bad}\n")).unwrap_err().to_string();
            assert!(error.contains(named), "{bad}: {error}");
        }
    }

    #[test]
    fn safe_paths() {
        assert!(is_safe_path("ui/index.html"));
        assert!(!is_safe_path("../x"));
        assert!(!is_safe_path("/abs"));
        assert!(!is_safe_path("a//b"));
        assert!(!is_safe_path("a\\b"));
    }
}
