//! The OpenID Connect provider: vendors' web apps sign residents and staff in with their
//! Linli login (authorization code flow, PKCE S256 required). A client is registered by a
//! county for one vendor; its users get the vendor's pairwise id as `sub`, the same id the
//! vendor's plugins see, and never the internal account id. Codes, access and refresh
//! tokens are random and stored hashed; ID tokens are EdDSA JWTs signed with the session
//! keys, so one JWKS serves both.
use crate::auth::accounts::{self, Account};
use crate::auth::sessions::random_token;
use crate::auth::{audit, consent, Auth, AuthError};
use crate::packages::sha256_hex;
use crate::platform::Platform;
use crate::store::{now_millis, Store};
use crate::tenancy::tree::TenantKind;
use crate::tenancy::TenantTree;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::HashMap;
use std::sync::Arc;

/// How long an authorization code may wait for its exchange.
const CODE_SECONDS: i64 = 120;

/// A scope a client may ask for, and how the consent screen names it.
pub struct ScopeInfo {
    pub name: &'static str,
    pub label_zh: &'static str,
    pub label_en: &'static str,
}

pub const SCOPES: [ScopeInfo; 3] = [
    ScopeInfo {
        name: "openid", label_zh: "识别你的身份（该服务商专用的匿名编号）", label_en: "Recognise you (an id only this vendor gets)"
    },
    ScopeInfo { name: "profile", label_zh: "你的姓名", label_en: "Your name" },
    ScopeInfo { name: "phone", label_zh: "你的手机号", label_en: "Your mobile number" },
];

pub fn scope_info(name: &str) -> Option<&'static ScopeInfo> {
    SCOPES.iter().find(|s| s.name == name)
}

/// The consent subject of a client: consents to plugins and to clients share one table.
pub fn consent_subject(client_id: &str) -> String {
    format!("oidc:{client_id}")
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The request names no client we can trust with a redirect: the user is told and
    /// nothing is sent anywhere.
    #[error("{0}")]
    Unredirectable(String),
    /// An error the client gets (`error` and `error_description`, RFC 6749 §4.1.2.1, §5.2).
    #[error("{description}")]
    OAuth { error: &'static str, description: String },
    #[error("client authentication failed: {0}")]
    InvalidClient(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl crate::errors::Classified for OidcError {
    fn kind(&self) -> crate::errors::ErrorKind {
        use crate::errors::ErrorKind as K;
        match self {
            Self::Invalid(_) => K::Invalid,
            Self::NotFound(_) => K::NotFound,
            Self::Auth(e) => e.kind(),
            // The authorize and token endpoints answer these in OAuth's own form; anywhere
            // else they are the provider failing.
            Self::Unredirectable(_) | Self::OAuth { .. } | Self::InvalidClient(_) | Self::Database(_) => K::Unavailable,
        }
    }

    fn code(&self) -> crate::errors::Code {
        match self {
            Self::Auth(e) => e.code(),
            other => other.kind().code(),
        }
    }

    fn params(&self) -> crate::errors::Params {
        match self {
            Self::Auth(e) => e.params(),
            _ => Vec::new(),
        }
    }
}

fn oauth(error: &'static str, description: impl Into<String>) -> OidcError {
    OidcError::OAuth { error, description: description.into() }
}

fn invalid_grant(description: &str) -> OidcError {
    oauth("invalid_grant", description)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Client {
    pub id: String,
    pub vendor: String,
    pub county_id: String,
    pub name: String,
    /// A public client (mobile or single-page app) has no secret; PKCE protects it.
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub disabled: bool,
    #[serde(skip)]
    secret_hash: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// The county (a tenant of kind county) whose residents and staff may sign in.
    pub county: String,
    /// The vendor: users get the pairwise ids this vendor's plugins get.
    pub vendor: String,
    /// Shown on the consent screen.
    pub name: String,
    /// Compared exactly: https, or http on a loopback host for development.
    pub redirect_uris: Vec<String>,
    /// Out of `openid`, `profile`, `phone`; `openid` is always included.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// No client secret (mobile and single-page apps).
    #[serde(default)]
    pub public: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Registered {
    pub client: Client,
    /// Shown once; only its hash is kept.
    pub client_secret: Option<String>,
}

fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let url = url::Url::parse(uri).map_err(|e| format!("redirect URI `{uri}` is not an absolute URL: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("redirect URI `{uri}` must not have a fragment"));
    }
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!("redirect URI `{uri}` must use https (http only on localhost)")),
    }
}

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub client: Client,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub prompt: Vec<String>,
}

/// Where an authorization request ends.
pub enum AuthorizeError {
    /// Shown to the user (the client or redirect URI cannot be trusted).
    ShowUser(OidcError),
    /// Sent back to the client's redirect URI.
    Redirect(String),
}

/// `redirect_uri` with `params` added to its query.
fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.to_string()
        }
        // Registered URIs were checked when the client was registered.
        Err(_) => redirect_uri.to_string(),
    }
}

impl AuthorizeRequest {
    fn error_redirect(&self, error: &str, description: &str) -> AuthorizeError {
        let mut params = vec![("error", error), ("error_description", description)];
        if let Some(state) = &self.state {
            params.push(("state", state));
        }
        AuthorizeError::Redirect(redirect_with(&self.redirect_uri, &params))
    }

    pub fn deny(&self) -> String {
        match self.error_redirect("access_denied", "the user did not allow the sign-in") {
            AuthorizeError::Redirect(url) => url,
            AuthorizeError::ShowUser(_) => self.redirect_uri.clone(),
        }
    }

    pub fn login_required(&self) -> AuthorizeError {
        self.error_redirect("login_required", "the user is not signed in")
    }

    pub fn consent_required(&self) -> AuthorizeError {
        self.error_redirect("consent_required", "the user has not consented to these scopes")
    }

    pub fn not_served(&self) -> AuthorizeError {
        self.error_redirect("access_denied", "this account does not belong to the county the client is registered in")
    }
}

/// Per token response (RFC 6749 §5.1, OIDC core §3.1.3.3).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    azp: &'a str,
    exp: i64,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

pub struct Provider {
    store: Store,
    platform: Arc<Platform>,
    auth: Arc<Auth>,
    /// Binds a consent form to the signed-in account (CSRF).
    form_key: Vec<u8>,
}

fn parse_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn client_from_row(row: &sqlx::any::AnyRow) -> Result<Client, sqlx::Error> {
    let secret_hash: Option<String> = row.try_get("secret_hash")?;
    let disabled_at: Option<i64> = row.try_get("disabled_at")?;
    Ok(Client {
        id: row.try_get("id")?,
        vendor: row.try_get("vendor")?,
        county_id: row.try_get("county_id")?,
        name: row.try_get("name")?,
        public: secret_hash.is_none(),
        redirect_uris: parse_list(&row.try_get::<String, _>("redirect_uris")?),
        scopes: parse_list(&row.try_get::<String, _>("scopes")?),
        created_at: row.try_get("created_at")?,
        disabled: disabled_at.is_some(),
        secret_hash,
    })
}

const CLIENT_COLUMNS: &str = "id, vendor, county_id, name, secret_hash, redirect_uris, scopes, created_at, disabled_at";

impl Provider {
    pub async fn new(platform: Arc<Platform>, auth: Arc<Auth>) -> Result<Self, OidcError> {
        let store = platform.store.clone();
        let form_key = crate::store::host_secret(&store, "oidc-consent-form-key").await?;
        Ok(Self { store, platform, auth, form_key })
    }

    pub fn issuer(&self) -> &str {
        &self.auth.sessions.issuer
    }

    /// The discovery document (OIDC discovery §3).
    pub fn discovery(&self) -> Value {
        let issuer = self.issuer();
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/oidc/authorize"),
            "token_endpoint": format!("{issuer}/oidc/token"),
            "userinfo_endpoint": format!("{issuer}/oidc/userinfo"),
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "scopes_supported": SCOPES.iter().map(|s| s.name).collect::<Vec<_>>(),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss", "sub", "aud", "azp", "exp", "iat", "nonce", "name", "phone_number"],
            "prompt_values_supported": ["none", "login", "consent"],
            "ui_locales_supported": ["zh-CN", "en"],
        })
    }

    // ---- clients ----

    pub async fn register(&self, new: &NewClient) -> Result<Registered, OidcError> {
        let tree = self.platform.tree.snapshot();
        match tree.get(&new.county) {
            Some(node) if node.kind == TenantKind::County => {}
            Some(_) => return Err(OidcError::Invalid(format!("`{}` is not a county", new.county))),
            None => return Err(OidcError::Invalid(format!("no tenant `{}`", new.county))),
        }
        if new.vendor.trim().is_empty() || new.name.trim().is_empty() {
            return Err(OidcError::Invalid("vendor and name must not be empty".into()));
        }
        // The vendor decides which pairwise ids the app's users get, so it must be a vendor
        // the county already knows by its signing key (as for the vendor's plugins).
        let trusted = self.platform.vendor_keys(Some(&new.county)).await.map_err(|e| OidcError::Invalid(e.to_string()))?;
        if !trusted.iter().any(|k| k.vendor == new.vendor.trim()) {
            return Err(OidcError::Invalid(format!(
                "vendor `{}` has no key trusted by `{}`; trust its key first (linli admin trust-key)",
                new.vendor.trim(),
                new.county
            )));
        }
        if new.redirect_uris.is_empty() {
            return Err(OidcError::Invalid("at least one redirect URI is needed".into()));
        }
        for uri in &new.redirect_uris {
            check_redirect_uri(uri).map_err(OidcError::Invalid)?;
        }
        let mut scopes = vec!["openid".to_string()];
        for scope in &new.scopes {
            if scope_info(scope).is_none() {
                return Err(OidcError::Invalid(format!("unknown scope `{scope}`; known: openid, profile, phone")));
            }
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        let secret = (!new.public).then(random_token);
        let client = Client {
            id: format!("linli-{}", uuid::Uuid::new_v4().simple()),
            vendor: new.vendor.trim().to_string(),
            county_id: new.county.clone(),
            name: new.name.trim().to_string(),
            public: new.public,
            redirect_uris: new.redirect_uris.clone(),
            scopes,
            created_at: now_millis(),
            disabled: false,
            secret_hash: secret.as_ref().map(|s| sha256_hex(s.as_bytes())),
        };
        sqlx::query("INSERT INTO oidc_clients (id, vendor, county_id, name, secret_hash, redirect_uris, scopes, created_at, disabled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)")
            .bind(&client.id)
            .bind(&client.vendor)
            .bind(&client.county_id)
            .bind(&client.name)
            .bind(&client.secret_hash)
            .bind(json!(client.redirect_uris).to_string())
            .bind(json!(client.scopes).to_string())
            .bind(client.created_at)
            .execute(&self.store.pool)
            .await?;
        tracing::info!(client = client.id, vendor = client.vendor, county = client.county_id, "OIDC client registered");
        Ok(Registered { client, client_secret: secret })
    }

    pub async fn clients(&self) -> Result<Vec<Client>, OidcError> {
        let rows = sqlx::query(&format!("SELECT {CLIENT_COLUMNS} FROM oidc_clients ORDER BY created_at, id")).fetch_all(&self.store.pool).await?;
        Ok(rows.iter().map(client_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn client(&self, id: &str) -> Result<Option<Client>, OidcError> {
        let row = sqlx::query(&format!("SELECT {CLIENT_COLUMNS} FROM oidc_clients WHERE id = $1")).bind(id).fetch_optional(&self.store.pool).await?;
        Ok(row.as_ref().map(client_from_row).transpose()?)
    }

    /// Disable a client: it can no longer sign anyone in, and every token it holds ends.
    pub async fn disable(&self, id: &str) -> Result<Client, OidcError> {
        let now = now_millis();
        let done =
            sqlx::query("UPDATE oidc_clients SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL").bind(id).bind(now).execute(&self.store.pool).await?;
        if done.rows_affected() > 0 {
            sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(now)
                .execute(&self.store.pool)
                .await?;
            sqlx::query("UPDATE oidc_access_tokens SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(now)
                .execute(&self.store.pool)
                .await?;
            tracing::info!(client = id, "OIDC client disabled and its tokens revoked");
        }
        self.client(id).await?.ok_or_else(|| OidcError::NotFound(format!("no OIDC client `{id}`")))
    }

    /// Check a client's credentials at the token endpoint. A public client presents none;
    /// a confidential one must present its secret.
    pub async fn authenticate(&self, client_id: &str, secret: Option<&str>) -> Result<Client, OidcError> {
        let client = match self.client(client_id).await? {
            Some(client) if !client.disabled => client,
            _ => return Err(OidcError::InvalidClient(format!("unknown or disabled client `{client_id}`"))),
        };
        match (&client.secret_hash, secret) {
            (None, None) => Ok(client),
            (None, Some(_)) => Err(OidcError::InvalidClient("a public client has no secret".into())),
            (Some(_), None) => Err(OidcError::InvalidClient("this client must authenticate with its secret".into())),
            (Some(hash), Some(secret)) if crate::store::vault::constant_time_eq(sha256_hex(secret.as_bytes()).as_bytes(), hash.as_bytes()) => Ok(client),
            (Some(_), Some(_)) => Err(OidcError::InvalidClient("wrong client secret".into())),
        }
    }

    // ---- authorization ----

    /// Validate an authorization request (its query parameters). Until the client and its
    /// redirect URI are known good, errors are shown to the user; after, they go back to
    /// the client.
    pub async fn check_authorize(&self, params: &[(String, String)]) -> Result<AuthorizeRequest, AuthorizeError> {
        let show = |message: String| AuthorizeError::ShowUser(OidcError::Unredirectable(message));
        let mut by_name: HashMap<&str, &str> = HashMap::new();
        for (name, value) in params {
            if by_name.insert(name, value).is_some() {
                return Err(show(format!("the parameter `{name}` is given more than once")));
            }
        }
        let client_id = by_name.get("client_id").copied().ok_or_else(|| show("the request has no client_id".into()))?;
        let client = match self.client(client_id).await {
            Ok(Some(client)) if !client.disabled => client,
            Ok(_) => return Err(show(format!("no active client `{client_id}` is registered"))),
            Err(e) => return Err(AuthorizeError::ShowUser(e)),
        };
        let redirect_uri = by_name.get("redirect_uri").copied().ok_or_else(|| show("the request has no redirect_uri".into()))?;
        if !client.redirect_uris.iter().any(|registered| registered == redirect_uri) {
            return Err(show(format!("`{redirect_uri}` is not a redirect URI registered for {}", client.name)));
        }
        let mut request = AuthorizeRequest {
            redirect_uri: redirect_uri.to_string(),
            state: by_name.get("state").map(|s| s.to_string()),
            scopes: vec![],
            nonce: by_name.get("nonce").map(|s| s.to_string()),
            code_challenge: String::new(),
            prompt: by_name.get("prompt").map(|p| p.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect()).unwrap_or_default(),
            client,
        };
        if by_name.get("response_type").copied() != Some("code") {
            return Err(request.error_redirect("unsupported_response_type", "only response_type=code is supported"));
        }
        if by_name.contains_key("request") || by_name.contains_key("request_uri") {
            return Err(request.error_redirect("request_not_supported", "request objects are not supported"));
        }
        let scopes: Vec<String> = by_name.get("scope").map(|s| s.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect()).unwrap_or_default();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(request.error_redirect("invalid_scope", "the scope must include openid"));
        }
        if let Some(extra) = scopes.iter().find(|s| !request.client.scopes.contains(s)) {
            return Err(request.error_redirect("invalid_scope", &format!("this client may not ask for the scope `{extra}`")));
        }
        request.scopes = SCOPES.iter().map(|s| s.name.to_string()).filter(|s| scopes.contains(s)).collect();
        let challenge = by_name.get("code_challenge").copied().unwrap_or_default();
        if challenge.is_empty() {
            return Err(request.error_redirect("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256"));
        }
        if by_name.get("code_challenge_method").copied() != Some("S256") {
            return Err(request.error_redirect("invalid_request", "only code_challenge_method=S256 is accepted"));
        }
        if challenge.len() != 43 || B64URL.decode(challenge).map(|d| d.len() != 32).unwrap_or(true) {
            return Err(request.error_redirect("invalid_request", "code_challenge must be the base64url SHA-256 of the verifier (43 characters)"));
        }
        request.code_challenge = challenge.to_string();
        if let Some(bad) = request.prompt.iter().find(|p| !matches!(p.as_str(), "none" | "login" | "consent")) {
            return Err(request.error_redirect("invalid_request", &format!("unknown prompt value `{bad}`")));
        }
        if request.prompt.iter().any(|p| p == "none") && request.prompt.len() > 1 {
            return Err(request.error_redirect("invalid_request", "prompt=none cannot be combined with other values"));
        }
        Ok(request)
    }

    /// True if the account belongs to the client's county: a resident living in it or
    /// staff holding a role in it.
    pub fn serves(&self, tree: &TenantTree, client: &Client, account: &Account) -> bool {
        let county = client.county_id.as_str();
        account.tenant_id.iter().any(|t| tree.is_within(t, county)) || account.roles.iter().any(|r| tree.is_within(&r.tenant, county))
    }

    pub async fn account(&self, id: &str) -> Result<Option<Account>, OidcError> {
        Ok(accounts::get(&self.store, id).await?)
    }

    pub fn tree(&self) -> Arc<TenantTree> {
        self.platform.tree.snapshot()
    }

    /// The scopes of the request the account has not consented to yet.
    pub async fn missing_consent(&self, request: &AuthorizeRequest, account_id: &str) -> Result<Vec<String>, OidcError> {
        let given = consent::granted(&self.store, account_id, &consent_subject(&request.client.id)).await?;
        Ok(request.scopes.iter().filter(|s| !given.contains(s)).cloned().collect())
    }

    /// Record the decision (audited first, like every consent) for the app's scopes.
    pub async fn give_consent(&self, request: &AuthorizeRequest, account_id: &str) -> Result<(), OidcError> {
        let subject = consent_subject(&request.client.id);
        let tenant = accounts::get(&self.store, account_id).await?.and_then(|a| a.tenant_id).unwrap_or_else(|| request.client.county_id.clone());
        audit::record_consent(&self.store, subject.clone(), &tenant, account_id, &request.scopes, audit::Outcome::ConsentGiven, "oidc").await?;
        consent::give(&self.store, account_id, &subject, &request.scopes).await?;
        Ok(())
    }

    /// The token a consent form carries: ties the form to the account that was shown it
    /// and to the exact request, so another site cannot post a decision for the user.
    pub fn form_token(&self, account_id: &str, request_query: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.form_key) else { return String::new() };
        mac.update(account_id.as_bytes());
        mac.update(&[0]);
        mac.update(request_query.as_bytes());
        B64URL.encode(mac.finalize().into_bytes())
    }

    pub fn check_form_token(&self, account_id: &str, request_query: &str, token: &str) -> bool {
        crate::store::vault::constant_time_eq(self.form_token(account_id, request_query).as_bytes(), token.as_bytes())
    }

    /// Issue a code for the signed-in, consenting account; returns where to send the user.
    pub async fn issue_code(&self, request: &AuthorizeRequest, account_id: &str) -> Result<String, OidcError> {
        let code = random_token();
        let now = now_millis();
        sqlx::query("INSERT INTO oidc_codes (code_hash, client_id, account_id, redirect_uri, scope, nonce, code_challenge, family, expires_at, used_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10)")
            .bind(sha256_hex(code.as_bytes()))
            .bind(&request.client.id)
            .bind(account_id)
            .bind(&request.redirect_uri)
            .bind(request.scopes.join(" "))
            .bind(&request.nonce)
            .bind(&request.code_challenge)
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(now + CODE_SECONDS * 1000)
            .bind(now)
            .execute(&self.store.pool)
            .await?;
        let mut params = vec![("code", code.as_str())];
        if let Some(state) = &request.state {
            params.push(("state", state));
        }
        Ok(redirect_with(&request.redirect_uri, &params))
    }

    // ---- tokens ----

    /// Exchange a code (RFC 6749 §4.1.3 with RFC 7636 §4.6). A code works once; a second
    /// exchange revokes whatever the first one got.
    pub async fn exchange_code(&self, client: &Client, code: &str, redirect_uri: Option<&str>, verifier: Option<&str>) -> Result<TokenResponse, OidcError> {
        let row = sqlx::query(
            "SELECT client_id, account_id, redirect_uri, scope, nonce, code_challenge, family, expires_at, used_at FROM oidc_codes WHERE code_hash = $1",
        )
        .bind(sha256_hex(code.as_bytes()))
        .fetch_optional(&self.store.pool)
        .await?
        .ok_or_else(|| invalid_grant("unknown authorization code"))?;
        let code_client: String = row.try_get("client_id")?;
        if code_client != client.id {
            return Err(invalid_grant("the code was issued to another client"));
        }
        let family: String = row.try_get("family")?;
        let hash = sha256_hex(code.as_bytes());
        let claimed = sqlx::query("UPDATE oidc_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL")
            .bind(&hash)
            .bind(now_millis())
            .execute(&self.store.pool)
            .await?;
        if claimed.rows_affected() == 0 {
            self.auth.sessions.revoke_family(&family).await?;
            tracing::warn!(client = client.id, "an authorization code was presented twice; the tokens it gave are revoked");
            return Err(invalid_grant("the code was already used; the tokens issued for it are revoked"));
        }
        if row.try_get::<i64, _>("expires_at")? <= now_millis() {
            return Err(invalid_grant("the code expired"));
        }
        let registered: String = row.try_get("redirect_uri")?;
        if redirect_uri != Some(registered.as_str()) {
            return Err(invalid_grant("redirect_uri differs from the one in the authorization request"));
        }
        let challenge: String = row.try_get("code_challenge")?;
        let verifier = verifier.ok_or_else(|| invalid_grant("code_verifier is missing (PKCE)"))?;
        let valid_verifier = (43..=128).contains(&verifier.len()) && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        let computed = B64URL.encode(Sha256::digest(verifier.as_bytes()));
        if !valid_verifier || !crate::store::vault::constant_time_eq(computed.as_bytes(), challenge.as_bytes()) {
            return Err(invalid_grant("code_verifier does not match the code_challenge (PKCE)"));
        }
        let account_id: String = row.try_get("account_id")?;
        let scope: String = row.try_get("scope")?;
        let nonce: Option<String> = row.try_get("nonce")?;
        let account = self.account(&account_id).await?.ok_or_else(|| invalid_grant("the account no longer exists"))?;
        let refresh_token = self.auth.sessions.store_refresh(&account.id, &family, Some((&client.id, &scope))).await?;
        let mut tokens = self.access(client, &account, &family, scope, refresh_token).await?;
        tokens.id_token = Some(self.id_token(client, &account, &tokens.scope, nonce.as_deref())?);
        Ok(tokens)
    }

    /// Trade a client's refresh token (rotating, as the app's own). `scope` may narrow the
    /// grant, never widen it.
    pub async fn refresh(&self, client: &Client, refresh_token: &str, scope: Option<&str>) -> Result<TokenResponse, OidcError> {
        // The scope is checked before the token is used up, so a bad request loses nothing.
        if let Some(asked) = scope {
            let granted: Option<String> = sqlx::query_scalar("SELECT scope FROM refresh_tokens WHERE token_hash = $1 AND client_id = $2")
                .bind(sha256_hex(refresh_token.as_bytes()))
                .bind(&client.id)
                .fetch_optional(&self.store.pool)
                .await?
                .flatten();
            let granted = granted.unwrap_or_default();
            if let Some(extra) = asked.split(' ').find(|s| !s.is_empty() && !granted.split(' ').any(|g| g == *s)) {
                return Err(oauth("invalid_scope", format!("the scope `{extra}` was not granted")));
            }
        }
        let rotated = self.auth.sessions.rotate_refresh(refresh_token, Some(&client.id)).await.map_err(|e| match e {
            AuthError::BadRefreshToken => invalid_grant("the refresh token is not valid for this client (used, revoked or expired)"),
            other => OidcError::Auth(other),
        })?;
        let scope = scope.map(|s| s.split(' ').filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ")).unwrap_or_else(|| rotated.scope.clone());
        let account = self.account(&rotated.account_id).await?.ok_or_else(|| invalid_grant("the account no longer exists"))?;
        self.access(client, &account, &rotated.family, scope, rotated.refresh_token).await
    }

    async fn access(&self, client: &Client, account: &Account, family: &str, scope: String, refresh_token: String) -> Result<TokenResponse, OidcError> {
        let access_token = random_token();
        let now = now_millis();
        let seconds = self.auth.sessions.access_seconds;
        sqlx::query("INSERT INTO oidc_access_tokens (token_hash, family, client_id, account_id, scope, expires_at, revoked_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)")
            .bind(sha256_hex(access_token.as_bytes()))
            .bind(family)
            .bind(&client.id)
            .bind(&account.id)
            .bind(&scope)
            .bind(now + seconds * 1000)
            .bind(now)
            .execute(&self.store.pool)
            .await?;
        Ok(TokenResponse { access_token, token_type: "Bearer", expires_in: seconds, refresh_token, scope, id_token: None })
    }

    fn id_token(&self, client: &Client, account: &Account, scope: &str, nonce: Option<&str>) -> Result<String, OidcError> {
        let now = now_millis() / 1000;
        let sub = self.platform.pairwise().id(&client.vendor, &account.id);
        let profile = scope.split(' ').any(|s| s == "profile");
        let claims = IdTokenClaims {
            iss: self.issuer(),
            sub: &sub,
            aud: &client.id,
            azp: &client.id,
            exp: now + self.auth.sessions.access_seconds,
            iat: now,
            nonce,
            name: profile.then_some(account.display_name.as_str()),
        };
        Ok(self.auth.sessions.sign(&claims)?)
    }

    /// The claims the access token's scope allows (OIDC core §5.3). Reading the phone
    /// number is audited like a plugin's read.
    pub async fn userinfo(&self, access_token: &str) -> Result<Value, OidcError> {
        let row = sqlx::query("SELECT family, client_id, account_id, scope, expires_at, revoked_at FROM oidc_access_tokens WHERE token_hash = $1")
            .bind(sha256_hex(access_token.as_bytes()))
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(AuthError::BadToken)?;
        let revoked: Option<i64> = row.try_get("revoked_at")?;
        if revoked.is_some() || row.try_get::<i64, _>("expires_at")? <= now_millis() {
            return Err(AuthError::BadToken.into());
        }
        let client_id: String = row.try_get("client_id")?;
        let client = self.client(&client_id).await?.filter(|c| !c.disabled).ok_or(AuthError::BadToken)?;
        let account = self.account(&row.try_get::<String, _>("account_id")?).await?.ok_or(AuthError::BadToken)?;
        let scope: String = row.try_get("scope")?;
        let scopes: Vec<&str> = scope.split(' ').collect();
        let mut claims = json!({ "sub": self.platform.pairwise().id(&client.vendor, &account.id) });
        if scopes.contains(&"profile") {
            claims["name"] = json!(account.display_name);
        }
        if scopes.contains(&"phone") {
            let family: String = row.try_get("family")?;
            audit::record(
                &self.store,
                audit::Read {
                    actor: consent_subject(&client.id),
                    tenant_id: account.tenant_id.as_deref().unwrap_or(&client.county_id),
                    subject: format!("account:{}", account.id),
                    fields: &["phone"],
                    outcome: audit::Outcome::Allowed,
                    request_id: &family,
                },
            )
            .await?;
            claims["phone_number"] = json!(account.phone);
        }
        Ok(claims)
    }

    /// After a resident withdraws consent from a client: end every session the client has
    /// for them.
    pub async fn revoke_sessions(&self, account_id: &str, client_id: &str) -> Result<(), OidcError> {
        let families: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT family FROM refresh_tokens WHERE account_id = $1 AND client_id = $2 AND revoked_at IS NULL")
                .bind(account_id)
                .bind(client_id)
                .fetch_all(&self.store.pool)
                .await?;
        for family in families {
            self.auth.sessions.revoke_family(&family).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_https_or_loopback_without_fragment() {
        assert!(check_redirect_uri("https://app.vendor.cn/callback").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:8080/cb").is_ok());
        assert!(check_redirect_uri("http://localhost/cb").is_ok());
        assert!(check_redirect_uri("http://app.vendor.cn/callback").is_err());
        assert!(check_redirect_uri("https://app.vendor.cn/cb#frag").is_err());
        assert!(check_redirect_uri("/relative").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
    }

    #[test]
    fn redirects_keep_the_registered_query_and_encode_parameters() {
        let url = redirect_with("https://app.vendor.cn/cb?tenant=1", &[("code", "a b"), ("state", "x&y")]);
        assert_eq!(url, "https://app.vendor.cn/cb?tenant=1&code=a+b&state=x%26y");
    }
}
