//! Routing plugin requests to the installation for the request's tenant.
//!
//! - `/t/{tenant}/p/{prefix}/{path}`: the tenant is in the URL (shareable links, the
//!   resident app's pages).
//! - `/p/{prefix}/{path}`: the tenant comes from the `X-Linli-Tenant` header, else from the
//!   signed-in resident's community (the session's `tenant` claim).
//!
//! The installation is the one at the tenant node or its nearest ancestor.
//! `{prefix}/ui/…` serves the package's static UI assets without running the plugin.
use super::{page_policy, ApiError, AppState};
use crate::auth::sessions::Claims;
use crate::auth::AuthError;
use crate::capabilities::identity::RequestUser;
use crate::errors::Code;
use crate::runtime::{InvokeError, LoadedPlugin, PluginRequest};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::runtime::TENANT_HEADER;
const MAX_REQUEST_BODY: usize = 8 << 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t/{tenant}/p/{prefix}", any(with_tenant_in_path))
        .route("/t/{tenant}/p/{prefix}/", any(with_tenant_in_path))
        .route("/t/{tenant}/p/{prefix}/{*rest}", any(with_tenant_in_path))
        .route("/p/{prefix}", any(with_tenant_in_header))
        .route("/p/{prefix}/", any(with_tenant_in_header))
        .route("/p/{prefix}/{*rest}", any(with_tenant_in_header))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY))
        // The host's own answers under a plugin's prefix (not installed, session refused,
        // redirects, the plugin's failures) are sandboxed too; the plugin's answers already
        // carry its policy with its granted origins.
        .layer(axum::middleware::map_response(|mut response: Response| async move {
            if !response.headers().contains_key(axum::http::header::CONTENT_SECURITY_POLICY) {
                page_policy::apply(response.headers_mut(), &[]);
            }
            response
        }))
}

#[derive(Deserialize)]
struct Route {
    tenant: Option<String>,
    prefix: String,
    #[serde(default)]
    rest: String,
}

async fn with_tenant_in_path(
    State(state): State<AppState>,
    Path(mut route): Path<Route>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let tenant = route.tenant.take().unwrap_or_default();
    let session = match session_of(&state, &headers).await {
        Ok(session) => session,
        Err(rejection) => return rejection,
    };
    dispatch(state, tenant, session, route, method, uri, headers, body).await
}

async fn with_tenant_in_header(State(state): State<AppState>, Path(route): Path<Route>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let session = match session_of(&state, &headers).await {
        Ok(session) => session,
        Err(rejection) => return rejection,
    };
    let from_header = headers.get(TENANT_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
    let tenant = match from_header {
        Some(tenant) => tenant,
        None => match session.as_ref().and_then(|claims| claims.tenant.clone()) {
            Some(tenant) => tenant,
            None => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    Code::TenantRequired,
                    "say which community this request is for: sign in as a resident, or use /t/{community}/p/… or the X-Linli-Tenant header",
                )
                .into_response()
            }
        },
    };
    dispatch(state, tenant, session, route, method, uri, headers, body).await
}

/// The session of a request with `Authorization: Bearer …` or the app's session cookie;
/// none without either. A
/// token that is present but not valid is refused (401), so an expired session is noticed
/// instead of silently becoming an anonymous request.
async fn session_of(state: &AppState, headers: &HeaderMap) -> Result<Option<Claims>, Response> {
    let Some(token) = super::session_token(headers) else { return Ok(None) };
    let refuse = |e: AuthError| ApiError::from(e).into_response();
    let token = token.map_err(|()| refuse(AuthError::BadToken))?;
    state.auth.verify(token).await.map(Some).map_err(refuse)
}

/// Request ids: unique per process start (random prefix) and cheap (a counter), so that
/// tagging every request does not cost a system call for randomness.
fn request_id() -> String {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_fields().0);
    format!("{prefix:08x}{:012x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[allow(clippy::too_many_arguments)]
async fn dispatch(
    state: AppState,
    tenant: String,
    session: Option<Claims>,
    route: Route,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Route { prefix, rest, .. } = route;
    let platform = &state.platform;
    let tree = platform.tenants();
    if tree.get(&tenant).is_none() {
        return ApiError::tenant_unknown(&tenant).into_response();
    }
    let Some(plugin) = platform.resolve(&prefix, &tenant) else {
        return ApiError::new(StatusCode::NOT_FOUND, Code::NotInstalled, format!("no plugin `{prefix}` is installed for `{tenant}`"))
            .with("plugin", prefix.clone())
            .into_response();
    };
    if rest == "ui" {
        // The UI's relative links resolve against `ui/`, not `ui`.
        return axum::response::Redirect::permanent(&format!("{}/", uri.path())).into_response();
    }
    if let Some(asset) = rest.strip_prefix("ui/") {
        return serve_asset(&plugin, asset, &method);
    }

    let request_id = request_id();
    // The runtime adds `x-linli-tenant` and `x-linli-request-id`; a client's own are dropped.
    let plugin_headers: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| !name.as_str().starts_with("x-linli-") && name.as_str() != "authorization" && name.as_str() != "cookie")
        .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let request = PluginRequest {
        method: method.as_str().to_string(),
        path: format!("/{rest}"),
        query: uri.query().unwrap_or_default().to_string(),
        headers: plugin_headers,
        body: body.to_vec(),
        user: session.map(|c| Arc::new(RequestUser::at(&tree, c.sub, c.name, c.kind, c.tenant, c.roles, &tenant))),
        tenant: tenant.clone(),
        request_id: request_id.clone(),
    };

    let started = Instant::now();
    let (plugin_id, installation_id) = (plugin.installation.plugin_id.as_str(), plugin.installation.id.as_str());
    let response = match platform.runtime.invoke(plugin.clone(), request).await {
        Ok(out) => plugin_response(out.status, out.headers, out.body, &plugin),
        Err(e) => {
            platform.metrics.failures.with_label_values(&[plugin_id, e.kind()]).inc();
            invoke_error(e)
        }
    };
    plugin.metrics.latency.observe(started.elapsed().as_secs_f64());
    platform.usage.record(plugin_id, &tenant, response.status().is_server_error());
    if response.status() == StatusCode::OK {
        plugin.metrics.ok.inc();
    } else {
        platform.metrics.requests.with_label_values(&[plugin_id, installation_id, response.status().as_str()]).inc();
    }
    response
}

fn invoke_error(e: InvokeError) -> Response {
    let message = e.to_string();
    let mut error = match &e {
        InvokeError::Busy(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Code::Busy, message),
        InvokeError::Timeout { .. } => ApiError::new(StatusCode::GATEWAY_TIMEOUT, Code::DeadlineExceeded, message),
        InvokeError::MemoryLimit { .. } => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Code::MemoryLimit, message),
        InvokeError::Trap { .. } => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Code::PluginTrap, message),
        InvokeError::Host { .. } => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable, message),
    };
    if matches!(e, InvokeError::Busy(_) | InvokeError::Host { .. }) {
        error.retry_after = Some(1);
    }
    error.into_response()
}

/// A plugin's answer as the browser gets it: the headers it may set (see `page_policy`),
/// then the host's own.
fn plugin_response(status: u16, headers: Vec<(String, String)>, body: Vec<u8>, plugin: &LoadedPlugin) -> Response {
    let Ok(status) = StatusCode::from_u16(status) else {
        tracing::warn!(plugin = plugin.installation.plugin_id, status, "plugin answered with an invalid status");
        return ApiError::new(StatusCode::BAD_GATEWAY, Code::BadPluginResponse, format!("the plugin answered with status {status}")).into_response();
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    for (name, value) in headers {
        match page_policy::plugin_header(&name, &value) {
            Some((name, value)) => {
                response.headers_mut().append(name, value);
            }
            None => tracing::debug!(plugin = plugin.installation.plugin_id, header = name, "dropped a response header the host decides or that is not valid"),
        }
    }
    sandboxed(response, plugin)
}

/// What the plugin answers itself (its routes and ui files) carries the page policy with
/// the origins its installation was granted.
fn sandboxed(mut response: Response, plugin: &LoadedPlugin) -> Response {
    page_policy::apply(response.headers_mut(), &page_policy::granted_origins(&plugin.installation.grants));
    response
}

fn serve_asset(plugin: &Arc<LoadedPlugin>, path: &str, method: &Method) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return ApiError::new(StatusCode::METHOD_NOT_ALLOWED, Code::MethodNotAllowed, "UI assets are read-only").into_response();
    }
    let path = if path.is_empty() || path.ends_with('/') { format!("{path}index.html") } else { path.to_string() };
    let Some(bytes) = plugin.assets.get(&format!("ui/{path}")) else {
        return ApiError::new(StatusCode::NOT_FOUND, Code::NotFound, format!("the package has no ui/{path}")).into_response();
    };
    let mime = mime_guess::from_path(&path).first_or_octet_stream();
    let mut response = Response::new(Body::from(bytes.clone()));
    if let Ok(value) = HeaderValue::from_str(mime.as_ref()) {
        response.headers_mut().insert("content-type", value);
    }
    sandboxed(response, plugin)
}
