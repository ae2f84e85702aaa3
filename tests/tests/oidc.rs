//! The OpenID Connect provider end to end, driven by a real relying-party library (the
//! openidconnect crate) over HTTP: discovery, authorize with PKCE S256, the consent screen,
//! code exchange, ID token verification against the JWKS, userinfo, refresh; and every
//! rejection the issue lists: no PKCE, a redirect URI that is not exact, a replayed code,
//! tokens of one client replayed at another, a wrong verifier, a wrong secret.
use anyhow::{bail, Context, Result};
use linli_tests::*;
use openidconnect::core::{CoreClient, CoreIdTokenClaims, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreResponseType, CoreUserInfoClaims};
use openidconnect::{
    AccessToken, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde_json::{json, Value};

const CARE_CALLBACK: &str = "https://care.example.cn/callback";
const APP_CALLBACK: &str = "http://127.0.0.1:9/cb";

/// The browser: carries the resident's session cookie, follows no redirects.
struct Browser {
    http: reqwest::Client,
    cookie: Option<String>,
}

impl Browser {
    fn new(session: Option<&str>) -> Result<Self> {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        Ok(Self { http, cookie: session.map(|token| format!("linli_session={token}")) })
    }

    async fn get(&self, url: &str) -> Result<Reply> {
        let mut request = self.http.get(url);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        Reply::from(request.send().await?).await
    }

    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<Reply> {
        let mut request = self.http.post(url).form(form);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        Reply::from(request.send().await?).await
    }
}

fn location(reply: &Reply) -> Result<String> {
    if reply.status != 303 {
        bail!("expected a redirect, got {}: {}", reply.status, reply.text);
    }
    Ok(reply.headers.get("location").context("location")?.to_str()?.to_string())
}

/// The query parameters of a URL.
fn query(url: &str) -> Result<Vec<(String, String)>> {
    Ok(url::Url::parse(url)?.query_pairs().into_owned().collect())
}

fn param(url: &str, name: &str) -> Result<Option<String>> {
    Ok(query(url)?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v))
}

/// The value of a hidden input on the consent screen (HTML-escaped as the page writes it).
fn hidden(page: &str, name: &str) -> Result<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).context("hidden input")? + marker.len();
    let end = page[start..].find('"').context("end of value")? + start;
    Ok(page[start..end].replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
}

struct Registered {
    id: String,
    secret: Option<String>,
}

async fn register(host: &TestHost, body: Value) -> Result<Registered> {
    let created = host.admin("POST", "/oidc/clients", Some(body)).await?.expect_status(201)?.json();
    Ok(Registered { id: created["client"]["id"].as_str().context("client id")?.to_string(), secret: created["client_secret"].as_str().map(str::to_string) })
}

type Rp = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

async fn relying_party(metadata: &CoreProviderMetadata, client: &Registered, redirect: &str) -> Result<Rp> {
    Ok(CoreClient::from_provider_metadata(metadata.clone(), ClientId::new(client.id.clone()), client.secret.clone().map(ClientSecret::new))
        .set_redirect_uri(RedirectUrl::new(redirect.to_string())?))
}

/// One sign-in as far as the redirect back to the client: the authorize URL, the verifier
/// and nonce the client keeps, and where the browser lands.
struct Attempt {
    verifier: PkceCodeVerifier,
    nonce: Nonce,
    state: CsrfToken,
    url: String,
}

fn attempt(rp: &Rp, scopes: &[&str]) -> Attempt {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = rp.authorize_url(AuthenticationFlow::<CoreResponseType>::AuthorizationCode, CsrfToken::new_random, Nonce::new_random);
    for scope in scopes {
        request = request.add_scope(Scope::new(scope.to_string()));
    }
    let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
    Attempt { verifier, nonce, state, url: url.to_string() }
}

/// Allow on the consent screen; the code the client gets.
async fn consent(host: &TestHost, browser: &Browser, attempt: &Attempt) -> Result<String> {
    let screen = browser.get(&attempt.url).await?.expect_status(200)?;
    let back = location(
        &browser
            .post_form(
                &format!("{}/oidc/authorize", host.url),
                &[("request", &hidden(&screen.text, "request")?), ("form_token", &hidden(&screen.text, "form_token")?), ("decision", "allow")],
            )
            .await?,
    )?;
    assert_eq!(param(&back, "state")?.as_deref(), Some(attempt.state.secret().as_str()));
    param(&back, "code")?.context("code")
}

/// A raw token request, for the rejections (the library hides the error body).
async fn token_request(host: &TestHost, client: &Registered, form: &[(&str, &str)]) -> Result<Reply> {
    let mut request = host.client.post(format!("{}/oidc/token", host.url)).form(form);
    if let Some(secret) = &client.secret {
        request = request.basic_auth(&client.id, Some(secret));
    } else {
        request = request.form(&[form, &[("client_id", client.id.as_str())]].concat());
    }
    Reply::from(request.send().await?).await
}

fn oauth_error(reply: &Reply) -> String {
    reply.json()["error"].as_str().unwrap_or_default().to_string()
}

async fn userinfo_status(host: &TestHost, access_token: &str) -> Result<u16> {
    Ok(Reply::from(host.client.get(format!("{}/oidc/userinfo", host.url)).bearer_auth(access_token).send().await?).await?.status)
}

async fn oidc_sign_in(host: TestHost) -> Result<()> {
    let linli = Vendor::new("linli")?;
    host.trust(&linli).await?;
    host.trust(&Vendor::new("other-co")?).await?;
    host.publish(&linli, "hello", &["data", "identity"], &["xingfu"]).await?;
    let resident = host
        .person(json!({ "kind": "resident", "phone": "13800000011", "display_name": "王阿姨", "password": "correct horse 11", "tenant_id": "xingfu" }))
        .await?;
    let account_id = resident.account_id.clone();

    // Registration: bad clients are refused with the reason, and none is stored.
    for (bad, why) in [
        (json!({ "county": DEMO_COUNTY, "vendor": "linli", "name": "x", "redirect_uris": ["http://care.example.cn/cb"] }), "https"),
        (json!({ "county": DEMO_COUNTY, "vendor": "linli", "name": "x", "redirect_uris": [CARE_CALLBACK], "scopes": ["email"] }), "unknown scope"),
        (json!({ "county": "xingfu", "vendor": "linli", "name": "x", "redirect_uris": [CARE_CALLBACK] }), "not a county"),
        (json!({ "county": DEMO_COUNTY, "vendor": "linli", "name": "x", "redirect_uris": [] }), "redirect URI"),
        (json!({ "county": DEMO_COUNTY, "vendor": "unknown-co", "name": "x", "redirect_uris": [CARE_CALLBACK] }), "no key trusted"),
    ] {
        let refused = host.admin("POST", "/oidc/clients", Some(bad)).await?;
        assert_eq!(refused.status, 422, "{}", refused.text);
        assert!(refused.error_message().contains(why), "{}", refused.text);
    }
    assert_eq!(host.admin("GET", "/oidc/clients", None).await?.expect_status(200)?.json()["clients"], json!([]));

    let care = register(
        &host,
        json!({ "county": DEMO_COUNTY, "vendor": "linli", "name": "颐养之家", "redirect_uris": [CARE_CALLBACK], "scopes": ["profile", "phone"] }),
    )
    .await?;
    // The public client through the CLI, as an operator would.
    let printed = linli_tests::linli(&[
        "admin",
        "--server",
        &host.url,
        "--token",
        &host.admin_token,
        "add-oidc-client",
        "--county",
        DEMO_COUNTY,
        "--vendor",
        "other-co",
        "--name",
        "停车宝",
        "--redirect-uri",
        APP_CALLBACK,
        "--scope",
        "profile",
        "--public",
    ])?;
    let printed: Value = serde_json::from_str(&printed)?;
    let other = Registered { id: printed["client"]["id"].as_str().context("client id")?.to_string(), secret: None };
    assert_eq!((printed["client"]["public"].as_bool(), printed["client_secret"].is_null()), (Some(true), true));
    assert!(care.secret.is_some() && other.secret.is_none());
    let listed = host.admin("GET", "/oidc/clients", None).await?.expect_status(200)?.json();
    assert_eq!(listed["clients"].as_array().map(Vec::len), Some(2));
    assert!(!listed.to_string().contains(care.secret.as_deref().unwrap_or("-")), "the secret is shown once only");

    // Browser apps of other origins may call the token endpoint (no cookies involved).
    let preflight = host
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/oidc/token", host.url))
        .header("origin", "https://care.example.cn")
        .header("access-control-request-method", "POST")
        .send()
        .await?;
    assert_eq!(preflight.headers().get("access-control-allow-origin").map(|v| v.as_bytes()), Some(&b"*"[..]));
    assert!(preflight.headers().get("access-control-allow-credentials").is_none());
    let http = openidconnect::reqwest::Client::builder().redirect(openidconnect::reqwest::redirect::Policy::none()).build()?;
    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(host.url.clone())?, &http).await?;
    let care_rp = relying_party(&metadata, &care, CARE_CALLBACK).await?;
    let other_rp = relying_party(&metadata, &other, APP_CALLBACK).await?;
    let browser = Browser::new(Some(&resident.token))?;

    // Not signed in: to the app's login, which brings the user back here.
    let first = attempt(&care_rp, &["profile", "phone"]);
    let to_login = location(&Browser::new(None)?.get(&first.url).await?)?;
    assert!(to_login.starts_with("/app/?next=") && to_login.ends_with("#/login"), "{to_login}");
    let next = param(&format!("{}{to_login}", host.url), "next")?.context("next")?;
    assert!(next.starts_with("/oidc/authorize?") && next.contains(&care.id));
    // prompt=none without a session goes back to the client instead.
    let silent = location(&Browser::new(None)?.get(&format!("{}&prompt=none", first.url)).await?)?;
    assert_eq!(param(&silent, "error")?.as_deref(), Some("login_required"));

    // Signed in: the consent screen names the app and what it asks for; it cannot be framed.
    let screen = browser.get(&first.url).await?.expect_status(200)?;
    assert!(screen.text.contains("颐养之家") && screen.text.contains("你的手机号") && screen.text.contains("你的姓名"), "{}", screen.text);
    assert_eq!(screen.headers.get("x-frame-options").map(|v| v.as_bytes()), Some(&b"DENY"[..]));
    let english = Reply::from(
        browser.http.get(&first.url).header("cookie", format!("linli_session={}", resident.token)).header("accept-language", "en-GB,en").send().await?,
    )
    .await?;
    assert!(english.text.contains("Your mobile number"), "{}", english.text);
    // A decision form not made for this user is refused; no code is issued.
    let forged = browser
        .post_form(&format!("{}/oidc/authorize", host.url), &[("request", &hidden(&screen.text, "request")?), ("form_token", "forged"), ("decision", "allow")])
        .await?;
    assert_eq!(forged.status, 400);
    assert_eq!(resident.get("/api/consents").await?.expect_status(200)?.json(), json!([]));
    let code = consent(&host, &browser, &first).await?;

    // The exchange, with the real library: the ID token verifies against the JWKS (EdDSA).
    let tokens = care_rp
        .exchange_code(AuthorizationCode::new(code.clone()))?
        .set_pkce_verifier(PkceCodeVerifier::new(first.verifier.secret().clone()))
        .request_async(&http)
        .await?;
    let verifier = care_rp.id_token_verifier().set_allowed_algs(vec![CoreJwsSigningAlgorithm::EdDsa]);
    let id_token = tokens.id_token().context("id token")?;
    let claims: &CoreIdTokenClaims = id_token.claims(&verifier, &first.nonce)?;
    let sub = claims.subject().as_str().to_string();
    assert_ne!(sub, account_id, "never the internal account id");
    let plugin_id = resident.get("/p/hello/me").await?.expect_status(200)?.json()["id"].as_str().context("plugin id")?.to_string();
    assert_eq!(sub, plugin_id, "a vendor's web app and its plugins see one pairwise id");
    assert_eq!(claims.name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("王阿姨"));

    let info: CoreUserInfoClaims = care_rp.user_info(tokens.access_token().clone(), None)?.request_async(&http).await?;
    assert_eq!(info.subject().as_str(), sub);
    assert_eq!(info.phone_number().map(|p| p.as_str()), Some("13800000011"));
    let audited = host.operator().get(&format!("/api/audit?actor=oidc:{}&field=phone", care.id)).await?.expect_status(200)?.json();
    let outcomes: Vec<&str> = audited.as_array().into_iter().flatten().filter_map(|e| e["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["allowed", "consent-given"], "the consent and the phone read are audited, newest first: {audited}");
    assert!(audited.as_array().into_iter().flatten().all(|e| e["subject"] == format!("account:{account_id}")), "{audited}");

    // Replaying the code fails and revokes what the first exchange got.
    let replay = token_request(
        &host,
        &care,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CARE_CALLBACK), ("code_verifier", first.verifier.secret())],
    )
    .await?;
    assert_eq!((replay.status, oauth_error(&replay).as_str()), (400, "invalid_grant"));
    assert_eq!(userinfo_status(&host, tokens.access_token().secret()).await?, 401);
    let revoked_refresh = tokens.refresh_token().context("refresh token")?;
    let refused = token_request(&host, &care, &[("grant_type", "refresh_token"), ("refresh_token", revoked_refresh.secret())]).await?;
    assert_eq!(oauth_error(&refused), "invalid_grant");

    // Consent is remembered: the next sign-in goes straight back with a code.
    let second = attempt(&care_rp, &["profile", "phone"]);
    let back = location(&browser.get(&second.url).await?)?;
    assert!(back.starts_with(CARE_CALLBACK), "{back}");
    let code = param(&back, "code")?.context("code")?;
    // PKCE: a wrong or missing verifier fails (and uses the code up).
    let wrong = token_request(
        &host,
        &care,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CARE_CALLBACK),
            ("code_verifier", PkceCodeChallenge::new_random_sha256().1.secret()),
        ],
    )
    .await?;
    assert_eq!(oauth_error(&wrong), "invalid_grant");
    let third = attempt(&care_rp, &["profile"]);
    let code = param(&location(&browser.get(&third.url).await?)?, "code")?.context("code")?;
    let missing = token_request(&host, &care, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CARE_CALLBACK)]).await?;
    assert_eq!(oauth_error(&missing), "invalid_grant");
    // A wrong client secret.
    let fourth = attempt(&care_rp, &["profile"]);
    let code = param(&location(&browser.get(&fourth.url).await?)?, "code")?.context("code")?;
    let impostor = Registered { id: care.id.clone(), secret: Some("not-the-secret".into()) };
    let bad_secret = token_request(
        &host,
        &impostor,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CARE_CALLBACK), ("code_verifier", fourth.verifier.secret())],
    )
    .await?;
    assert_eq!((bad_secret.status, oauth_error(&bad_secret).as_str()), (401, "invalid_client"));
    // The code of one client redeemed by another.
    let stolen = token_request(
        &host,
        &other,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CARE_CALLBACK), ("code_verifier", fourth.verifier.secret())],
    )
    .await?;
    assert_eq!(oauth_error(&stolen), "invalid_grant");
    let tokens = care_rp.exchange_code(AuthorizationCode::new(code))?.set_pkce_verifier(fourth.verifier).request_async(&http).await?;
    assert_eq!(userinfo_status(&host, tokens.access_token().secret()).await?, 200);

    // A client's tokens are not sessions of the host, nor the other way round, nor
    // another client's.
    let care_access = tokens.access_token().secret().clone();
    for path in ["/api/me", "/p/hello/me"] {
        let replayed = Reply::from(host.client.get(format!("{}{path}", host.url)).bearer_auth(&care_access).send().await?).await?;
        assert_eq!(replayed.status, 401, "{path}: {}", replayed.text);
    }
    assert_eq!(userinfo_status(&host, &resident.token).await?, 401);
    let care_refresh = tokens.refresh_token().context("refresh")?.clone();
    let at_host =
        Reply::from(host.client.post(format!("{}/api/auth/refresh", host.url)).json(&json!({ "refresh_token": care_refresh.secret() })).send().await?).await?;
    assert_eq!(at_host.status, 401);
    let at_other = token_request(&host, &other, &[("grant_type", "refresh_token"), ("refresh_token", care_refresh.secret())]).await?;
    assert_eq!(oauth_error(&at_other), "invalid_grant");
    let fifth = attempt(&other_rp, &["profile"]);
    let other_code = consent(&host, &browser, &fifth).await?;
    let other_tokens = other_rp.exchange_code(AuthorizationCode::new(other_code))?.set_pkce_verifier(fifth.verifier).request_async(&http).await?;
    let other_id_token = other_tokens.id_token().context("id token")?;
    assert!(other_id_token.claims(&verifier, &fifth.nonce).is_err(), "another client's ID token is refused (audience)");
    let other_sub = other_id_token
        .claims(&other_rp.id_token_verifier().set_allowed_algs(vec![CoreJwsSigningAlgorithm::EdDsa]), &fifth.nonce)?
        .subject()
        .as_str()
        .to_string();
    assert_ne!(other_sub, sub, "another vendor gets another id");

    // Refresh rotates; the used token cannot be used again, and trying ends the session.
    let refreshed = care_rp.exchange_refresh_token(&care_refresh)?.request_async(&http).await?;
    assert_eq!(userinfo_status(&host, refreshed.access_token().secret()).await?, 200);
    let narrowed =
        care_rp.exchange_refresh_token(refreshed.refresh_token().context("refresh")?)?.add_scope(Scope::new("openid".into())).request_async(&http).await?;
    let info: CoreUserInfoClaims = care_rp.user_info(AccessToken::new(narrowed.access_token().secret().clone()), None)?.request_async(&http).await?;
    assert!(info.phone_number().is_none() && info.name().is_none(), "a narrowed refresh gives fewer claims");
    let widened = token_request(
        &host,
        &care,
        &[("grant_type", "refresh_token"), ("refresh_token", narrowed.refresh_token().context("refresh")?.secret()), ("scope", "openid profile")],
    )
    .await?;
    assert_eq!(widened.status, 200, "the granted scope, asked for again: {}", widened.text);
    assert_eq!(widened.json()["scope"], "openid profile");
    let beyond = token_request(
        &host,
        &care,
        &[("grant_type", "refresh_token"), ("refresh_token", widened.json()["refresh_token"].as_str().unwrap_or_default()), ("scope", "openid phone")],
    )
    .await?;
    assert_eq!(oauth_error(&beyond), "invalid_scope", "this sign-in was for openid and profile only");
    let widened =
        token_request(&host, &care, &[("grant_type", "refresh_token"), ("refresh_token", widened.json()["refresh_token"].as_str().unwrap_or_default())])
            .await?;
    assert_eq!(widened.status, 200, "a refused scope does not use the refresh token up: {}", widened.text);
    let reused = token_request(&host, &care, &[("grant_type", "refresh_token"), ("refresh_token", care_refresh.secret())]).await?;
    assert_eq!(oauth_error(&reused), "invalid_grant");
    assert_eq!(userinfo_status(&host, widened.json()["access_token"].as_str().unwrap_or_default()).await?, 401, "reuse revoked the family");

    // Authorize without PKCE, with plain PKCE, or with a redirect URI that is not exact.
    let base = attempt(&care_rp, &["profile"]);
    let without_pkce: Vec<(String, String)> = query(&base.url)?.into_iter().filter(|(k, _)| !k.starts_with("code_challenge")).collect();
    let without_pkce = url::Url::parse_with_params(&format!("{}/oidc/authorize", host.url), &without_pkce)?;
    let back = location(&browser.get(without_pkce.as_str()).await?)?;
    assert!(back.starts_with(CARE_CALLBACK), "{back}");
    assert_eq!(param(&back, "error")?.as_deref(), Some("invalid_request"));
    assert_eq!(param(&back, "state")?.as_deref(), Some(base.state.secret().as_str()));
    assert!(param(&back, "code")?.is_none());
    let plain = base.url.replace("code_challenge_method=S256", "code_challenge_method=plain");
    assert_eq!(param(&location(&browser.get(&plain).await?)?, "error")?.as_deref(), Some("invalid_request"));
    let encoded_callback = url::form_urlencoded::byte_serialize(CARE_CALLBACK.as_bytes()).collect::<String>();
    for wrong in
        ["https://care.example.cn/callback/x", "https://care.example.cn/callback?x=1", "https://care.example.cn.evil.cn/callback", "https://evil.cn/callback"]
    {
        let tampered = base.url.replace(&encoded_callback, &url::form_urlencoded::byte_serialize(wrong.as_bytes()).collect::<String>());
        assert_ne!(tampered, base.url);
        let shown = browser.get(&tampered).await?;
        assert_eq!(shown.status, 400, "{wrong}: {}", shown.text);
        assert!(shown.headers.get("location").is_none(), "never redirected to an unregistered URI");
    }
    let unknown = base.url.replace(&care.id, "linli-nosuchclient");
    assert_eq!(browser.get(&unknown).await?.status, 400);
    let scope_too_wide = attempt(&other_rp, &["phone"]);
    assert_eq!(param(&location(&browser.get(&scope_too_wide.url).await?)?, "error")?.as_deref(), Some("invalid_scope"));

    // Deny, and withdrawing consent in the app: the app's sessions end and it must ask again.
    let denied = attempt(&other_rp, &["profile"]);
    let screen = browser.get(&format!("{}&prompt=consent", denied.url)).await?.expect_status(200)?;
    let request = hidden(&screen.text, "request")?;
    let back = location(
        &browser
            .post_form(
                &format!("{}/oidc/authorize", host.url),
                &[("request", &request), ("form_token", &hidden(&screen.text, "form_token")?), ("decision", "deny")],
            )
            .await?,
    )?;
    assert_eq!(param(&back, "error")?.as_deref(), Some("access_denied"));
    let mine = resident.get("/api/consents").await?.expect_status(200)?.json();
    let listed: Vec<(String, String, String)> = mine
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (c["subject"].as_str().unwrap_or("").to_string(), c["label"].as_str().unwrap_or("").to_string(), c["scope"].as_str().unwrap_or("").to_string())
        })
        .collect();
    assert!(listed.contains(&(format!("oidc:{}", care.id), "颐养之家".to_string(), "phone".to_string())), "{mine}");
    let sixth = attempt(&care_rp, &["profile"]);
    let code = param(&location(&browser.get(&sixth.url).await?)?, "code")?.context("code")?;
    let live = care_rp.exchange_code(AuthorizationCode::new(code))?.set_pkce_verifier(sixth.verifier).request_async(&http).await?;
    resident.call("DELETE", &format!("/api/consents/oidc:{}", care.id), None).await?.expect_status(200)?;
    assert_eq!(userinfo_status(&host, live.access_token().secret()).await?, 401);
    let after = token_request(&host, &care, &[("grant_type", "refresh_token"), ("refresh_token", live.refresh_token().context("refresh")?.secret())]).await?;
    assert_eq!(oauth_error(&after), "invalid_grant");
    let again = attempt(&care_rp, &["profile"]);
    assert_eq!(browser.get(&again.url).await?.status, 200, "the consent screen again");

    // Someone from another county cannot sign in to this county's client.
    host.admin("POST", "/tenants", Some(json!({ "tenants": [{ "id": "far-county", "name": "远方县", "children": [{ "id": "far-street", "name": "远方街道", "children": [{ "id": "far-community", "name": "远方社区" }] }] }] })))
        .await?
        .expect_status(200)?;
    let stranger = host
        .person(json!({ "kind": "resident", "phone": "13800000012", "display_name": "远方居民", "password": "correct horse 12", "tenant_id": "far-community" }))
        .await?;
    let away = attempt(&care_rp, &["profile"]);
    let back = location(&Browser::new(Some(&stranger.token))?.get(&away.url).await?)?;
    assert_eq!(param(&back, "error")?.as_deref(), Some("access_denied"));

    // A disabled client signs no one in and its tokens stop working.
    let seventh = attempt(&other_rp, &["profile"]);
    let code = param(&location(&browser.get(&seventh.url).await?)?, "code")?.context("code")?;
    let last = other_rp.exchange_code(AuthorizationCode::new(code))?.set_pkce_verifier(seventh.verifier).request_async(&http).await?;
    host.admin("DELETE", &format!("/oidc/clients/{}", other.id), None).await?.expect_status(200)?;
    assert_eq!(userinfo_status(&host, last.access_token().secret()).await?, 401);
    assert_eq!(browser.get(&attempt(&other_rp, &["profile"]).url).await?.status, 400);
    host.stop().await;
    Ok(())
}

on_both_databases!(sign_in_with_linli, oidc_sign_in);
