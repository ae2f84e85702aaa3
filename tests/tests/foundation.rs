//! The foundation's story, end to end over HTTP: a vendor packs and signs hello with the
//! real CLI, an operator installs it for communities, residents' requests run in sandboxed
//! instances and keep per-community data; bad packages and misbehaving plugins are
//! stopped without harming anything else. Every story runs on SQLite and on PostgreSQL.
use linli_host::packages::{Manifest, Package};
use linli_tests::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

async fn visit(host: &TestHost, tenant: &str) -> anyhow::Result<u64> {
    let reply = host.plugin("POST", tenant, "hello/visits").await?.expect_status(200)?;
    Ok(reply.json()["visits"].as_u64().unwrap_or_default())
}

async fn visits(host: &TestHost, tenant: &str) -> anyhow::Result<u64> {
    let reply = host.plugin("GET", tenant, "hello/visits").await?.expect_status(200)?;
    Ok(reply.json()["visits"].as_u64().unwrap_or_default())
}

async fn installation(host: &TestHost, id: &str) -> anyhow::Result<Value> {
    Ok(host.admin("GET", &format!("/installations/{id}"), None).await?.expect_status(200)?.json())
}

async fn hello_for_two_communities(host: TestHost) -> anyhow::Result<()> {
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    host.upload(vendor.package("hello", |_| {})?).await?.expect_status(201)?;
    for community in ["xingfu", "heping"] {
        host.install("hello", "0.1.0", community, &["data"], json!({})).await?.expect_status(201)?;
    }

    // Operator installs hello for 幸福 and 和平: each community counts on its own.
    for _ in 0..3 {
        visit(&host, "xingfu").await?;
    }
    assert_eq!(visit(&host, "heping").await?, 1);
    assert_eq!(visits(&host, "xingfu").await?, 3);
    // A grid below 幸福 is served by 幸福's installation, with 幸福's data.
    assert_eq!(host.plugin("GET", "xingfu-g1", "hello/communities").await?.expect_status(200)?.json()[0]["visits"], 3);
    // The same route with the tenant in a header.
    let by_header = host.client.get(format!("{}/p/hello/visits", host.url)).header("x-linli-tenant", "heping").send().await?;
    assert_eq!(by_header.json::<Value>().await?["visits"], 1);
    // Not installed for 南湖: a clear 404, not someone else's data.
    let reply = host.plugin("GET", "nanhu-lake", "hello/visits").await?;
    assert_eq!((reply.status, reply.error_code().as_str()), (404, "not-installed"));

    // The package's UI is served from the package.
    let ui = host.plugin("GET", "xingfu", "hello/ui/index.html").await?.expect_status(200)?;
    assert!(ui.text.contains("你好邻里"));
    assert!(ui.headers["content-type"].to_str()?.starts_with("text/html"));
    let index = host.plugin("GET", "xingfu", "hello/ui/").await?.expect_status(200)?;
    assert_eq!(index.text, ui.text);
    let bare = host.client.get(format!("{}/t/xingfu/p/hello/ui", host.url)).send().await?;
    assert_eq!(bare.url().path(), "/t/xingfu/p/hello/ui/", "redirected so relative links work");
    assert_eq!(host.plugin("GET", "xingfu", "hello/ui/missing.js").await?.status, 404);

    // Upgrade keeps data; rollback keeps data.
    host.upload(vendor.package("hello", set_version("0.2.0"))?).await?.expect_status(201)?;
    let upgraded = host.admin("POST", "/installations/hello@xingfu/upgrade", Some(json!({ "version": "0.2.0" }))).await?.expect_status(200)?;
    assert_eq!(upgraded.json()["version"], "0.2.0");
    assert_eq!(visit(&host, "xingfu").await?, 4);
    let downgrade = host.admin("POST", "/installations/hello@xingfu/upgrade", Some(json!({ "version": "0.1.0" }))).await?;
    assert_eq!(downgrade.status, 422, "an upgrade must go forward: {}", downgrade.text);
    let rolled = host.admin("POST", "/installations/hello@xingfu/rollback", None).await?.expect_status(200)?;
    assert_eq!(rolled.json()["version"], "0.1.0");
    assert_eq!(visits(&host, "xingfu").await?, 4);
    let history: Vec<String> = installation(&host, "hello@xingfu").await?["history"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| h["action"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(history, ["install", "upgrade", "rollback"]);
    assert_eq!(visits(&host, "heping").await?, 1, "the other community is untouched");

    // Uninstall keeps data unless purged.
    host.admin("DELETE", "/installations/hello@heping", None).await?.expect_status(204)?;
    assert_eq!(host.plugin("GET", "heping", "hello/visits").await?.status, 404);
    host.install("hello", "0.1.0", "heping", &["data"], json!({})).await?.expect_status(201)?;
    assert_eq!(visits(&host, "heping").await?, 1);
    host.admin("DELETE", "/installations/hello@heping?purge=true", None).await?.expect_status(204)?;
    host.install("hello", "0.1.0", "heping", &["data"], json!({})).await?.expect_status(201)?;
    assert_eq!(visits(&host, "heping").await?, 0);

    // Metrics count per plugin.
    let metrics = host.get("/metrics").await?.expect_status(200)?.text;
    assert!(metrics.contains("linli_plugin_requests_total{installation=\"hello@xingfu\",plugin=\"hello\",status=\"200\"}"), "{metrics}");
    assert!(metrics.contains("linli_plugin_request_seconds_bucket"));

    // A restart serves the same installations and data from the compiled cache (shared by
    // the run's test hosts, so other tests may add files meanwhile; none of these changes).
    let cache_files = |host: &TestHost| -> Vec<(std::path::PathBuf, std::time::SystemTime)> {
        walk(&host.config.compile_cache_dir())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .filter_map(|p| Some((p.clone(), p.metadata().ok()?.modified().ok()?)))
            .collect()
    };
    let before = cache_files(&host);
    assert!(!before.is_empty(), "compiled components are cached on disk");
    let host = host.restart().await?;
    assert_eq!(visits(&host, "xingfu").await?, 4);
    let after = cache_files(&host);
    for file in &before {
        assert!(after.contains(file), "a restart loads from the cache instead of recompiling: {} changed", file.0.display());
    }
    host.stop().await;
    Ok(())
}
on_both_databases!(hello_for_two_communities_upgrade_rollback_uninstall, hello_for_two_communities);

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    entries.flatten().flat_map(|e| if e.path().is_dir() { walk(&e.path()) } else { vec![e.path()] }).collect()
}

/// The demo's set-up file applies cleanly, twice, and its accounts can log in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_setup_applies_and_reapplies() -> anyhow::Result<()> {
    let host = TestHost::start(Backend::Sqlite).await?.expect("SQLite is always available");
    let server = host.server.as_ref().expect("running");
    // The demo signs the plugins with its own key; here the test's vendor stands in for it.
    let work = tempfile::tempdir()?;
    let setup = linli_tests::demo::demo_setup(&Vendor::new("linli")?, work.path())?;
    for _ in 0..2 {
        let setup = linli_host::setup::Setup::load(&setup)?;
        setup.apply(&server.platform, &server.auth).await?;
    }
    assert_eq!(host.admin("GET", "/installations", None).await?.json()["installations"].as_array().map(Vec::len), Some(9));
    // The devices in 王秀英's home are bound to her house, and the rules are in place.
    let meter = host.admin("GET", "/devices/wm-xingfu-3-2-501", None).await?.expect_status(200)?.json();
    assert_eq!(meter["device"]["location"]["label"], "3栋2单元501");
    assert_eq!(meter["device"]["location"]["tenant"], "xingfu-g1");
    assert_eq!(host.admin("GET", "/devices", None).await?.json()["devices"].as_array().map(Vec::len), Some(7));
    assert_eq!(host.admin("GET", "/alarm-rules", None).await?.json()["rules"].as_array().map(Vec::len), Some(3));
    // The generated county and the demo resident's record are there once.
    let residents = host.operator().get("/api/base/residents?limit=1").await?.expect_status(200)?.json();
    let total = residents["total_in_scope"].as_i64().unwrap_or(0);
    assert!((3000..3100).contains(&total), "{total} residents");
    let wang = host.operator().get("/api/base/residents?name=%E7%8E%8B%E7%A7%80%E8%8B%B1&tenant=xingfu-g1").await?.expect_status(200)?.json();
    assert!(wang["items"].as_array().is_some_and(|a| a.iter().any(|r| r["phone"] == "138****0001")), "{wang}");
    let login = host.client.post(format!("{}/api/auth/login", host.url)).json(&json!({ "phone": "13800000001", "password": "linli-demo-2026" })).send().await?;
    assert_eq!(login.status(), 200);
    // The time bank's demo members were loaded once per community, through the plugin.
    let tokens: serde_json::Value = login.json().await?;
    let stats = host
        .client
        .get(format!("{}/t/xingfu/p/time-bank/stats", host.url))
        .bearer_auth(tokens["access_token"].as_str().unwrap_or_default())
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    let rows = stats.as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 4, "{stats}");
    assert!(rows.iter().all(|r| r["members"] == 80 && r["needs"].as_i64().unwrap_or(0) + r["offers"].as_i64().unwrap_or(0) > 10), "{stats}");
    // Elderly care: the archive of lone elders over 60, 王秀英 with consent and a contact.
    let admin = host.client.post(format!("{}/api/auth/login", host.url)).json(&json!({ "phone": "13800000005", "password": "linli-demo-2026" })).send().await?;
    let admin: serde_json::Value = admin.json().await?;
    let care = host
        .client
        .get(format!("{}/t/demo-county/p/elderly-care/stats", host.url))
        .bearer_auth(admin["access_token"].as_str().unwrap_or_default())
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    assert_eq!(care["consented"], 1, "{care}");
    assert!(care["elders"].as_i64().unwrap_or(0) > 1, "{care}");
    // Shared parking: 李师傅's space, shown on 幸福社区's dashboard with the time bank's members.
    let board = host.operator().get("/api/dashboard?tenant=xingfu").await?.expect_status(200)?.json();
    assert_eq!(board["totals"]["parking.spaces"], 1.0, "{}", board["totals"]);
    assert!(board["totals"]["parking.published_hours"].as_f64().is_some_and(|h| h >= 13.0 * 24.0), "{}", board["totals"]);
    assert_eq!(board["totals"]["time-bank.members"], 80.0, "{}", board["totals"]);
    // Property services billed every house of each community once (96.00 元), and each
    // community's council has its two open proposals once, though the set-up ran twice; the
    // figures add up community → street → county.
    let figure = |totals: &serde_json::Value, key: &str| totals[key].as_f64().unwrap_or(0.0);
    let mut county_sum = [0.0; 3];
    let mut street_sum = [0.0; 3];
    for community in ["xingfu", "heping", "nanhu-lake", "nanhu-garden"] {
        let totals = dashboard_totals(&host, community).await?;
        let fees = figure(&totals, "property.fees_billed");
        assert!(fees >= 96.0 * 100.0 && (fees / 96.0).fract() == 0.0, "{community}: {totals}");
        assert_eq!(figure(&totals, "council.proposals"), 2.0, "{community}: {totals}");
        assert!(figure(&totals, "council.eligible") >= 2.0 * 100.0, "{community}: {totals}");
        let row = [fees, figure(&totals, "council.proposals"), figure(&totals, "council.eligible")];
        for (sum, value) in county_sum.iter_mut().zip(row) {
            *sum += value;
        }
        if ["xingfu", "heping"].contains(&community) {
            for (sum, value) in street_sum.iter_mut().zip(row) {
                *sum += value;
            }
        }
    }
    for (tenant, expected) in [("chengguan", street_sum), ("demo-county", county_sum)] {
        let totals = dashboard_totals(&host, tenant).await?;
        let rolled = [figure(&totals, "property.fees_billed"), figure(&totals, "council.proposals"), figure(&totals, "council.eligible")];
        assert_eq!(rolled, expected, "{tenant}: {totals}");
    }
    host.stop().await;
    Ok(())
}

async fn dashboard_totals(host: &TestHost, tenant: &str) -> anyhow::Result<serde_json::Value> {
    Ok(host.operator().get(&format!("/api/dashboard?tenant={tenant}")).await?.expect_status(200)?.json()["totals"].clone())
}

async fn street_install_serves_its_communities(host: TestHost) -> anyhow::Result<()> {
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    host.upload(vendor.package("hello", |_| {})?).await?.expect_status(201)?;
    host.install("hello", "0.1.0", "nanhu", &["data"], json!({})).await?.expect_status(201)?;
    // One store for the street, counted per community by the plugin.
    assert_eq!(visit(&host, "nanhu-lake").await?, 1);
    assert_eq!(visit(&host, "nanhu-lake").await?, 2);
    assert_eq!(visit(&host, "nanhu-garden").await?, 1);
    let all = host.plugin("GET", "nanhu-garden", "hello/communities").await?.expect_status(200)?.json();
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    // A community-level install overrides the street's for that community only.
    host.install("hello", "0.1.0", "nanhu-lake", &["data"], json!({})).await?.expect_status(201)?;
    assert_eq!(visits(&host, "nanhu-lake").await?, 0);
    assert_eq!(visits(&host, "nanhu-garden").await?, 1);
    // Outside the street: not served.
    assert_eq!(host.plugin("GET", "xingfu", "hello/visits").await?.status, 404);
    host.stop().await;
    Ok(())
}
on_both_databases!(street_install_serves_communities_below, street_install_serves_its_communities);

async fn bad_packages(host: TestHost) -> anyhow::Result<()> {
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    let good = vendor.package("hello", |_| {})?;
    let packages_before = host.admin("GET", "/packages", None).await?.json();

    let expect_rejected = |reply: Reply, status: u16, needle: &str| {
        assert_eq!(reply.status, status, "{}", reply.text);
        assert!(reply.error_message().contains(needle), "expected `{needle}` in: {}", reply.text);
    };

    // Unsigned.
    let mut unsigned = Package::read(&good)?;
    unsigned.signature = None;
    expect_rejected(host.upload(unsigned.write()?).await?, 422, "not signed");

    // A file whose hash does not match (changed after signing).
    let mut tampered = Package::read(&good)?;
    tampered.files.insert("ui/index.html".into(), b"<script>evil()</script>".to_vec());
    expect_rejected(host.upload(tampered.write()?).await?, 422, "does not match its sha256");

    // Signed by a key this county does not trust.
    let stranger = Vendor::new("linli")?;
    expect_rejected(host.upload(stranger.package("hello", |_| {})?).await?, 403, "does not trust");

    // A trusted key, but for another vendor name.
    let other = Vendor::new("other-co")?;
    host.trust(&other).await?;
    let mut impostor = Package::read(&good)?;
    impostor.signature = None;
    let impostor = other.sign(impostor)?;
    expect_rejected(host.upload(impostor).await?, 403, "trusted for vendor `other-co`");

    // A signature that does not match the manifest.
    let mut forged = Package::read(&good)?;
    let mut manifest = forged.manifest.clone();
    manifest.description = "changed after signing".into();
    forged.manifest_text = manifest.to_toml();
    expect_rejected(host.upload(forged.write()?).await?, 422, "signature does not match");

    // A malformed manifest.
    let mut malformed = Package::read(&good)?;
    malformed.manifest_text = "id = \"hello\"\nversion = \"not-semver\"\n".into();
    let malformed = vendor.sign(malformed)?;
    expect_rejected(host.upload(malformed).await?, 422, "linli.toml");

    // A wasm file that is not a component (a core module).
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let manifest = Manifest::parse(&Package::read(&good)?.manifest_text)?;
    let core = Package::build(manifest.clone(), BTreeMap::from([("plugin.wasm".to_string(), core_module)]))?;
    expect_rejected(host.upload(vendor.sign(core)?).await?, 422, "core module, not a component");

    // A capability the host does not know.
    let teleport = vendor.package("hello", |m| {
        m.insert("capabilities".into(), toml::Value::Array(vec![toml::Value::Table(toml::toml! { name = "teleport" reason = "beam residents" })]));
        m.remove("data");
        // Its English reasons are for the capabilities it no longer requests.
        m.remove("translations");
    })?;
    expect_rejected(host.upload(teleport).await?, 422, "does not know");

    // A component that imports `data` while its manifest does not request it.
    let sneaky = vendor.package("nosy", |m| {
        m.remove("capabilities");
    })?;
    expect_rejected(host.upload(sneaky).await?, 422, "does not request the `data` capability");

    // Nothing changed: no package stored, nothing installed.
    assert_eq!(host.admin("GET", "/packages", None).await?.json(), packages_before);
    assert_eq!(host.admin("GET", "/installations", None).await?.json()["installations"], json!([]));

    // Install-time checks: grants beyond the request, unknown tenants and limits.
    host.upload(good.clone()).await?.expect_status(201)?;
    expect_rejected(host.install("hello", "0.1.0", "xingfu", &["teleport"], json!({})).await?, 422, "no such capability");
    expect_rejected(host.install("hello", "0.1.0", "xingfu", &["ledger"], json!({})).await?, 422, "does not request it");
    let nosy = vendor.package("nosy", |_| {})?;
    host.upload(nosy).await?.expect_status(201)?;
    expect_rejected(host.install("hello", "0.1.0", "atlantis", &[], json!({})).await?, 404, "does not exist");
    expect_rejected(host.install("hello", "0.1.0", "xingfu", &[], json!({ "memory_mib": 100000 })).await?, 422, "maximum");
    expect_rejected(host.install("hello", "9.9.9", "xingfu", &[], json!({})).await?, 404, "has not been uploaded");
    // Same version, other bytes.
    let rebuilt = vendor.package("hello", |m| {
        m.insert("description".into(), toml::Value::String("rebuilt".into()));
    })?;
    expect_rejected(host.upload(rebuilt).await?, 409, "new version");
    assert_eq!(host.admin("GET", "/installations", None).await?.json()["installations"], json!([]));

    // The admin API needs the token.
    let anonymous = host.client.get(format!("{}/admin/installations", host.url)).send().await?;
    assert_eq!(anonymous.status(), 401);
    host.stop().await;
    Ok(())
}
on_both_databases!(bad_packages_are_rejected_and_change_nothing, bad_packages);

async fn capabilities_follow_grants(host: TestHost) -> anyhow::Result<()> {
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    host.upload(vendor.package("nosy", |_| {})?).await?.expect_status(201)?;
    host.install("test-nosy", "0.1.0", "xingfu", &[], json!({})).await?.expect_status(201)?;
    host.install("test-nosy", "0.1.0", "heping", &["data"], json!({})).await?.expect_status(201)?;
    let denied = host.plugin("GET", "xingfu", "test-nosy/peek").await?.expect_status(200)?.json();
    assert_eq!(denied["outcome"], "error");
    assert_eq!(denied["code"], "permission-denied");
    let granted = host.plugin("GET", "heping", "test-nosy/peek").await?.expect_status(200)?.json();
    assert_eq!(granted["outcome"], "read");
    host.stop().await;
    Ok(())
}
on_both_databases!(a_capability_not_granted_answers_permission_denied, capabilities_follow_grants);

/// What the test plugin's instance remembers: how many requests it served, and who called
/// before this request.
async fn remembered(reply: Reply) -> anyhow::Result<(u64, Value)> {
    let body = reply.expect_status(200)?.json();
    Ok((body["served"].as_u64().unwrap_or_default(), body["previous_caller"].clone()))
}

async fn instance_reuse(host: TestHost) -> anyhow::Result<()> {
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    for name in ["nosy", "spin"] {
        host.upload(vendor.package(name, |_| {})?).await?.expect_status(201)?;
    }
    let refused = host.install("test-spin", "0.1.0", "xingfu", &[], json!({ "requests_per_instance": 0 })).await?;
    assert_eq!(refused.status, 422, "{}", refused.text);
    host.install("test-nosy", "0.1.0", "xingfu", &["identity"], json!({})).await?.expect_status(201)?;
    host.install("test-nosy", "0.1.0", "nanhu", &["identity"], json!({ "requests_per_instance": 3 })).await?.expect_status(201)?;
    host.install("test-spin", "0.1.0", "nanhu", &[], json!({ "requests_per_instance": 100 })).await?.expect_status(201)?;
    let account =
        |phone: &str, name: &str| json!({ "kind": "resident", "phone": phone, "display_name": name, "password": "linli-test-2026", "tenant_id": "nanhu-lake" });
    let (first, second) = (host.person(account("13800000201", "甲")).await?, host.person(account("13800000202", "乙")).await?);

    // By default every request has a fresh instance.
    for _ in 0..2 {
        assert_eq!(remembered(host.plugin("GET", "xingfu", "test-nosy/remember").await?).await?, (1, Value::Null));
    }
    // Reuse: anonymous visitors of one community share an instance for three requests.
    for served in [1, 2, 3, 1] {
        assert_eq!(remembered(host.plugin("GET", "nanhu-lake", "test-nosy/remember").await?).await?.0, served);
    }
    // Another community under the same street installation: another instance.
    assert_eq!(remembered(host.plugin("GET", "nanhu-garden", "test-nosy/remember").await?).await?.0, 1);
    // A signed-in resident gets their own instance, never one another resident used.
    let at_lake = "/t/nanhu-lake/p/test-nosy/remember";
    assert_eq!(remembered(first.get(at_lake).await?).await?, (1, Value::Null));
    let (served, first_as_seen) = remembered(first.get(at_lake).await?).await?;
    assert_eq!(served, 2);
    assert!(first_as_seen.is_string(), "{first_as_seen}");
    assert_eq!(remembered(second.get(at_lake).await?).await?, (1, Value::Null));
    assert_eq!(remembered(first.get(at_lake).await?).await?, (3, first_as_seen));

    // An instance that failed is not used again.
    host.plugin("GET", "nanhu-lake", "test-spin/ping").await?.expect_status(200)?;
    assert_eq!(host.plugin("GET", "nanhu-lake", "test-spin/panic").await?.status, 500);
    host.plugin("GET", "nanhu-lake", "test-spin/ping").await?.expect_status(200)?;
    host.stop().await;
    Ok(())
}
on_both_databases!(an_instance_serves_several_requests_of_one_caller_only, instance_reuse);

async fn misbehaving_plugins(host: TestHost) -> anyhow::Result<()> {
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    for name in ["hello", "spin", "hog"] {
        host.upload(vendor.package(name, |_| {})?).await?.expect_status(201)?;
    }
    host.install("hello", "0.1.0", "xingfu", &["data"], json!({})).await?.expect_status(201)?;
    host.install("test-spin", "0.1.0", "xingfu", &[], json!({ "deadline_ms": 500, "max_concurrency": 2 })).await?.expect_status(201)?;
    host.install("test-hog", "0.1.0", "xingfu", &[], json!({ "memory_mib": 16 })).await?.expect_status(201)?;

    // An infinite loop is stopped at its deadline while hello keeps answering.
    let spinning = {
        let (client, url) = (host.client.clone(), format!("{}/t/xingfu/p/test-spin/spin", host.url));
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let response = client.get(url).send().await?;
            anyhow::Ok((response.status().as_u16(), response.json::<Value>().await?, started.elapsed()))
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let greet = host.plugin("GET", "xingfu", "hello/greet?name=%E9%82%BB%E5%B1%85").await?.expect_status(200)?;
    assert_eq!(greet.json()["message"], "你好，邻居！");
    let (status, body, elapsed) = spinning.await??;
    assert_eq!((status, body["error"]["code"].as_str()), (504, Some("deadline-exceeded")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("error id"));
    assert!(elapsed >= std::time::Duration::from_millis(450), "stopped at, not before, its deadline: {elapsed:?}");

    // Beyond its concurrency cap: 503 with Retry-After, while the others run.
    let spin_url = format!("{}/t/xingfu/p/test-spin/spin", host.url);
    let burst = futures::future::join_all((0..4).map(|_| host.client.get(&spin_url).send())).await;
    let statuses: Vec<u16> = burst.iter().filter_map(|r| r.as_ref().ok()).map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 504).count(), 2, "{statuses:?}");
    let busy: Vec<_> = burst.iter().filter_map(|r| r.as_ref().ok()).filter(|r| r.status() == 503).collect();
    assert_eq!(busy.len(), 2, "{statuses:?}");
    assert!(busy.iter().all(|r| r.headers().contains_key("retry-after")));

    // Allocating without bound traps at the memory limit.
    let hog = host.plugin("GET", "xingfu", "test-hog/hog").await?;
    assert_eq!((hog.status, hog.error_code().as_str()), (500, "memory-limit"), "{}", hog.text);
    assert!(hog.error_message().contains("16 MiB"));

    // A panic is a trap: 500 with an error id.
    let panic = host.plugin("GET", "xingfu", "test-spin/panic").await?;
    assert_eq!((panic.status, panic.error_code().as_str()), (500, "plugin-trap"), "{}", panic.text);

    // Everyone is still serving, the misbehaving plugins included.
    host.plugin("GET", "xingfu", "test-spin/ping").await?.expect_status(200)?;
    host.plugin("GET", "xingfu", "test-hog/ping").await?.expect_status(200)?;
    assert_eq!(visit(&host, "xingfu").await?, 1);

    let metrics = host.get("/metrics").await?.text;
    for needle in [
        "kind=\"timeout\",plugin=\"test-spin\"",
        "kind=\"memory\",plugin=\"test-hog\"",
        "kind=\"trap\",plugin=\"test-spin\"",
        "kind=\"busy\",plugin=\"test-spin\"",
        "linli_plugin_live_instances 0",
    ] {
        assert!(metrics.contains(needle), "metrics lack {needle}: {metrics}");
    }
    host.stop().await;
    Ok(())
}
on_both_databases!(runaway_plugins_are_stopped_and_the_host_keeps_serving, misbehaving_plugins);

/// Every admin operation in /openapi.json exists in the router and asks for the admin
/// token, and the document covers the whole platform API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_the_live_admin_api() -> anyhow::Result<()> {
    let host = TestHost::start(Backend::Sqlite).await?.expect("SQLite is always available");
    let doc = host.get("/openapi.json").await?.expect_status(200)?.json();
    let mut operations = Vec::new();
    for (path, methods) in doc["paths"].as_object().into_iter().flatten() {
        for (method, operation) in methods.as_object().into_iter().flatten() {
            let method = method.to_uppercase();
            let url = format!("{}{}", host.url, path.replace("{id}", "hello@xingfu"));
            let reply = host.client.request(method.parse()?, url).send().await?;
            // What the document says about credentials holds for a caller without any.
            let needs_credentials = operation["security"].as_array().is_some_and(|s| !s.is_empty());
            if path.starts_with("/admin/") {
                assert_eq!(reply.status(), 401, "{method} {path} should exist and need the admin token");
                assert!(needs_credentials, "{method} {path} should declare the admin token or a staff session");
            } else if needs_credentials {
                assert_eq!(reply.status(), 401, "{method} {path} declares credentials and should refuse a caller without");
            } else {
                assert_ne!(reply.status(), 404, "{method} {path} should exist");
                // A refresh token in the body is no security scheme; such operations document their 401.
                let documents_401 = operation["responses"].get("401").is_some();
                assert!(reply.status() != 401 || documents_401, "{method} {path} declares no credentials but refused a caller without");
            }
            operations.push(format!("{method} {path}"));
        }
    }
    operations.sort();
    assert_eq!(
        operations,
        [
            "DELETE /admin/alarm-rules/{id}",
            "DELETE /admin/installations/{id}",
            "DELETE /admin/oidc/clients/{id}",
            "DELETE /api/consents/{plugin}",
            "GET /.well-known/jwks.json",
            "GET /.well-known/openid-configuration",
            "GET /admin/accounts",
            "GET /admin/alarm-rules",
            "GET /admin/alarms",
            "GET /admin/alarms/{id}",
            "GET /admin/capabilities",
            "GET /admin/devices",
            "GET /admin/devices/status",
            "GET /admin/devices/{id}",
            "GET /admin/duty-lines",
            "GET /admin/events/deliveries",
            "GET /admin/installations",
            "GET /admin/installations/{id}",
            "GET /admin/keys",
            "GET /admin/me",
            "GET /admin/oidc/clients",
            "GET /admin/packages",
            "GET /admin/tenants",
            "GET /api/app/plugins",
            "GET /api/audit",
            "GET /api/base/imports/{id}",
            "GET /api/base/organisations",
            "GET /api/base/places",
            "GET /api/base/residents",
            "GET /api/base/residents/{id}",
            "GET /api/consents",
            "GET /api/consents/{plugin}",
            "GET /api/dashboard",
            "GET /api/help",
            "GET /api/inbox",
            "GET /api/me",
            "GET /api/me/contacts",
            "GET /api/tickets",
            "GET /api/tickets/categories",
            "GET /api/tickets/{id}",
            "GET /api/tickets/{id}/photos/{n}",
            "GET /oidc/authorize",
            "GET /oidc/userinfo",
            "POST /admin/accounts",
            "POST /admin/alarm-rules",
            "POST /admin/alarms/{id}/acknowledge",
            "POST /admin/devices",
            "POST /admin/devices/{id}/commands",
            "POST /admin/devices/{id}/secret",
            "POST /admin/events/deliveries/{installation}/{seq}/retry",
            "POST /admin/installations",
            "POST /admin/installations/{id}/rollback",
            "POST /admin/installations/{id}/upgrade",
            "POST /admin/keys",
            "POST /admin/oidc/clients",
            "POST /admin/packages",
            "POST /admin/signing-keys/rotate",
            "POST /admin/tenants",
            "POST /admin/ticket-categories",
            "POST /api/auth/login",
            "POST /api/auth/logout",
            "POST /api/auth/refresh",
            "POST /api/auth/sms/login",
            "POST /api/auth/sms/send",
            "POST /api/base/imports",
            "POST /api/consents/{plugin}",
            "POST /api/devices/{id}/telemetry",
            "POST /api/help",
            "POST /api/inbox/{id}/read",
            "POST /api/tickets",
            "POST /api/tickets/{id}/photos",
            "POST /api/tickets/{id}/{action}",
            "POST /oidc/authorize",
            "POST /oidc/token",
            "PUT /admin/duty-lines/{tenant}",
            "PUT /admin/installations/{id}/grants",
            "PUT /api/me/contacts",
        ]
    );
    assert!(doc["components"]["securitySchemes"]["admin_token"].is_object());
    host.stop().await;
    Ok(())
}

/// A malformed query, path parameter or body answers the API's JSON error (400, a code
/// naming which part is wrong, a message saying how), never axum's plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_answer_the_api_error() -> anyhow::Result<()> {
    let host = TestHost::start(Backend::Sqlite).await?.expect("SQLite is always available");
    let cases = [
        ("GET", "/alarms?limit=many", None, "query-invalid"),
        ("POST", "/events/deliveries/hello@xingfu/not-a-number/retry", None, "path-invalid"),
        ("POST", "/keys", Some(json!({ "county": 7 })), "body-invalid"),
    ];
    for (method, path, body, code) in cases {
        let reply = host.admin(method, path, body).await?.expect_status(400)?;
        let error = &reply.json()["error"];
        assert_eq!(error["code"], code, "{method} /admin{path}: {error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{method} /admin{path}: {error}");
    }
    Ok(())
}
