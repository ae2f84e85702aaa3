//! The OpenID Connect provider over HTTP: discovery, authorize (with the consent screen),
//! token, userinfo; and the operators' client registry at `/admin/oidc/clients`.
//! The user agent's session is the resident app's cookie, so one login serves plugins and
//! vendors' web apps alike.
use super::extract::{AppJson, AppPath};
use super::{escape_html as escape, ApiError, AppState, ErrorBody};
use crate::auth::accounts::Account;
use crate::auth::AuthError;
use crate::oidc::{scope_info, AuthorizeError, AuthorizeRequest, Client, NewClient, OidcError, Registered};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::Serialize;
use std::collections::HashMap;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery).layer(cross_origin()))
        .route("/oidc/authorize", get(authorize).post(decide))
        .route("/oidc/token", axum::routing::post(token).layer(cross_origin()))
        .route("/oidc/userinfo", get(userinfo).post(userinfo).layer(cross_origin()))
}

/// Browser apps of any origin (public clients) may call the endpoints a client calls
/// directly. None of them reads cookies, so no credentials are allowed across origins.
pub(crate) fn cross_origin() -> tower_http::cors::CorsLayer {
    use axum::http::Method;
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
}

/// Mounted under `/admin` (behind the admin token).
pub fn admin_router() -> Router<AppState> {
    Router::new().route("/oidc/clients", get(list_clients).post(register_client)).route("/oidc/clients/{id}", delete(disable_client))
}

// ---- errors ----

/// Token and userinfo errors in the OAuth format: `{"error", "error_description"}`.
struct OAuthError(OidcError);

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, error) = match &self.0 {
            OidcError::OAuth { error, .. } => (StatusCode::BAD_REQUEST, *error),
            OidcError::InvalidClient(_) => (StatusCode::UNAUTHORIZED, "invalid_client"),
            OidcError::Auth(AuthError::BadToken) => (StatusCode::UNAUTHORIZED, "invalid_token"),
            OidcError::Invalid(_) | OidcError::Unredirectable(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            OidcError::NotFound(_) => (StatusCode::NOT_FOUND, "invalid_request"),
            OidcError::Auth(_) | OidcError::Database(_) => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
        };
        let mut response = (status, Json(serde_json::json!({ "error": error, "error_description": self.0.to_string() }))).into_response();
        if status.is_server_error() {
            super::ServerError::attach(&mut response, format!("OIDC: {}", self.0));
        }
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match error {
            "invalid_client" => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"linli\""));
            }
            "invalid_token" => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
            }
            _ => {}
        }
        response
    }
}

// ---- discovery ----

/// The OpenID Provider configuration (OIDC discovery).
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "oidc", responses((status = 200, description = "provider metadata")))]
async fn discovery(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.oidc.discovery())
}

// ---- authorize ----

#[derive(Clone, Copy, PartialEq)]
enum Lang {
    Zh,
    En,
}

impl Lang {
    /// `ui_locales` first, then the browser's Accept-Language; Chinese unless English is
    /// asked for.
    fn pick(params: &[(String, String)], headers: &HeaderMap) -> Self {
        let asked = params
            .iter()
            .find(|(k, _)| k == "ui_locales")
            .map(|(_, v)| v.as_str())
            .or_else(|| headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()))
            .unwrap_or("");
        if asked.trim_start().to_ascii_lowercase().starts_with("en") {
            Lang::En
        } else {
            Lang::Zh
        }
    }

    fn pick_text(self, zh: &'static str, en: &'static str) -> &'static str {
        if self == Lang::En {
            en
        } else {
            zh
        }
    }
}

/// A page of the sign-in flow: never framed (clickjacking), never cached.
fn page(status: StatusCode, lang: Lang, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · 邻里 Linli</title><style>body{{font-family:system-ui,'PingFang SC','Noto Sans CJK SC',sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;line-height:1.7;font-size:1.1rem}}\
         .card{{border:1px solid #ddd;border-radius:.75rem;padding:1rem 1.25rem}}button{{font-size:1.1rem;padding:.6rem 1.4rem;border-radius:.5rem;border:1px solid #888;margin-right:.75rem}}\
         button.primary{{background:#c0392b;color:#fff;border-color:#c0392b}}small{{color:#555}}</style></head><body><h1>{title}</h1>{body}</body></html>",
        lang.pick_text("zh-CN", "en")
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("frame-ancestors 'none'; default-src 'self'; style-src 'unsafe-inline'"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

fn error_page(lang: Lang, status: StatusCode, message: &str) -> Response {
    let title = lang.pick_text("无法继续登录", "Sign-in cannot continue");
    let hint = lang.pick_text("请回到原来的应用重试，或联系该应用的服务商。", "Go back to the app and try again, or contact its vendor.");
    page(status, lang, title, &format!("<div class=\"card\"><p>{}</p><p><small>{hint}</small></p></div>", escape(message)))
}

fn rejected(lang: Lang, e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Redirect(url) => Redirect::to(&url).into_response(),
        AuthorizeError::ShowUser(OidcError::Unredirectable(message)) => error_page(lang, StatusCode::BAD_REQUEST, &message),
        AuthorizeError::ShowUser(other) => {
            let mut response = error_page(lang, StatusCode::SERVICE_UNAVAILABLE, &other.to_string());
            super::ServerError::attach(&mut response, format!("OIDC authorize: {other}"));
            response
        }
    }
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// The account of the app's session cookie, if it is valid.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Option<Account>, OidcError> {
    let Some(Ok(token)) = super::session_token(headers) else { return Ok(None) };
    match state.auth.verify(token).await {
        Ok(claims) => state.oidc.account(&claims.sub).await,
        Err(_) => Ok(None),
    }
}

/// Send the user to the app's login, to come back to this request once signed in.
/// `prompt=login` is taken out of the way back, or the user would loop.
fn to_login(params: &[(String, String)], fresh: bool) -> Response {
    let back: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter().filter(|(k, _)| k != "prompt")).finish();
    let next = format!("/oidc/authorize?{back}");
    let mut login = url::form_urlencoded::Serializer::new(String::new());
    login.append_pair("next", &next);
    if fresh {
        login.append_pair("fresh", "1");
    }
    Redirect::to(&format!("/app/?{}#/login", login.finish())).into_response()
}

/// Start a sign-in (OIDC core §3.1.2). Without a session the user logs in first; without
/// consent to every scope asked for, the consent screen is shown; otherwise the user goes
/// straight back to the client with a code.
#[utoipa::path(get, path = "/oidc/authorize", tag = "oidc",
    params(("client_id" = String, Query), ("redirect_uri" = String, Query), ("response_type" = String, Query, description = "code"),
           ("scope" = String, Query, description = "openid, optionally profile and phone"), ("state" = Option<String>, Query), ("nonce" = Option<String>, Query),
           ("code_challenge" = String, Query), ("code_challenge_method" = String, Query, description = "S256"), ("prompt" = Option<String>, Query, description = "none, login or consent")),
    responses((status = 200, description = "the consent screen", content_type = "text/html", body = String), (status = 303, description = "to the client with a code or an error, or to the login page"), (status = 400, description = "unknown client or redirect URI")))]
async fn authorize(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let params = parse_query(&query);
    let lang = Lang::pick(&params, &headers);
    let request = match state.oidc.check_authorize(&params).await {
        Ok(request) => request,
        Err(e) => return rejected(lang, e),
    };
    let prompt = |value: &str| request.prompt.iter().any(|p| p == value);
    let account = match signed_in(&state, &headers).await {
        Ok(account) => account,
        Err(e) => return rejected(lang, AuthorizeError::ShowUser(e)),
    };
    let account = match account {
        Some(account) if !prompt("login") => account,
        _ if prompt("none") => return rejected(lang, request.login_required()),
        _ => return to_login(&params, prompt("login")),
    };
    if !state.oidc.serves(&state.oidc.tree(), &request.client, &account) {
        return rejected(lang, request.not_served());
    }
    let missing = match state.oidc.missing_consent(&request, &account.id).await {
        Ok(missing) => missing,
        Err(e) => return rejected(lang, AuthorizeError::ShowUser(e)),
    };
    if missing.is_empty() && !prompt("consent") {
        return match state.oidc.issue_code(&request, &account.id).await {
            Ok(url) => Redirect::to(&url).into_response(),
            Err(e) => rejected(lang, AuthorizeError::ShowUser(e)),
        };
    }
    if prompt("none") {
        return rejected(lang, request.consent_required());
    }
    consent_screen(&state, lang, &request, &account, &query)
}

fn consent_screen(state: &AppState, lang: Lang, request: &AuthorizeRequest, account: &Account, query: &str) -> Response {
    let items: String =
        request.scopes.iter().filter_map(|s| scope_info(s)).map(|s| format!("<li>{}</li>", escape(lang.pick_text(s.label_zh, s.label_en)))).collect();
    let target = url::Url::parse(&request.redirect_uri).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    let form_token = state.oidc.form_token(&account.id, query);
    let target = escape(&target);
    let (asks, returns, allow, deny, signed_in_as) = match lang {
        Lang::Zh => {
            ("请求使用你的邻里账号登录，并获取：", format!("同意后将返回 {target}。你可以随时在邻里 App 的「我的授权」中撤回。"), "同意", "拒绝", "当前账号：")
        }
        Lang::En => (
            "asks to sign you in with your Linli account and to get:",
            format!("Allowing returns you to {target}. You can withdraw this at any time under “My consents” in the Linli app."),
            "Allow",
            "Deny",
            "Signed in as: ",
        ),
    };
    let body = format!(
        "<div class=\"card\"><p><strong id=\"client-name\">{name}</strong> <small>({vendor})</small> {asks}</p><ul id=\"scopes\">{items}</ul>\
         <p><small>{returns}</small></p><p><small>{signed_in_as}{who}</small></p>\
         <form method=\"post\" action=\"/oidc/authorize\"><input type=\"hidden\" name=\"request\" value=\"{request_query}\">\
         <input type=\"hidden\" name=\"form_token\" value=\"{form_token}\">\
         <button class=\"primary\" type=\"submit\" name=\"decision\" value=\"allow\" id=\"allow\">{allow}</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">{deny}</button></form></div>",
        name = escape(&request.client.name),
        vendor = escape(&request.client.vendor),
        who = escape(&account.display_name),
        request_query = escape(query),
    );
    page(StatusCode::OK, lang, lang.pick_text("授权登录", "Sign in with Linli"), &body)
}

/// The consent screen's answer. The form must come from the screen shown to this account
/// for this very request.
#[utoipa::path(post, path = "/oidc/authorize", tag = "oidc",
    request_body(content_type = "application/x-www-form-urlencoded", description = "request (the authorize query), form_token, decision = allow | deny"),
    responses((status = 303, description = "back to the client with a code or access_denied"), (status = 400, description = "a form not from this user's consent screen")))]
async fn decide(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form: HashMap<String, String> = parse_query(&String::from_utf8_lossy(&body)).into_iter().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let params = parse_query(field("request"));
    let lang = Lang::pick(&params, &headers);
    let request = match state.oidc.check_authorize(&params).await {
        Ok(request) => request,
        Err(e) => return rejected(lang, e),
    };
    let account = match signed_in(&state, &headers).await {
        Ok(Some(account)) => account,
        Ok(None) => return to_login(&params, false),
        Err(e) => return rejected(lang, AuthorizeError::ShowUser(e)),
    };
    if !state.oidc.check_form_token(&account.id, field("request"), field("form_token")) {
        return error_page(
            lang,
            StatusCode::BAD_REQUEST,
            lang.pick_text("这个授权表单不是发给当前账号的，或已被改动。", "This consent form was not shown to the signed-in account, or it was changed."),
        );
    }
    if !state.oidc.serves(&state.oidc.tree(), &request.client, &account) {
        return rejected(lang, request.not_served());
    }
    match field("decision") {
        "allow" => {}
        "deny" => return Redirect::to(&request.deny()).into_response(),
        _ => return error_page(lang, StatusCode::BAD_REQUEST, lang.pick_text("请选择同意或拒绝。", "Choose allow or deny.")),
    }
    let issued = match state.oidc.give_consent(&request, &account.id).await {
        Ok(()) => state.oidc.issue_code(&request, &account.id).await,
        Err(e) => Err(e),
    };
    match issued {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => rejected(lang, AuthorizeError::ShowUser(e)),
    }
}

// ---- token ----

/// The client's credentials: HTTP Basic (form-encoded id and secret, RFC 6749 §2.3.1) or
/// `client_id` / `client_secret` in the body; never both.
fn client_credentials(headers: &HeaderMap, form: &HashMap<String, String>) -> Result<(String, Option<String>), OidcError> {
    let basic = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic "));
    match basic {
        Some(encoded) => {
            if form.contains_key("client_secret") {
                return Err(OidcError::OAuth { error: "invalid_request", description: "client credentials were sent twice (header and body)".into() });
            }
            let bad = || OidcError::InvalidClient("the Basic authorization header is malformed".into());
            let decoded = B64.decode(encoded.trim()).map_err(|_| bad())?;
            let text = String::from_utf8(decoded).map_err(|_| bad())?;
            let (id, secret) = text.split_once(':').ok_or_else(bad)?;
            let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8().map(|c| c.into_owned()).map_err(|_| bad());
            let id = decode(id)?;
            if form.get("client_id").is_some_and(|body_id| *body_id != id) {
                return Err(OidcError::OAuth { error: "invalid_request", description: "client_id differs between header and body".into() });
            }
            Ok((id, Some(decode(secret)?)))
        }
        None => {
            let id = form.get("client_id").cloned().ok_or_else(|| OidcError::InvalidClient("no client credentials".into()))?;
            Ok((id, form.get("client_secret").cloned()))
        }
    }
}

/// A token request's form and the client credentials it carries.
struct TokenRequest {
    form: HashMap<String, String>,
    client_id: String,
    secret: Option<String>,
}

fn token_request(headers: &HeaderMap, body: &[u8]) -> Result<TokenRequest, OidcError> {
    let mut form = HashMap::new();
    for (name, value) in parse_query(&String::from_utf8_lossy(body)) {
        if form.insert(name.clone(), value).is_some() {
            return Err(OidcError::OAuth { error: "invalid_request", description: format!("the parameter `{name}` is given more than once") });
        }
    }
    let (client_id, secret) = client_credentials(headers, &form)?;
    Ok(TokenRequest { form, client_id, secret })
}

async fn token_grant(state: &AppState, request: TokenRequest) -> Result<crate::oidc::TokenResponse, OidcError> {
    let TokenRequest { form, client_id, secret } = request;
    let client = state.oidc.authenticate(&client_id, secret.as_deref()).await?;
    let field = |name: &str| form.get(name).map(String::as_str);
    let required = |name: &str| field(name).ok_or_else(|| OidcError::OAuth { error: "invalid_request", description: format!("`{name}` is missing") });
    match field("grant_type") {
        Some("authorization_code") => state.oidc.exchange_code(&client, required("code")?, field("redirect_uri"), field("code_verifier")).await,
        Some("refresh_token") => state.oidc.refresh(&client, required("refresh_token")?, field("scope")).await,
        Some(other) => Err(OidcError::OAuth { error: "unsupported_grant_type", description: format!("grant_type `{other}` is not supported") }),
        None => Err(OidcError::OAuth { error: "invalid_request", description: "`grant_type` is missing".into() }),
    }
}

/// Exchange an authorization code (with its PKCE verifier) or a refresh token.
#[utoipa::path(post, path = "/oidc/token", tag = "oidc",
    request_body(content_type = "application/x-www-form-urlencoded", description = "grant_type = authorization_code (code, redirect_uri, code_verifier) or refresh_token (refresh_token, scope?)"),
    responses((status = 200, description = "access_token, refresh_token, id_token"), (status = 400, description = "invalid_grant, invalid_request, …"), (status = 401, description = "invalid_client"),
        (status = 429, description = "too many requests from this address or for this client")))]
async fn token(State(state): State<AppState>, address: super::rate_limit::ClientAddress, headers: HeaderMap, body: Bytes) -> Response {
    let request = match token_request(&headers, &body) {
        Ok(request) => request,
        Err(e) => return OAuthError(e).into_response(),
    };
    if let Err(limited) = state.rate_limits.check("oidc-token", &address, &request.client_id) {
        return limited.into_response();
    }
    match token_grant(&state, request).await {
        Ok(tokens) => {
            let mut response = Json(tokens).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => OAuthError(e).into_response(),
    }
}

/// The signed-in user's claims, as far as the access token's scope allows.
#[utoipa::path(get, path = "/oidc/userinfo", tag = "oidc", responses((status = 200, description = "sub, name, phone_number"), (status = 401, description = "invalid_token")))]
async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(Ok(token)) = super::bearer_token(&headers) else {
        return OAuthError(OidcError::Auth(AuthError::BadToken)).into_response();
    };
    match state.oidc.userinfo(token).await {
        Ok(claims) => {
            let mut response = Json(claims).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => OAuthError(e).into_response(),
    }
}

// ---- admin ----

#[derive(Serialize, ToSchema)]
pub struct ClientList {
    clients: Vec<Client>,
}

/// Register a vendor's web app as an OIDC client of a county. The secret is in this answer
/// only.
#[utoipa::path(post, path = "/admin/oidc/clients", tag = "oidc", request_body = NewClient,
    responses((status = 201, body = Registered), (status = 422, body = ErrorBody)))]
async fn register_client(State(state): State<AppState>, AppJson(new): AppJson<NewClient>) -> Result<(StatusCode, Json<Registered>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.oidc.register(&new).await?)))
}

/// The OpenID Connect clients registered for vendors' web apps.
#[utoipa::path(get, path = "/admin/oidc/clients", tag = "oidc", responses((status = 200, body = ClientList)))]
async fn list_clients(State(state): State<AppState>) -> Result<Json<ClientList>, ApiError> {
    Ok(Json(ClientList { clients: state.oidc.clients().await? }))
}

/// Disable a client: no new sign-ins, and its tokens stop working.
#[utoipa::path(delete, path = "/admin/oidc/clients/{id}", tag = "oidc", params(("id" = String, Path, description = "client id")), responses((status = 200, body = Client), (status = 404, body = ErrorBody)))]
async fn disable_client(State(state): State<AppState>, AppPath(id): AppPath<String>) -> Result<Json<Client>, ApiError> {
    Ok(Json(state.oidc.disable(&id).await?))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(discovery, authorize, decide, token, userinfo, register_client, list_clients, disable_client))]
pub struct OidcApi;
