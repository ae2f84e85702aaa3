//! Security headers for what the host serves itself: the resident app, the console, the
//! OIDC pages and the JSON API. Plugin responses carry their own, stricter policy
//! (`page_policy`); a header a response already has is never replaced, so this layer only
//! fills in.
use axum::http::header::{self, HeaderValue};
use axum::response::Response;

/// The app's and the console's pages: scripts only from the host (no inline script, no
/// eval), plugin pages framed from the host's own origin, nothing framing the host. Inline
/// styles stay allowed: the pages set `style` attributes, and a style cannot run code.
/// No `form-action`: browsers apply it to the redirect after a form, and the OIDC consent
/// form redirects to the vendor's app.
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; \
     font-src 'self'; connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
/// Everything else (JSON, text): nothing to load, run or frame.
const DATA_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";
/// A year, as browsers' preload lists expect at least.
const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Fill in the headers `response` lacks. `https`: the host is reached over HTTPS
/// (`public_url`), so browsers are told to keep to it.
pub fn fill_in(mut response: Response, https: bool) -> Response {
    let is_html = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("text/html"));
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set(header::CONTENT_SECURITY_POLICY, if is_html { PAGE_POLICY } else { DATA_POLICY });
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "same-origin");
    if https {
        set(header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    #[test]
    fn pages_data_and_plugin_answers_get_what_they_lack() {
        let page = fill_in(axum::response::Html("<p>x</p>").into_response(), false);
        let csp = page.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-eval"));
        assert!(!page.headers().contains_key(header::STRICT_TRANSPORT_SECURITY), "no HSTS over plain HTTP");
        let json = fill_in(axum::Json(1).into_response(), true);
        assert_eq!(json.headers()[header::CONTENT_SECURITY_POLICY], DATA_POLICY);
        assert_eq!(json.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(json.headers()[header::STRICT_TRANSPORT_SECURITY], HSTS);
        let mut plugin = axum::response::Html("<p>plugin</p>").into_response();
        plugin.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox allow-scripts"));
        plugin.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        let plugin = fill_in(plugin, false);
        assert_eq!(plugin.headers().get_all(header::CONTENT_SECURITY_POLICY).iter().count(), 1);
        assert_eq!(plugin.headers()[header::CONTENT_SECURITY_POLICY], "sandbox allow-scripts");
        assert_eq!(plugin.headers()[header::REFERRER_POLICY], "no-referrer");
    }
}
