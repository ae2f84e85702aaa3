//! The operators' JSON API. Until staff accounts exist (identity issue), it is guarded by
//! one bearer token from the configuration.
use super::{ApiError, AppState};
use crate::capabilities;
use crate::platform::{InstallRequest, UpgradeRequest};
use crate::tenancy::tree::TenantsDocument;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/tenants", get(tenants).post(load_tenants))
        .route("/keys", get(keys).post(trust_key))
        .route("/capabilities", get(|| async { Json(capabilities::KNOWN) }))
        .route("/packages", get(packages).post(upload).layer(DefaultBodyLimit::max(crate::packages::archive::MAX_PACKAGE_BYTES)))
        .route("/installations", get(installations).post(install))
        .route("/installations/{id}", get(installation).delete(uninstall))
        .route("/installations/{id}/upgrade", post(upgrade))
        .route("/installations/{id}/rollback", post(rollback))
        .layer(middleware::from_fn_with_state(state, require_token))
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !constant_time_eq(presented.as_bytes(), state.admin_token.as_bytes()) {
        return ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "the admin API needs `Authorization: Bearer <admin token>`").into_response();
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A JSON body whose errors are reported in our error format.
fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid-argument", format!("the request body is not valid: {e}")))
}

async fn tenants(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({ "tenants": state.platform.tenants().to_specs() }))
}

async fn load_tenants(State(state): State<AppState>, body: Bytes) -> Result<Json<serde_json::Value>, ApiError> {
    let doc: TenantsDocument = parse(&body)?;
    let count = state.platform.load_tenants(&doc.tenants).await?;
    Ok(Json(json!({ "loaded": count })))
}

#[derive(Deserialize)]
struct CountyFilter {
    county: Option<String>,
}

async fn keys(State(state): State<AppState>, Query(filter): Query<CountyFilter>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({ "keys": state.platform.vendor_keys(filter.county.as_deref()).await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustKey {
    county: String,
    vendor: String,
    public_key: String,
}

async fn trust_key(State(state): State<AppState>, body: Bytes) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let req: TrustKey = parse(&body)?;
    let key = state.platform.trust_key(&req.county, &req.vendor, &req.public_key).await?;
    Ok((StatusCode::CREATED, Json(json!(key))))
}

async fn packages(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({ "packages": state.platform.packages().await? })))
}

async fn upload(State(state): State<AppState>, Query(filter): Query<CountyFilter>, body: Bytes) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let county = filter
        .county
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "invalid-argument", "say which county the package is for: ?county=ID"))?;
    let summary = state.platform.upload(&county, body.to_vec()).await?;
    Ok((StatusCode::CREATED, Json(json!(summary))))
}

async fn installations(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({ "installations": state.platform.installations().await? })))
}

async fn install(State(state): State<AppState>, body: Bytes) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let req: InstallRequest = parse(&body)?;
    let inst = state.platform.install(&req).await?;
    Ok((StatusCode::CREATED, Json(json!(inst))))
}

async fn installation(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let (inst, history) = state.platform.installation(&id).await?;
    Ok(Json(json!({ "installation": inst, "history": history })))
}

async fn upgrade(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Result<Json<serde_json::Value>, ApiError> {
    let req: UpgradeRequest = parse(&body)?;
    Ok(Json(json!(state.platform.upgrade(&id, &req).await?)))
}

async fn rollback(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!(state.platform.rollback(&id).await?)))
}

#[derive(Deserialize)]
struct Purge {
    #[serde(default)]
    purge: bool,
}

async fn uninstall(State(state): State<AppState>, Path(id): Path<String>, Query(purge): Query<Purge>) -> Result<StatusCode, ApiError> {
    state.platform.uninstall(&id, purge.purge).await?;
    Ok(StatusCode::NO_CONTENT)
}
