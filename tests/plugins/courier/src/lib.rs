//! Fetches a URL the test names over the standard `wasi:http/outgoing-handler`, as any Rust
//! client built for wasi:http would, and answers what came back or how it failed.
use linli_sdk::prelude::*;
use wasi::http::outgoing_handler;
use wasi::http::types::{ErrorCode, Fields, OutgoingRequest, Scheme};

struct Courier;

/// `GET url` (http or https, no body): its status and body, or wasi:http's error.
fn fetch(url: &str) -> Result<(u16, Vec<u8>), String> {
    let (scheme, rest) = match url.split_once("://") {
        Some(("http", rest)) => (Scheme::Http, rest),
        Some(("https", rest)) => (Scheme::Https, rest),
        Some((other, rest)) => (Scheme::Other(other.to_string()), rest),
        None => return Err(format!("`{url}` is not a URL")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    request.set_scheme(Some(&scheme)).map_err(|()| "scheme".to_string())?;
    request.set_authority(Some(authority)).map_err(|()| "authority".to_string())?;
    request.set_path_with_query(Some(path)).map_err(|()| "path".to_string())?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| code(&e))?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(code(&e)),
        Some(Err(())) | None => return Err("the response was taken already".to_string()),
    };
    let status = response.status();
    let body = response.consume().map_err(|()| "no body".to_string())?;
    let stream = body.stream().map_err(|()| "no body stream".to_string())?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(wasi::io::streams::StreamError::Closed) => break,
            Err(wasi::io::streams::StreamError::LastOperationFailed(e)) => {
                return Err(wasi::http::types::http_error_code(&e).map_or_else(|| e.to_debug_string(), |c| code(&c)));
            }
        }
    }
    Ok((status, bytes))
}

/// wasi:http's error codes by the names the WIT gives them.
fn code(e: &ErrorCode) -> String {
    match e {
        ErrorCode::HttpRequestDenied => "HTTP-request-denied".to_string(),
        ErrorCode::HttpResponseBodySize(_) => "HTTP-response-body-size".to_string(),
        ErrorCode::ConnectionTimeout => "connection-timeout".to_string(),
        ErrorCode::ConnectionRefused => "connection-refused".to_string(),
        other => format!("{other:?}"),
    }
}

impl Plugin for Courier {
    fn router() -> Router {
        Router::new().get("/fetch", |req, _| {
            let url = req.query_param("url").unwrap_or_default();
            Ok(match fetch(&url) {
                Ok((status, body)) => Response::json(200, &json!({ "status": status, "bytes": body.len(), "body": String::from_utf8_lossy(&body) })),
                Err(error) => Response::json(502, &json!({ "error": error })),
            })
        })
    }
}

linli_sdk::export!(Courier);
