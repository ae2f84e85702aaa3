//! The resident app in real headless Chromium (Debian's chromium, driven by playwright-core
//! from tests/browser/): log in, open legal aid, consent, apply, see the receipt; and sign
//! in to a vendor's web app with Linli (OIDC).
//! Screenshots are kept in target/browser-artifacts/. SQLite and PostgreSQL.
use linli_tests::*;
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;

const PASSWORD: &str = "linli-test-2026";

/// Chromium and the npm packages, which scripts/test installs; outside CI a machine
/// without them skips this test (with a message), under CI=true it fails.
fn browser_ready() -> anyhow::Result<bool> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let modules = workspace_root().join("tests/browser/node_modules/playwright-core");
    if PathBuf::from(&chromium).exists() && modules.exists() {
        return Ok(true);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        anyhow::bail!("the browser tests need {chromium} and tests/browser/node_modules (scripts/test installs both)");
    }
    eprintln!("skipping the browser test: run scripts/test to install Chromium and playwright-core");
    Ok(false)
}

/// Run a script of tests/browser/ (`{artifacts}` in `args` becomes its screenshot folder)
/// and read the JSON it prints last.
async fn run_script(host: &TestHost, script: &str, flow: &str, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let backend = if host.database_url.starts_with("postgres") { "postgres" } else { "sqlite" };
    let artifacts = target_dir().join("browser-artifacts").join(format!("{flow}-{backend}"));
    let args: Vec<String> = args.iter().map(|a| a.replace("{artifacts}", &artifacts.to_string_lossy())).collect();
    let script = workspace_root().join("tests/browser").join(script);
    let output = tokio::task::spawn_blocking(move || Command::new("node").arg(script).args(args).output()).await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser flow failed (screenshots in target/browser-artifacts):\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_str(stdout.lines().last().unwrap_or("{}"))?)
}

async fn resident_applies_for_legal_aid_in_the_app(host: TestHost) -> anyhow::Result<()> {
    if !browser_ready()? {
        return Ok(());
    }
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    host.publish(&vendor, "legal-aid", &["data", "identity", "identity:real-name", "identity:id-number"], &["demo-county"]).await?;
    let record = format!("姓名,身份证号,手机号,网格\n王秀英,{},13800000001,xingfu-g1\n", id_number("33078219560312002"));
    assert_eq!(host.import_csv("residents", "xingfu", &record).await?["status"], "done");
    let resident =
        host.person(json!({ "kind": "resident", "phone": "13800000001", "display_name": "王阿姨", "password": PASSWORD, "tenant_id": "xingfu" })).await?;

    let result = run_script(&host, "legal_aid.mjs", "legal-aid", &[&host.url, "{artifacts}", "13800000001", PASSWORD]).await?;
    let receipt = result["receipt"].as_str().unwrap_or_default();

    // What the page showed is what the host holds.
    let mine = resident.get("/t/xingfu/p/legal-aid/applications/mine").await?.expect_status(200)?.json();
    assert_eq!(mine[0]["receipt"], receipt);
    assert_eq!(mine[0]["applicant_name"], "王秀英");
    let consents = resident.get("/api/consents").await?.expect_status(200)?.json();
    assert_eq!(consents.as_array().map(Vec::len), Some(2), "{consents}");
    // The consent was asked for by the plugin's page, through the bridge: the audit log says so.
    let audit = host.operator().get("/api/audit?actor=plugin:legal-aid&outcome=consent-given").await?.expect_status(200)?.json();
    let entry = audit.as_array().and_then(|a| a.first()).cloned().unwrap_or_default();
    assert_eq!(
        (entry["request_id"].as_str(), entry["subject"].as_str()),
        (Some("plugin-page"), Some(format!("account:{}", resident.account_id).as_str())),
        "{audit}"
    );
    host.stop().await;
    Ok(())
}
on_both_databases!(legal_aid_in_chromium, resident_applies_for_legal_aid_in_the_app);

/// "Sign in with Linli" from a vendor's web app: a signed-out resident is sent to the app's
/// login, comes back to the consent screen, allows, and the vendor's callback gets a code
/// that the relying-party library exchanges for a verified ID token.
async fn resident_signs_in_to_a_vendor_app(host: TestHost) -> anyhow::Result<()> {
    use openidconnect::core::{CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreResponseType};
    use openidconnect::{
        AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
    };
    if !browser_ready()? {
        return Ok(());
    }
    const CALLBACK: &str = "http://127.0.0.1:9/signed-in";
    host.person(json!({ "kind": "resident", "phone": "13800000001", "display_name": "王阿姨", "password": PASSWORD, "tenant_id": "xingfu" })).await?;
    host.trust(&Vendor::new("yiyang")?).await?;
    let client = host
        .admin(
            "POST",
            "/oidc/clients",
            Some(json!({ "county": DEMO_COUNTY, "vendor": "yiyang", "name": "颐养之家", "redirect_uris": [CALLBACK], "scopes": ["profile"] })),
        )
        .await?
        .expect_status(201)?
        .json();
    let (id, secret) = (client["client"]["id"].as_str().unwrap_or_default(), client["client_secret"].as_str().unwrap_or_default());
    let http = openidconnect::reqwest::Client::builder().redirect(openidconnect::reqwest::redirect::Policy::none()).build()?;
    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(host.url.clone())?, &http).await?;
    let rp = CoreClient::from_provider_metadata(metadata, ClientId::new(id.into()), Some(ClientSecret::new(secret.into())))
        .set_redirect_uri(RedirectUrl::new(CALLBACK.into())?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize, state, nonce) = rp
        .authorize_url(AuthenticationFlow::<CoreResponseType>::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();

    let result = run_script(&host, "oidc_sign_in.mjs", "oidc", &[authorize.as_str(), CALLBACK, "{artifacts}", "13800000001", PASSWORD]).await?;
    let landed = url::Url::parse(result["callback"].as_str().unwrap_or_default())?;
    let param = |name: &str| landed.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    assert_eq!(param("state").as_deref(), Some(state.secret().as_str()));
    let code = param("code").ok_or_else(|| anyhow::anyhow!("no code in {landed}"))?;
    let tokens = rp.exchange_code(AuthorizationCode::new(code))?.set_pkce_verifier(verifier).request_async(&http).await?;
    let id_token = tokens.id_token().ok_or_else(|| anyhow::anyhow!("no ID token"))?;
    let claims = id_token.claims(&rp.id_token_verifier().set_allowed_algs(vec![CoreJwsSigningAlgorithm::EdDsa]), &nonce)?;
    assert_eq!(claims.name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("王阿姨"));
    host.stop().await;
    Ok(())
}
on_both_databases!(oidc_sign_in_in_chromium, resident_signs_in_to_a_vendor_app);

/// The time bank in the app, two people: the elder joins (consent to her real name) and
/// posts a need, the volunteer joins and takes it on, the elder confirms, the volunteer's
/// hour is credited.
async fn a_need_from_posting_to_credited_hours(host: TestHost) -> anyhow::Result<()> {
    if !browser_ready()? {
        return Ok(());
    }
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    host.publish(&vendor, "time-bank", &["data", "identity", "identity:real-name", "ledger"], &["demo-county"]).await?;
    let records = format!(
        "姓名,身份证号,手机号,网格\n王秀英,{},13800000001,xingfu-g1\n李志强,{},13800000002,xingfu-g1\n",
        id_number("33078219560312002"),
        id_number("33078219900101001")
    );
    assert_eq!(host.import_csv("residents", "xingfu", &records).await?["status"], "done");
    host.person(json!({ "kind": "resident", "phone": "13800000001", "display_name": "王阿姨", "password": PASSWORD, "tenant_id": "xingfu" })).await?;
    let volunteer =
        host.person(json!({ "kind": "resident", "phone": "13800000002", "display_name": "小李", "password": PASSWORD, "tenant_id": "xingfu" })).await?;
    let result = run_script(&host, "time_bank.mjs", "time-bank", &[&host.url, "{artifacts}", "13800000001", "13800000002", PASSWORD]).await?;
    let task = result["task"].as_str().unwrap_or_default();
    // What the pages showed is what the host holds.
    let mine = volunteer.get("/t/xingfu/p/time-bank/tasks/mine").await?.expect_status(200)?.json();
    let done = mine.as_array().and_then(|all| all.iter().find(|t| t["id"] == task)).cloned().unwrap_or_default();
    assert_eq!(
        (done["status"].as_str(), done["owner_name"].as_str(), done["counterpart_name"].as_str()),
        (Some("completed"), Some("王秀英"), Some("李志强")),
        "{mine}"
    );
    assert_eq!(volunteer.get("/t/xingfu/p/time-bank/me").await?.expect_status(200)?.json()["balance"], 100);
    host.stop().await;
    Ok(())
}
on_both_databases!(time_bank_in_chromium, a_need_from_posting_to_credited_hours);

/// The first bytes of a PNG: enough for the host to take it for one.
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

/// A resident reports a broken light over the API; staff dispatch and resolve it; in
/// Chromium the resident finds the message in the app, opens the ticket, reads its trace
/// and rates it; then she reports a broken door with a photo from the app's home.
async fn a_report_from_inbox_to_rating(host: TestHost) -> anyhow::Result<()> {
    if !browser_ready()? {
        return Ok(());
    }
    let resident =
        host.person(json!({ "kind": "resident", "phone": "13800000001", "display_name": "王阿姨", "password": PASSWORD, "tenant_id": "xingfu" })).await?;
    let worker = host.person(json!({ "kind": "staff", "phone": "13900000001", "display_name": "赵社工", "password": PASSWORD, "roles": [{ "role": "community-worker", "tenant": "xingfu" }] })).await?;
    let fixer = host.person(json!({ "kind": "staff", "phone": "13900000002", "display_name": "维修师傅", "password": PASSWORD, "roles": [{ "role": "grid-worker", "tenant": "xingfu-g1" }] })).await?;
    let ticket =
        resident.post("/api/tickets", json!({ "category": "repair", "title": "楼道灯坏了", "location": "3栋2单元" })).await?.expect_status(201)?.json();
    let id = ticket["id"].as_str().unwrap_or_default().to_string();
    worker.post(&format!("/api/tickets/{id}/dispatch"), json!({ "assignee": fixer.account_id })).await?.expect_status(200)?;
    fixer.call("POST", &format!("/api/tickets/{id}/accept"), None).await?.expect_status(200)?;
    fixer.post(&format!("/api/tickets/{id}/resolve"), json!({ "note": "已更换灯泡" })).await?.expect_status(200)?;
    let result = run_script(&host, "tickets.mjs", "tickets", &[&host.url, "{artifacts}", "13800000001", PASSWORD]).await?;
    assert_eq!(result["ticket"], id.as_str(), "{result}");
    let closed = resident.get(&format!("/api/tickets/{id}")).await?.expect_status(200)?.json();
    assert_eq!((closed["ticket"]["status"].as_str(), closed["ticket"]["rating"].as_i64()), (Some("closed"), Some(5)), "{closed}");

    // 报事报修 in the app: the ticket is hers, in her community, with the photo the app
    // shrank to a JPEG; it is listed under 我的工单 and the photo shows.
    let reported = result["reported"]["id"].as_str().unwrap_or_default().to_string();
    let detail = resident.get(&format!("/api/tickets/{reported}")).await?.expect_status(200)?.json();
    assert_eq!(
        (
            detail["ticket"]["title"].as_str(),
            detail["ticket"]["location"].as_str(),
            detail["ticket"]["tenant_id"].as_str(),
            detail["ticket"]["source"].as_str()
        ),
        (Some("单元门禁坏了"), Some("5栋1单元"), Some("xingfu"), Some("resident")),
        "{detail}"
    );
    assert_eq!(detail["photos"], json!([1]), "{detail}");
    assert!(result["reported"]["photo_width"].as_i64().is_some_and(|w| w >= 1), "the photo shows in the app: {result}");
    assert!(result["reported"]["listed"].as_str().is_some_and(|t| t.contains("单元门禁坏了") && t.contains("待派单")), "{result}");
    let (status, headers, image) = resident.get_bytes(&format!("/api/tickets/{reported}/photos/1")).await?;
    assert_eq!((status, headers.get("content-type").and_then(|v| v.to_str().ok())), (200, Some("image/jpeg")));
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(header("content-security-policy").contains("sandbox") && header("content-security-policy").contains("frame-ancestors 'none'"), "{headers:?}");
    assert!(image.starts_with(&[0xFF, 0xD8, 0xFF]), "a JPEG");
    // The community's worker sees it; another resident does not, and nobody adds a script
    // dressed as a photo.
    assert_eq!(worker.get_bytes(&format!("/api/tickets/{reported}/photos/1")).await?.0, 200);
    let neighbour =
        host.person(json!({ "kind": "resident", "phone": "13800000002", "display_name": "李大爷", "password": PASSWORD, "tenant_id": "xingfu" })).await?;
    assert_eq!(neighbour.get_bytes(&format!("/api/tickets/{reported}/photos/1")).await?.0, 404);
    assert_eq!(neighbour.post_bytes(&format!("/api/tickets/{reported}/photos"), "image/png", PNG_SIGNATURE.to_vec()).await?.status, 404);
    let svg = resident.post_bytes(&format!("/api/tickets/{reported}/photos"), "image/jpeg", b"<svg onload=alert(1)></svg>".to_vec()).await?;
    assert_eq!((svg.status, svg.error_code()), (422, "photo-type".to_string()), "{}", svg.text);
    // A failure is worded from the host's code in the person's language, and the English
    // screens carry no Chinese but what people wrote.
    assert_eq!(result["not_found"], json!(["没有找到相关内容。", "Not found."]), "{result}");
    host.stop().await;
    Ok(())
}
on_both_databases!(tickets_in_chromium, a_report_from_inbox_to_rating);

/// The console in Chromium: the county admin uploads hello, reviews what it asks for and
/// why, grants only part of it, installs it for 城关镇 after confirming; then the
/// dashboards drill down from the county to 幸福社区.
async fn an_operator_installs_for_a_street_and_drills_down(host: TestHost) -> anyhow::Result<()> {
    if !browser_ready()? {
        return Ok(());
    }
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    let package = host.data_dir.join("hello.lpkg");
    std::fs::write(&package, vendor.package("hello", |_| {})?)?;
    let records = format!(
        "姓名,身份证号,手机号,网格\n王秀英,{},13800000001,xingfu-g1\n李志强,{},13800000002,xingfu-g2\n",
        id_number("33078219560312002"),
        id_number("33078219900101001")
    );
    assert_eq!(host.import_csv("residents", "xingfu", &records).await?["status"], "done");
    host.person(json!({ "kind": "staff", "phone": "13900000005", "display_name": "周县管理员", "password": PASSWORD, "roles": [{ "role": "county-admin", "tenant": DEMO_COUNTY }] })).await?;
    let fixer = host.person(json!({ "kind": "staff", "phone": "13900000006", "display_name": "维修师傅", "password": PASSWORD, "roles": [{ "role": "grid-worker", "tenant": "xingfu-g1" }] })).await?;
    let officer = host.person(json!({ "kind": "staff", "phone": "13900000008", "display_name": "社区干事", "password": PASSWORD, "roles": [{ "role": "community-worker", "tenant": "xingfu" }] })).await?;
    let resident =
        host.person(json!({ "kind": "resident", "phone": "13800000001", "display_name": "王阿姨", "password": PASSWORD, "tenant_id": "xingfu" })).await?;
    let ticket =
        resident.post("/api/tickets", json!({ "category": "repair", "title": "楼道灯坏了", "location": "3栋2单元" })).await?.expect_status(201)?.json();
    // A smoke detector goes off: its critical alarm opens a ticket, which the board must put
    // above the older repair, marked urgent.
    let mut smoke_rule = linli_tests::lab::instant_rule("smoke", "烟雾报警", "smoke-detector", "smoke");
    smoke_rule["ticket_category"] = json!("device-alarm");
    host.admin("POST", "/alarm-rules", Some(smoke_rule)).await?.expect_status(200)?;
    let detector = host
        .admin("POST", "/devices", Some(json!({ "id": "smoke-501", "device_type": "smoke-detector", "location": "grid:xingfu-g1" })))
        .await?
        .expect_status(201)?
        .json();
    let sent = host
        .client
        .post(format!("{}/api/devices/smoke-501/telemetry", host.url))
        .bearer_auth(detector["secret"].as_str().unwrap_or_default())
        .body(json!({ "smoke": 1 }).to_string())
        .send()
        .await?;
    assert_eq!(sent.status(), 202);
    linli_tests::lab::wait_until("the smoke opens a ticket", || async {
        let open = officer.get("/api/tickets?status=open").await?.expect_status(200)?.json();
        Ok(open["tickets"].as_array().is_some_and(|t| t.iter().any(|t| t["source"] == "alarm" && t["priority"] == "urgent")))
    })
    .await?;
    // One good row and one with a wrong ID number check digit and a grid of another community.
    let bad_csv = host.data_dir.join("residents.csv");
    std::fs::write(
        &bad_csv,
        format!("姓名,身份证号,手机号,网格\n赵六,{},13800000007,xingfu-g1\n钱七,330782199001010010,13800000008,heping-g1\n", id_number("33078219800101007")),
    )?;

    let result = run_script(
        &host,
        "console.mjs",
        "console",
        &[
            &host.url,
            "{artifacts}",
            "13900000005",
            PASSWORD,
            &package.to_string_lossy(),
            "chengguan",
            "xingfu",
            &fixer.account_id,
            &bad_csv.to_string_lossy(),
            "13900000008",
        ],
    )
    .await?;
    assert_eq!(result["installation"], "hello@chengguan", "{result}");
    assert_eq!(result["granted"], json!(["data"]), "{result}");
    assert_eq!(result["granted_names"], json!(["数据存储"]), "grants are shown by name: {result}");
    assert!(result["first_open"].as_str().is_some_and(|t| t.starts_with("紧急") && t.contains("烟雾报警")), "the alarm is urgent and first: {result}");
    let trace = result["trace"].to_string();
    for step in ["创建", "派单", "督办"] {
        assert!(trace.contains(step), "the ticket's trace shows {step}: {result}");
    }
    assert!(result["csv"].as_str().is_some_and(|row| row.contains("维修师傅") && row.contains("已派单")), "the CSV export has the ticket: {result}");
    assert!(result["duty"].as_str().is_some_and(|d| d.contains("0571-88886666")), "the duty line set on the board: {result}");
    let lines = host.admin("GET", "/duty-lines", None).await?.expect_status(200)?.json();
    assert_eq!(lines["lines"][0]["phone"], "0571-88886666", "{lines}");
    // A community worker is offered neither the county's keys, uploads and audit log nor
    // changes to installations.
    let menu = result["worker"]["menu"].to_string();
    for hidden in ["供应商密钥", "插件目录", "审计日志"] {
        assert!(!menu.contains(hidden), "a community worker's menu offers {hidden}: {result}");
    }
    assert!(menu.contains("已安装插件") && menu.contains("工单看板"), "{result}");
    assert_eq!(result["worker"]["offered"], 0, "no install actions for a community worker: {result}");
    assert_eq!(result["worker"]["scope"], "城关镇", "the street above the worker's community is named: {result}");
    assert!(result["question"].as_str().is_some_and(|q| q.contains("城关镇")), "the confirmation names the street: {result}");
    assert_eq!(result["path"], json!(["示范县", "城关镇", "幸福社区"]), "{result}");
    assert!(result["problems"].as_i64().is_some_and(|n| n >= 2), "both mistakes are reported: {result}");
    assert_eq!(result["residents"], 2, "the rejected import wrote nothing: {result}");
    // What the console showed is what the host did.
    let installed = host.admin("GET", "/installations/hello@chengguan", None).await?.expect_status(200)?.json();
    assert_eq!(result["regranted"], json!(["data", "identity"]), "{result}");
    assert_eq!(installed["installation"]["grants"], json!(["data", "identity"]));
    let ticket = resident.get(&format!("/api/tickets/{}", ticket["id"].as_str().unwrap_or_default())).await?.expect_status(200)?.json();
    assert_eq!(
        (ticket["ticket"]["status"].as_str(), ticket["ticket"]["assignee_name"].as_str(), ticket["ticket"]["supervised"].as_bool()),
        (Some("dispatched"), Some("维修师傅"), Some(true)),
        "{ticket}"
    );
    host.stop().await;
    Ok(())
}
on_both_databases!(console_in_chromium, an_operator_installs_for_a_street_and_drills_down);

/// The elder-friendly app in Chromium: a resident switches it on, opens shared parking
/// from the simplified home and books a neighbour's space; the booking is in 我的预约.
async fn an_elder_books_a_parking_space(host: TestHost) -> anyhow::Result<()> {
    if !browser_ready()? {
        return Ok(());
    }
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    host.publish(&vendor, "parking", &["data", "identity", "devices", "devices:command", "ledger", "notify"], &[DEMO_COUNTY]).await?;
    for (id, device_type) in [("gate-north", "gate-controller"), ("sensor-017", "parking-sensor")] {
        host.admin("POST", "/devices", Some(json!({ "id": id, "device_type": device_type, "model": "T-1", "vendor": "测试", "location": "grid:xingfu-g2" })))
            .await?
            .expect_status(201)?;
    }
    let owner =
        host.person(json!({ "kind": "resident", "phone": "13800000006", "display_name": "李师傅", "password": PASSWORD, "tenant_id": "xingfu" })).await?;
    let booker =
        host.person(json!({ "kind": "resident", "phone": "13800000001", "display_name": "王阿姨", "password": PASSWORD, "tenant_id": "xingfu" })).await?;
    let space =
        owner.post("/t/xingfu/p/parking/spaces", json!({ "label": "B2-017", "gate": "gate-north", "sensor": "sensor-017" })).await?.expect_status(201)?.json();
    let now = now_ms();
    let window = json!({ "from": cst_minute(now - 3_600_000), "to": cst_minute(now + 48 * 3_600_000) });
    owner.post(&format!("/t/xingfu/p/parking/spaces/{}/windows", space["id"].as_str().unwrap_or_default()), window).await?.expect_status(201)?;

    let result = run_script(&host, "elder_parking.mjs", "elder-parking", &[&host.url, "{artifacts}", "13800000001", PASSWORD, "浙A12345"]).await?;
    assert!(result["font_px"].as_f64().is_some_and(|px| px >= 20.0), "{result}");
    assert!(result["listed"].to_string().contains("浙A12345"), "{result}");
    let mine = booker.get("/t/xingfu/p/parking/bookings/mine").await?.expect_status(200)?.json();
    assert_eq!(
        (mine[0]["plate"].as_str(), mine[0]["space_label"].as_str(), mine[0]["status"].as_str()),
        (Some("浙A12345"), Some("B2-017"), Some("booked")),
        "{mine}"
    );
    host.stop().await;
    Ok(())
}
on_both_databases!(elder_parking_in_chromium, an_elder_books_a_parking_space);

/// Property services (the TypeScript plugin) in the app: 报事报修 hands 物业维修 to it; a leak
/// with a photo dispatched to the community's property company, resolved by its staff and rated; a fee paid through the demo gateway; a visitor pass the gate acknowledges
/// (the test's device side, on Mosquitto); axe-core in both modes (property.mjs).
async fn property_in_chromium(backend: Backend) -> anyhow::Result<()> {
    if !browser_ready()? {
        return Ok(());
    }
    let Some(mut lab) = lab::Lab::start(backend, |_| {}).await? else { return Ok(()) };
    let gate_log = lab::answer_commands(&mut lab);
    let host = &lab.host;
    lab.register("gate-east", "gate-controller", "grid:xingfu-g1").await?;
    let csv = "姓名,身份证号,手机号,网格,楼栋,单元,房号,户,标签\n王秀英,330782195603120020,13800000001,xingfu-g1,3,2,501,3-2-501,\n";
    assert_eq!(host.import_csv("residents", "demo-county", csv).await?["status"], "done");
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    let dir = polyglot_dir("property");
    host.upload(vendor.package_from(&dir, &dir.join("dist/plugin.wasm"), |_| {})?).await?.expect_status(201)?;
    let grants = ["data", "identity", "identity:resident-record", "base", "ledger", "tickets", "devices", "devices:command", "notify"];
    host.install("property", "0.1.0", DEMO_COUNTY, &grants, json!({})).await?.expect_status(201)?;
    let resident =
        host.person(json!({ "kind": "resident", "phone": "13800000001", "display_name": "王阿姨", "password": PASSWORD, "tenant_id": "xingfu" })).await?;
    let office = host
        .person(json!({ "kind": "staff", "phone": "13900000051", "display_name": "赵社工", "password": PASSWORD,
            "roles": [{ "role": "community-worker", "tenant": "xingfu" }] }))
        .await?;
    host.person(json!({ "kind": "staff", "phone": "13900000052", "display_name": "物业小刘", "password": PASSWORD,
        "roles": [{ "role": "property-staff", "tenant": "xingfu" }] }))
        .await?;
    let company = "名称,类型,网格,联系方式\n幸福社区物业服务中心,物业,xingfu,0571-88880001\n";
    assert_eq!(host.import_csv("organisations", DEMO_COUNTY, company).await?["status"], "done");
    office.call("PUT", "/t/xingfu/p/property/office/gate", Some(json!({ "gate": "gate-east" }))).await?.expect_status(200)?;
    office.post("/t/xingfu/p/property/office/bills", json!({ "period": "2026-12", "amount": 12000 })).await?.expect_status(201)?;

    let result = run_script(host, "property.mjs", "property", &[&host.url, "{artifacts}", "13800000001", "13900000051", "13900000052", PASSWORD]).await?;
    assert!(result["assignee"].as_str().is_some_and(|a| a.contains("幸福社区物业服务中心")), "{result}");
    assert!(result["receipt"].as_str().is_some_and(|r| r.contains("WY202612")), "{result}");
    assert_eq!(result["balance"], 0, "{result}");
    assert!(result["rated"].as_str().is_some_and(|r| r.contains("★★★★★")), "{result}");
    assert_eq!(result["gate"], "listed", "{result}");
    assert_eq!(lab::commands(&gate_log, "whitelist-add", "浙A66666"), 1);
    // What the pages showed is what the host holds.
    let tickets = resident.get("/api/tickets").await?.expect_status(200)?.text;
    assert!(tickets.contains("\"closed\""), "{tickets}");
    let bills = resident.get("/t/xingfu/p/property/bills/mine").await?.expect_status(200)?.json();
    assert_eq!((bills["balance"].as_i64(), bills["bills"][0]["status"].as_str()), (Some(0), Some("paid")), "{bills}");
    lab.host.stop().await;
    Ok(())
}
on_both_backends!(property_in_chromium);

/// The community council (the Python plugin) in the app: a household votes once, the worker
/// closes the vote and the result shows; an activity's points earned and redeemed; axe-core in
/// both modes (council.mjs).
async fn a_household_votes_and_a_volunteer_redeems(host: TestHost) -> anyhow::Result<()> {
    if !browser_ready()? {
        return Ok(());
    }
    let csv = "姓名,身份证号,手机号,网格,楼栋,单元,房号,户,标签\n\
               王秀英,330782195603120020,13800000001,xingfu-g1,3,2,501,3-2-501,\n\
               王建国,330782195401010018,13800000009,xingfu-g1,3,2,501,3-2-501,\n\
               李建军,330782197805060037,13800000006,xingfu-g1,3,2,502,3-2-502,\n";
    assert_eq!(host.import_csv("residents", DEMO_COUNTY, csv).await?["status"], "done");
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    let dir = polyglot_dir("council");
    host.upload(vendor.package_from(&dir, &dir.join("dist/plugin.wasm"), |_| {})?).await?.expect_status(201)?;
    host.install("council", "0.1.0", DEMO_COUNTY, &["data", "identity", "identity:resident-record", "base", "ledger"], json!({})).await?.expect_status(201)?;
    let resident = |phone: &str, name: &str| json!({ "kind": "resident", "phone": phone, "display_name": name, "password": PASSWORD, "tenant_id": "xingfu" });
    let wang = host.person(resident("13800000001", "王阿姨")).await?;
    host.person(resident("13800000009", "王大伯")).await?;
    let worker = host
        .person(json!({ "kind": "staff", "phone": "13900000071", "display_name": "赵社工", "password": PASSWORD,
            "roles": [{ "role": "community-worker", "tenant": "xingfu" }] }))
        .await?;
    let council = |rest: &str| format!("/t/xingfu/p/council{rest}");
    let proposal = json!({ "title": "楼道加装照明", "body": "3栋楼道加装感应灯，费用从公共收益支出。", "quorum_percent": 50, "threshold_percent": 50 });
    worker.post(&council("/proposals"), proposal).await?.expect_status(201)?;
    worker
        .post(&council("/activities"), json!({ "title": "义务植树", "when": "12月14日 9:00", "place": "中心花园", "points": 30 }))
        .await?
        .expect_status(201)?;
    worker.post(&council("/rewards"), json!({ "name": "洗衣液", "points": 25, "stock": 3 })).await?.expect_status(201)?;

    let result = run_script(&host, "council.mjs", "council", &[&host.url, "{artifacts}", "13800000001", "13800000009", "13900000071", PASSWORD]).await?;
    assert!(result["refused"].as_str().is_some_and(|r| r.contains("每户一票")), "{result}");
    assert!(result["result"].as_str().is_some_and(|r| r.starts_with("通过") && r.contains("1/2")), "{result}");
    assert!(result["redeemed"].as_str().is_some_and(|r| r.contains("洗衣液")), "{result}");
    assert_eq!(result["balance"], 5, "{result}");
    // What the pages showed is what the plugin holds.
    assert_eq!(wang.get(&council("/points")).await?.expect_status(200)?.json()["balance"], 5);
    host.stop().await;
    Ok(())
}
on_both_databases!(council_in_chromium, a_household_votes_and_a_volunteer_redeems);

/// A community worker uses elderly care's staff page in the app, through the bridge.
async fn a_worker_keeps_the_elders_archive(host: TestHost) -> anyhow::Result<()> {
    if !browser_ready()? {
        return Ok(());
    }
    lab::lone_elder_home(&host).await?;
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    host.publish(&vendor, "elderly-care", &["data", "identity", "base", "devices", "devices:alarms", "tickets", "notify", "notify:sms"], &["xingfu"]).await?;
    let worker = host.person(json!({ "kind": "staff", "phone": "13900000011", "display_name": "赵社工", "password": PASSWORD, "roles": [{ "role": "community-worker", "tenant": "xingfu" }] })).await?;
    let result = run_script(&host, "elderly_care.mjs", "elderly-care", &[&host.url, "{artifacts}", "13900000011", PASSWORD, "xingfu"]).await?;
    assert!(result["elders"][0].as_str().is_some_and(|e| e.contains("王阿姨") && e.contains("3栋2单元401")), "{result}");
    // What the page showed is what the plugin holds.
    let records = worker.get("/t/xingfu/p/elderly-care/stats").await?.expect_status(200)?.json();
    assert_eq!((records["elders"].as_i64(), records["records"].as_i64()), (Some(1), Some(1)), "{records}");
    host.stop().await;
    Ok(())
}
on_both_databases!(elderly_care_in_chromium, a_worker_keeps_the_elders_archive);

/// 王阿姨 in the elder-friendly mode: her own care page, her daughter following her by code
/// and seeing a fall, 一键求助 with the text to her daughter and the duty line (care_family.mjs).
async fn an_elder_calls_for_help_and_her_daughter_follows(host: TestHost) -> anyhow::Result<()> {
    if !browser_ready()? {
        return Ok(());
    }
    let (house, _address) = lab::lone_elder_home(&host).await?;
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    let grants = ["data", "identity", "identity:resident-record", "base", "base:contacts", "devices", "devices:alarms", "tickets", "notify", "notify:sms"];
    host.publish(&vendor, "elderly-care", &grants, &["xingfu"]).await?;
    let worker = host.person(json!({ "kind": "staff", "phone": "13900000011", "display_name": "赵社工", "password": PASSWORD, "roles": [{ "role": "community-worker", "tenant": "xingfu" }] })).await?;
    worker.post("/t/xingfu/p/elderly-care/elders/sync", json!({})).await?.expect_status(200)?;
    let elders = worker.get("/t/xingfu/p/elderly-care/elders").await?.expect_status(200)?.json();
    let elder_id = elders[0]["id"].as_str().unwrap_or_default().to_string();
    worker.post(&format!("/t/xingfu/p/elderly-care/elders/{elder_id}/consent"), json!({ "given_by": "本人" })).await?.expect_status(200)?;
    let resident = |phone: &str, name: &str| json!({ "kind": "resident", "phone": phone, "display_name": name, "password": PASSWORD, "tenant_id": "xingfu" });
    host.person(resident("13800000031", "王阿姨")).await?;
    let daughter = host.person(resident("13900000099", "王小红")).await?;
    host.admin("PUT", "/duty-lines/xingfu", Some(json!({ "phone": "0571-88886666" }))).await?.expect_status(200)?;
    let device = host
        .admin(
            "POST",
            "/devices",
            Some(json!({ "id": "fall-401", "device_type": "fall-button", "model": "SOS-1", "vendor": "安居", "location": format!("house:{house}") })),
        )
        .await?
        .expect_status(201)?
        .json();
    let secret = device["secret"].as_str().unwrap_or_default().to_string();
    host.admin("POST", "/alarm-rules", Some(lab::instant_rule("fall", "跌倒求助", "fall-button", "pressed"))).await?.expect_status(200)?;

    let result =
        run_script(&host, "care_family.mjs", "care-family", &[&host.url, "{artifacts}", "13800000031", "13900000099", PASSWORD, "fall-401", &secret]).await?;
    assert!(result["contacts"].as_str().is_some_and(|c| c.contains("王小红") && c.contains("13900000099")), "{result}");
    assert!(result["daughter_sees"].as_str().is_some_and(|a| a.contains("跌倒求助")), "{result}");
    assert!(result["texted"].as_str().is_some_and(|t| t.contains("王小红")), "{result}");
    assert_eq!(result["call"], "tel:057188886666");
    assert!(result["mother_news"].as_str().is_some_and(|n| n.contains("一键求助")), "{result}");
    assert!(result["daughter_news"].as_str().is_some_and(|n| n.contains("跌倒求助")), "{result}");
    // What the screens said is what happened: the daughter's phone got both texts, the
    // community's board has the urgent call, and she follows her mother.
    let outbox = std::fs::read_to_string(host.data_dir.join("sms-outbox.jsonl")).unwrap_or_default();
    let to_daughter: Vec<&str> = outbox.lines().filter(|l| l.contains("13900000099")).collect();
    assert!(to_daughter.iter().any(|l| l.contains("一键求助")) && to_daughter.iter().any(|l| l.contains("跌倒")), "{outbox}");
    let board = worker.get("/api/tickets?status=open").await?.expect_status(200)?.json();
    assert!(
        board["tickets"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["category"] == "emergency" && t["title"].as_str().is_some_and(|x| x.contains("一键求助")))),
        "{board}"
    );
    let family = daughter.get("/t/xingfu/p/elderly-care/family").await?.expect_status(200)?.json();
    assert_eq!(family["following"][0]["name"], "王阿姨", "{family}");
    host.stop().await;
    Ok(())
}
on_both_databases!(care_family_in_chromium, an_elder_calls_for_help_and_her_daughter_follows);

/// An origin on loopback for the hostile page to reach: answers "reachable" to anyone (CORS
/// open) and counts every request that arrived, so a leak the browser did not report
/// still shows.
struct ExternalOrigin {
    url: String,
    requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl ExternalOrigin {
    async fn serve() -> anyhow::Result<Self> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 8192];
                    if stream.read(&mut buffer).await.unwrap_or(0) == 0 {
                        return;
                    }
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let body = "reachable";
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\naccess-control-allow-origin: *\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                });
            }
        });
        Ok(Self { url, requests })
    }

    fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The hostile plugin's package at `version`, its pages asking to reach `origins`.
fn intruder(vendor: &Vendor, version: &str, origins: &[&str]) -> anyhow::Result<Vec<u8>> {
    vendor.package("intruder", |manifest| {
        set_version(version)(manifest);
        let mut ui = toml::Table::new();
        ui.insert("connect".into(), toml::Value::Array(origins.iter().map(|o| toml::Value::String(o.to_string())).collect()));
        manifest.insert("ui".into(), toml::Value::Table(ui));
    })
}

/// What a page may do; everything else it tries must end "blocked".
const ALLOWED: [&str; 6] = ["own-route", "own-route-signed-in", "context", "storage", "granted-origin", "consent-declined"];

fn every_attack_failed(who: &str, place: &str, results: &serde_json::Value) {
    let attempts = results.as_object().unwrap_or_else(|| panic!("{who} {place}: no results: {results}"));
    assert_eq!(results["origin"], "null", "{who} {place}: the page must run in an opaque origin: {results}");
    let mut attacks = 0;
    for (name, outcome) in attempts {
        if ["origin", "framed"].contains(&name.as_str()) {
            continue;
        }
        let outcome = outcome.as_str().unwrap_or_default();
        if ALLOWED.contains(&name.as_str()) {
            assert_eq!(outcome, "ok", "{who} {place}: {name} should work: {outcome}");
        } else {
            attacks += 1;
            assert!(outcome.starts_with("blocked"), "{who} {place}: {name} got through: {outcome}");
        }
    }
    assert!(attacks >= 15, "{who} {place}: only {attacks} attacks ran: {results}");
}

/// A vendor's page gets only what the county granted, in the browser too: a hostile page,
/// installed for the county with `data`, `identity` and one external origin, is opened by
/// a resident, a grid worker and a county admin — in the app's frame (and the console's, for
/// the admin), on its own, and as a dynamic route answering HTML with a script and a
/// Set-Cookie for the session. Every
/// attempt on the host's API, the admin API, another plugin, consents, the app's DOM and
/// storage, the top window, ungranted origins and the bridge's limits fails; what the page
/// may do (its own routes through the bridge, the granted origin) works.
async fn a_hostile_plugin_page_gets_nothing_beyond_its_grants(host: TestHost) -> anyhow::Result<()> {
    if !browser_ready()? {
        return Ok(());
    }
    let (granted, requested, unrequested) = (ExternalOrigin::serve().await?, ExternalOrigin::serve().await?, ExternalOrigin::serve().await?);
    let vendor = Vendor::new("linli-tests")?;
    host.trust(&vendor).await?;
    host.upload(intruder(&vendor, "0.1.0", &[&granted.url, &requested.url])?).await?.expect_status(201)?;
    let unlisted = host.install("test-intruder", "0.1.0", "heping", &["data", &format!("ui-connect:{}", unrequested.url)], json!({})).await?;
    assert_eq!(unlisted.status, 422, "an origin the package does not list cannot be granted: {}", unlisted.text);
    let installed = host
        .install("test-intruder", "0.1.0", DEMO_COUNTY, &["data", "identity", "identity:phone", &format!("ui-connect:{}", granted.url)], json!({}))
        .await?
        .expect_status(201)?
        .json();
    host.publish(&vendor, "hello", &["data", "identity"], &["xingfu"]).await?;
    let people = [
        host.person(json!({ "kind": "resident", "phone": "13800000001", "display_name": "王阿姨", "password": PASSWORD, "tenant_id": "xingfu" })).await?,
        host.person(json!({ "kind": "staff", "phone": "13800000002", "display_name": "李网格员", "password": PASSWORD, "roles": [{ "role": "grid-worker", "tenant": "xingfu-g1" }] })).await?,
        host.person(json!({ "kind": "staff", "phone": "13800000005", "display_name": "周县管理员", "password": PASSWORD, "roles": [{ "role": "county-admin", "tenant": DEMO_COUNTY }] })).await?,
    ];

    // The host, not the plugin, decides the security headers of what the plugin serves.
    let html = host.client.get(format!("{}/t/xingfu/p/test-intruder/html", host.url)).send().await?;
    let headers = html.headers().clone();
    for dropped in
        ["set-cookie", "access-control-allow-origin", "access-control-allow-credentials", "x-frame-options", "strict-transport-security", "clear-site-data"]
    {
        assert!(headers.get(dropped).is_none(), "{dropped} passed through: {headers:?}");
    }
    assert_eq!(headers.get("x-intruder").and_then(|v| v.to_str().ok()), Some("kept"), "the plugin's own headers pass");
    assert_eq!(headers.get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"));
    let policies: Vec<String> = headers.get_all("content-security-policy").iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect();
    assert_eq!(policies.len(), 2, "the plugin's policy is kept beside the host's, so it can only narrow it: {policies:?}");
    assert!(policies.iter().all(|p| !p.contains("report-uri")), "no reports sent out: {policies:?}");
    let own = policies.iter().find(|p| p.starts_with("sandbox ")).expect("the host's policy");
    assert!(!own.contains("allow-same-origin") && !own.contains("allow-top-navigation"), "{own}");
    assert!(own.contains(&format!("connect-src {};", granted.url)), "{own}");
    assert!(!own.contains(&requested.url) && !own.contains(&unrequested.url), "{own}");
    let away = host.client.get(format!("{}/t/xingfu/p/test-intruder/away", host.url)).send().await?;
    assert!(away.headers().get("location").is_none(), "no redirect to another site through the host");
    for path in ["/t/xingfu/p/test-intruder/ui/index.html", "/t/xingfu/p/not-installed/x", "/p/test-intruder/echo"] {
        let reply = host.client.get(format!("{}{path}", host.url)).send().await?;
        let policy = reply.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        assert!(policy.starts_with("sandbox allow-scripts"), "{path} ({}): {policy}", reply.status());
    }

    let query =
        format!("tenant=xingfu&granted={}&requested={}&unrequested={}", granted.url, requested.url, unrequested.url).replace(':', "%3A").replace('/', "%2F");
    let accounts = [format!("13800000001:{PASSWORD}"), format!("13800000002:{PASSWORD}"), format!("13800000005:{PASSWORD}:console")];
    let mut args = vec![host.url.as_str(), "{artifacts}", "xingfu", query.as_str()];
    args.extend(accounts.iter().map(String::as_str));
    let result = run_script(&host, "hostile_page.mjs", "hostile-page", &args).await?;

    for phone in ["13800000001", "13800000002", "13800000005"] {
        let seen = &result[phone];
        every_attack_failed(phone, "in the app", &seen["framed"]);
        every_attack_failed(phone, "opened on its own", &seen["top_level"]);
        assert_eq!(seen["framed"]["framed"], true, "{phone}: {seen}");
        assert_eq!(seen["app_url_kept"], true, "{phone}: the page navigated the app away");
        assert_eq!(seen["consent_asked"], phone == "13800000001", "{phone}: only a resident is shown a consent screen, once");
        assert_eq!(seen["consent_dialogs_left"], 0, "{phone}: a consent screen was left open");
        assert_eq!(seen["me_status"], 200, "{phone}: the session ended");
        assert_eq!(seen["session_kept"], true, "{phone}: the session cookie changed");
        assert_eq!(seen["cookie_kept"], true, "{phone}: the plugin's route set the session cookie");
        if phone == "13800000005" {
            every_attack_failed(phone, "in the console", &seen["console"]);
            assert_eq!(seen["console_url_kept"], true, "{phone}: the page navigated the console away");
            assert_eq!(seen["console_me"], 200, "{phone}: the console session ended");
        }
        let route = &seen["html_route"];
        assert_eq!(route["origin"], "null", "{phone}: {route}");
        assert!(!route["api"].as_str().unwrap_or_default().contains("200"), "{phone}: the route's script read /api/me: {route}");
    }
    // Nothing reached the origins the county did not grant; the granted one was reached.
    assert_eq!((requested.requests(), unrequested.requests()), (0, 0), "requests reached ungranted origins");
    assert!(granted.requests() >= 6, "the granted origin got {} requests", granted.requests());
    // The forged consent recorded nothing, for anyone.
    for person in &people {
        assert_eq!(person.get("/api/consents").await?.expect_status(200)?.json(), json!([]));
    }
    let audit = host.operator().get("/api/audit?actor=plugin:test-intruder").await?.expect_status(200)?.json();
    assert!(audit.as_array().is_some_and(|a| a.iter().all(|e| e["outcome"] != "consent-given")), "{audit}");

    // A new version asking for one more origin: upgraded without new grants, it keeps what
    // was granted (scopes and origins) and gets nothing new.
    let newer = ExternalOrigin::serve().await?.url;
    host.upload(intruder(&vendor, "0.2.0", &[&granted.url, &requested.url, &newer])?).await?.expect_status(201)?;
    let id = installed["id"].as_str().unwrap_or_default().to_string();
    let upgraded = host.admin("POST", &format!("/installations/{id}/upgrade"), Some(json!({ "version": "0.2.0" }))).await?.expect_status(200)?.json();
    assert_eq!(upgraded["grants"], installed["grants"], "an upgrade keeps the grants it still asks for and adds none");
    let policy = host.client.get(format!("{}/t/xingfu/p/test-intruder/ui/index.html", host.url)).send().await?;
    let policy = policy.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(policy.contains(&granted.url) && !policy.contains(&newer), "{policy}");
    host.stop().await;
    Ok(())
}
on_both_databases!(hostile_page_in_chromium, a_hostile_plugin_page_gets_nothing_beyond_its_grants);
