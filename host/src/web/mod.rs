//! The web apps the host serves itself, embedded in the binary: the resident app at
//! `/app/` and the operators' console at `/console/`.
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "src/web/app/"]
struct ResidentApp;

#[derive(RustEmbed)]
#[folder = "src/web/console/"]
struct Console;

/// The pages need no state: they reach the host through its HTTP API like any client.
pub fn router<State: Clone + Send + Sync + 'static>() -> Router<State> {
    Router::new()
        .route("/app", get(|| async { Redirect::permanent("/app/") }))
        .route("/app/", get(|| async { asset::<ResidentApp>("index.html") }))
        .route("/app/{*path}", get(|Path(path): Path<String>| async move { asset::<ResidentApp>(&path) }))
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(|| async { asset::<Console>("index.html") }))
        .route("/console/{*path}", get(|Path(path): Path<String>| async move { asset::<Console>(&path) }))
}

fn asset<Files: RustEmbed>(path: &str) -> Response {
    match Files::get(path) {
        Some(file) => {
            let mime = mime_guess::from_path(path).first_or_octet_stream();
            // The shells are small and change with the host: always revalidate.
            ([(header::CONTENT_TYPE, mime.as_ref().to_string()), (header::CACHE_CONTROL, "no-cache".to_string())], file.data.into_owned()).into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::ResidentApp;
    use crate::errors::Code;

    /// Every code the host can answer is worded in each language's catalogue, so no screen
    /// falls back to a general sentence (or to the host's English) for a failure it knows.
    #[test]
    fn every_error_code_is_worded_in_each_language() {
        for lang in ["zh-CN", "en"] {
            let file = ResidentApp::get(&format!("messages/{lang}.js")).unwrap_or_else(|| panic!("messages/{lang}.js is embedded"));
            let text = String::from_utf8_lossy(&file.data).into_owned();
            let start = text.find("errors: {").unwrap_or_else(|| panic!("{lang}: no errors section"));
            let end = text[start..].find("error_generic:").map(|e| start + e).unwrap_or_else(|| panic!("{lang}: no error_generic"));
            let errors = &text[start..end];
            let missing: Vec<&str> = Code::ALL
                .iter()
                .map(|code| code.as_str())
                .filter(|code| !errors.contains(&format!("\"{code}\":")) && !errors.contains(&format!(" {code}:")))
                .collect();
            assert!(missing.is_empty(), "{lang} does not word {missing:?}");
        }
    }
}
