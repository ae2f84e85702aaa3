//! What the browser is told about everything a plugin serves — its `ui/` files and every
//! dynamic route alike. The host decides the security headers, not the plugin:
//!
//! - `Content-Security-Policy: sandbox …` without `allow-same-origin` (nor
//!   `allow-top-navigation`), so a plugin's page runs in an opaque origin whether the app
//!   frames it or someone opens it top-level: it cannot read the host's cookies, storage or
//!   DOM, and the host's API does not take it for the signed-in person (see
//!   `api::cookie`). The same policy limits where the page may load from and connect
//!   to: its host's files, plus the external origins the county granted (`ui-connect:ORIGIN`).
//! - Of the headers a plugin writes, only content and caching headers and its own `x-…`
//!   headers pass; cookies, CORS, HSTS, framing, reporting and authentication prompts are
//!   dropped. Its own CSP is kept as a second policy, which browsers enforce as well, so it
//!   can only narrow the host's (its reporting directives are removed: they would send data
//!   out).
use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// The sandbox flags of plugin pages (the same in the `<iframe sandbox>` of the app and
/// the console): scripts, forms, dialogs, and popups that stay sandboxed.
pub const SANDBOX_FLAGS: &str = "allow-scripts allow-forms allow-popups allow-modals";

/// The origins an installation's pages may load from and connect to.
pub fn granted_origins(grants: &[String]) -> Vec<&str> {
    grants.iter().filter_map(|g| g.strip_prefix(crate::packages::UI_CONNECT_GRANT)).filter(|o| linli_formats::manifest::is_valid_origin(o)).collect()
}

/// The policy of every response under a plugin's prefix.
pub fn content_security_policy(origins: &[&str]) -> String {
    let extra: String = origins.iter().map(|o| format!(" {o}")).collect();
    let connect = if origins.is_empty() { " 'none'".to_string() } else { extra.clone() };
    format!(
        "sandbox {SANDBOX_FLAGS}; default-src 'none'; script-src 'self' 'unsafe-inline'{extra}; style-src 'self' 'unsafe-inline'{extra}; \
         img-src 'self' data: blob:{extra}; font-src 'self' data:{extra}; media-src 'self' data: blob:{extra}; connect-src{connect}; \
         form-action{connect}; frame-src 'none'; worker-src 'none'; object-src 'none'; manifest-src 'none'; base-uri 'none'; \
         frame-ancestors 'self'"
    )
}

/// Powerful browser features a plugin page never gets.
const PERMISSIONS_POLICY: &str = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), hid=(), bluetooth=(), display-capture=()";

/// The policy of nearly every installation (no origins granted), made once: this runs on
/// every plugin response.
static WITHOUT_ORIGINS: std::sync::LazyLock<Option<HeaderValue>> = std::sync::LazyLock::new(|| HeaderValue::from_str(&content_security_policy(&[])).ok());

/// Set the host's headers on a plugin response (replacing any of the same name).
pub fn apply(headers: &mut HeaderMap, origins: &[&str]) {
    let csp = if origins.is_empty() { WITHOUT_ORIGINS.clone() } else { HeaderValue::from_str(&content_security_policy(origins)).ok() };
    if let Some(csp) = csp {
        headers.append(axum::http::header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(axum::http::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(axum::http::header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(HeaderName::from_static("permissions-policy"), HeaderValue::from_static(PERMISSIONS_POLICY));
}

/// Standard headers a plugin may set: what its content is and how it may be cached.
const PLUGIN_HEADERS: &[&str] = &[
    "content-type",
    "content-language",
    "content-disposition",
    "content-encoding",
    "content-range",
    "accept-ranges",
    "cache-control",
    "etag",
    "last-modified",
    "expires",
    "vary",
    "allow",
    "retry-after",
    "location",
];

/// `x-` headers that are browser security switches, not the plugin's own data.
const RESERVED_X_HEADERS: &[&str] =
    &["x-frame-options", "x-content-type-options", "x-xss-protection", "x-dns-prefetch-control", "x-permitted-cross-domain-policies"];

/// What is left of a header the plugin wrote: `None` drops it.
pub fn plugin_header(name: &str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    let name = name.to_ascii_lowercase();
    let value = match name.as_str() {
        "location" => same_host_location(value)?.to_string(),
        "content-security-policy" => narrowing_policy(value)?,
        n if PLUGIN_HEADERS.contains(&n) => value.to_string(),
        n if n.starts_with("x-") && !n.starts_with("x-linli-") && !RESERVED_X_HEADERS.contains(&n) => value.to_string(),
        _ => return None,
    };
    Some((HeaderName::try_from(name).ok()?, HeaderValue::try_from(value).ok()?))
}

/// A redirect stays on the host (a path, not another site): the host is no open
/// redirector for its plugins.
fn same_host_location(value: &str) -> Option<&str> {
    let value = value.trim();
    let path_like = value.starts_with('/') && !value.starts_with("//") && !value.starts_with("/\\");
    let relative = !value.starts_with('/') && !value.starts_with('\\') && value.split(['/', '?', '#']).next().is_some_and(|first| !first.contains(':'));
    (path_like || relative).then_some(value).filter(|v| !v.chars().any(|c| c.is_control()))
}

/// The plugin's own policy without the directives that would send reports out.
fn narrowing_policy(value: &str) -> Option<String> {
    let kept: Vec<&str> = value
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .filter(|d| {
            let name = d.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
            name != "report-uri" && name != "report-to"
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_sandboxes_and_allows_only_granted_origins() {
        let none = content_security_policy(&[]);
        assert!(none.starts_with("sandbox allow-scripts allow-forms allow-popups allow-modals;"), "{none}");
        assert!(!none.contains("allow-same-origin") && !none.contains("allow-top-navigation"), "{none}");
        assert!(none.contains("connect-src 'none';") && none.contains("form-action 'none';"), "{none}");
        let one = content_security_policy(&["https://api.vendor.cn"]);
        assert!(one.contains("connect-src https://api.vendor.cn;"), "{one}");
        assert!(one.contains("img-src 'self' data: blob: https://api.vendor.cn;"), "{one}");
    }

    /// The app's and the console's `<iframe sandbox>` (bridge.js) use the same flags.
    #[test]
    fn the_frames_use_the_same_sandbox_flags() {
        let bridge = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/web/app/bridge.js")).expect("bridge.js");
        assert!(bridge.contains(&format!("const SANDBOX = \"{SANDBOX_FLAGS}\";")), "bridge.js and SANDBOX_FLAGS differ");
    }

    #[test]
    fn only_valid_granted_origins_reach_the_policy() {
        let grants = ["data", "ui-connect:https://api.vendor.cn", "ui-connect:https://x.cn; script-src *", "identity"].map(String::from);
        assert_eq!(granted_origins(&grants), ["https://api.vendor.cn"]);
    }

    #[test]
    fn plugins_keep_content_headers_and_lose_security_ones() {
        let kept = |name: &str, value: &str| plugin_header(name, value).map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()));
        assert_eq!(kept("Content-Type", "text/html"), Some(("content-type".into(), "text/html".into())));
        assert_eq!(kept("X-Total-Count", "3"), Some(("x-total-count".into(), "3".into())));
        for dropped in [
            "set-cookie",
            "clear-site-data",
            "access-control-allow-origin",
            "access-control-allow-credentials",
            "strict-transport-security",
            "x-frame-options",
            "content-security-policy-report-only",
            "report-to",
            "reporting-endpoints",
            "nel",
            "www-authenticate",
            "refresh",
            "link",
            "x-linli-tenant",
            "cross-origin-opener-policy",
        ] {
            assert_eq!(kept(dropped, "x"), None, "{dropped}");
        }
    }

    #[test]
    fn redirects_stay_on_the_host() {
        assert!(plugin_header("location", "/t/xingfu/p/hello/ui/").is_some());
        assert!(plugin_header("location", "done.html?x=1").is_some());
        for away in ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)", "\\\\evil"] {
            assert!(plugin_header("location", away).is_none(), "{away}");
        }
    }

    #[test]
    fn a_plugin_policy_narrows_but_reports_nowhere() {
        let (_, value) = plugin_header("Content-Security-Policy", "default-src 'none'; report-uri https://evil.example/r; REPORT-TO x").expect("kept");
        assert_eq!(value, "default-src 'none'");
        assert!(plugin_header("content-security-policy", "report-uri https://evil.example/r").is_none());
    }
}
