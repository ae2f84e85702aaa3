//! The console's API for staff: each operator acts within their subtree (a street admin
//! installs in their street only, a community worker only looks, residents are refused,
//! platform-wide settings need the admin token); and the dashboards: figures rolled up
//! county → street → community with the children's split, plugin figures and usage.
//! SQLite and PostgreSQL.
use anyhow::{Context, Result};
use linli_tests::*;
use serde_json::{json, Value};

const PASSWORD: &str = "console-test-2026";

fn staff(phone: &str, name: &str, role: &str, tenant: &str) -> Value {
    json!({ "kind": "staff", "phone": phone, "display_name": name, "password": PASSWORD, "roles": [{ "role": role, "tenant": tenant }] })
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list[key].as_array().cloned().unwrap_or_default().iter().filter_map(|i| i["id"].as_str().map(str::to_string)).collect()
}

async fn operators_act_within_their_area(host: TestHost) -> Result<()> {
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    let package = host.upload(vendor.package("hello", |_| {})?).await?.expect_status(201)?.json();
    let version = package["version"].as_str().context("version")?.to_string();
    host.install("hello", &version, "nanhu", &["data", "identity"], json!({})).await?.expect_status(201)?;
    let county = host.person(staff("13900000031", "周县管理员", "county-admin", DEMO_COUNTY)).await?;
    let street = host.person(staff("13900000032", "吴镇街管理员", "street-admin", "chengguan")).await?;
    let worker = host.person(staff("13900000033", "赵社工", "community-worker", "xingfu")).await?;
    let resident =
        host.person(json!({ "kind": "resident", "phone": "13900000034", "display_name": "王阿姨", "password": PASSWORD, "tenant_id": "xingfu" })).await?;

    let me = street.get("/admin/me").await?.expect_status(200)?.json();
    assert_eq!(me["tops"], json!(["chengguan"]), "{me}");
    assert_eq!(me["platform"], false);
    let tenants = street.get("/admin/tenants").await?.expect_status(200)?.json();
    assert_eq!(tenants["tenants"].as_array().map(|t| t.iter().map(|n| n["id"].clone()).collect::<Vec<_>>()), Some(vec![json!("chengguan")]));
    assert_eq!(resident.get("/admin/me").await?.status, 403, "residents have no console");
    assert_eq!(host.get("/admin/me").await?.status, 401);

    // The street admin sees the county's catalogue, installs in the street, not elsewhere.
    let catalogue = street.get("/admin/packages").await?.expect_status(200)?.json();
    assert_eq!(catalogue["packages"].as_array().map(Vec::len), Some(1));
    let install = |tenant: &str| json!({ "plugin_id": "hello", "version": version, "tenant_id": tenant, "grants": ["data"] });
    assert_eq!(street.post("/admin/installations", install("nanhu-lake")).await?.status, 403, "another street");
    let installed = street.post("/admin/installations", install("chengguan")).await?.expect_status(201)?.json();
    assert_eq!(installed["grants"], json!(["data"]), "a subset of what hello asks for");
    let listed = street.get("/admin/installations").await?.expect_status(200)?.json();
    assert_eq!(ids(&listed, "installations"), vec!["hello@chengguan".to_string()], "nanhu's installation is not the street's business");
    assert_eq!(street.call("DELETE", "/admin/installations/hello@nanhu", None).await?.status, 403);
    assert_eq!(host.operator().get("/admin/installations/hello@nanhu").await?.status, 200, "untouched");

    // Only county admins upload packages and trust keys; the tree and signing keys are
    // platform settings.
    let again = vendor.package("hello", set_version("0.2.0"))?;
    let refused = reqwest::Client::new()
        .post(format!("{}/admin/packages?county={DEMO_COUNTY}", host.url))
        .bearer_auth(&street.token)
        .header("content-type", "application/octet-stream")
        .body(again.clone())
        .send()
        .await?;
    assert_eq!(refused.status().as_u16(), 403);
    let uploaded = reqwest::Client::new()
        .post(format!("{}/admin/packages?county={DEMO_COUNTY}", host.url))
        .bearer_auth(&county.token)
        .header("content-type", "application/octet-stream")
        .body(again)
        .send()
        .await?;
    assert_eq!(uploaded.status().as_u16(), 201);
    let key = json!({ "county": DEMO_COUNTY, "vendor": "other", "public_key": Vendor::new("other")?.public_key() });
    assert_eq!(street.post("/admin/keys", key.clone()).await?.status, 403);
    assert_eq!(county.post("/admin/keys", key).await?.status, 201);
    assert_eq!(county.post("/admin/tenants", json!({ "tenants": [] })).await?.status, 403);
    assert_eq!(county.post("/admin/signing-keys/rotate", json!({})).await?.status, 403);
    assert_eq!(county.get("/admin/oidc/clients").await?.status, 403);

    // Upgrade and roll back within the street; the community worker only looks.
    street.post("/admin/installations/hello@chengguan/upgrade", json!({ "version": "0.2.0" })).await?.expect_status(200)?;
    assert_eq!(worker.post("/admin/installations/hello@chengguan/rollback", json!({})).await?.status, 403);
    let back = street.post("/admin/installations/hello@chengguan/rollback", json!({})).await?.expect_status(200)?.json();
    assert_eq!(back["version"], version);
    // Grant identity too, then revoke data: the plugin's store is refused from then on.
    let more =
        street.call("PUT", "/admin/installations/hello@chengguan/grants", Some(json!({ "grants": ["data", "identity"] }))).await?.expect_status(200)?.json();
    assert_eq!(more["grants"], json!(["data", "identity"]));
    host.plugin("GET", "xingfu", "hello/visits").await?.expect_status(200)?;
    let refused = street.call("PUT", "/admin/installations/hello@chengguan/grants", Some(json!({ "grants": ["ledger"] }))).await?;
    assert_eq!(refused.status, 422, "hello does not ask for the ledger: {}", refused.text);
    assert_eq!(worker.call("PUT", "/admin/installations/hello@chengguan/grants", Some(json!({ "grants": [] }))).await?.status, 403);
    street.call("PUT", "/admin/installations/hello@chengguan/grants", Some(json!({ "grants": ["identity"] }))).await?.expect_status(200)?;
    assert_eq!(host.plugin("GET", "xingfu", "hello/visits").await?.status, 403, "the data store is no longer granted");
    let detail = street.get("/admin/installations/hello@chengguan").await?.expect_status(200)?.json();
    assert_eq!(detail["installation"]["version"], version.as_str(), "the version is kept");
    let actors: Vec<&str> = detail["history"].as_array().map(|h| h.iter().filter_map(|e| e["actor"].as_str()).collect()).unwrap_or_default();
    assert_eq!(actors.len(), 5, "install, upgrade, rollback, two grant changes: {detail}");
    assert!(actors.iter().all(|a| a.starts_with("吴镇街管理员 (staff:")), "who did it is recorded: {actors:?}");
    assert_eq!(worker.get("/admin/installations").await?.expect_status(200)?.json()["installations"].as_array().map(Vec::len), Some(1));

    // Staff accounts: created within the area, listed with masked phones.
    assert_eq!(street.post("/admin/accounts", staff("13900000035", "钱网格员", "grid-worker", "nanhu-lake-g1")).await?.status, 403);
    street.post("/admin/accounts", staff("13900000036", "孙网格员", "grid-worker", "xingfu-g1")).await?.expect_status(201)?;
    let people = street.get("/admin/accounts").await?.expect_status(200)?.json();
    let names: Vec<&str> = people["staff"].as_array().map(|s| s.iter().filter_map(|p| p["display_name"].as_str()).collect()).unwrap_or_default();
    assert!(names.contains(&"孙网格员") && names.contains(&"赵社工") && names.contains(&"吴镇街管理员"), "{names:?}");
    assert!(!names.contains(&"周县管理员"), "the county admin's role is above the street: {names:?}");
    assert!(people.to_string().contains("139****0036"), "phones are masked: {people}");

    // Devices and alarms: the street sees its own; rules are platform settings.
    assert_eq!(street.get("/admin/devices?tenant=nanhu").await?.status, 403);
    street.get("/admin/devices").await?.expect_status(200)?;
    street.get("/admin/alarms").await?.expect_status(200)?;
    assert_eq!(street.post("/admin/alarm-rules", json!({})).await?.status, 403);
    host.stop().await;
    Ok(())
}
on_both_databases!(console_scoping, operators_act_within_their_area);

async fn dashboards_roll_up_the_tree(host: TestHost) -> Result<()> {
    // Residents: two elders (one living alone) and a young man in 幸福社区, one in 湖畔社区.
    let csv = format!(
        "姓名,身份证号,手机号,网格,标签\n王秀英,{},13800000001,xingfu-g1,独居老人\n李大爷,{},13800000002,xingfu-g2,\n张小明,{},13800000003,xingfu-g1,\n",
        id_number("33078219500312002"),
        id_number("33078219480101001"),
        id_number("33078219990101003")
    );
    assert_eq!(host.import_csv("residents", "xingfu", &csv).await?["status"], "done");
    let lake = format!("姓名,身份证号,手机号,网格\n赵阿婆,{},13800000004,nanhu-lake-g1\n", id_number("33078219400101004"));
    assert_eq!(host.import_csv("residents", "nanhu-lake", &lake).await?["status"], "done");
    let county = host.person(staff("13900000041", "周县管理员", "county-admin", DEMO_COUNTY)).await?;
    let street = host.person(staff("13900000042", "吴镇街管理员", "street-admin", "chengguan")).await?;
    let resident =
        host.person(json!({ "kind": "resident", "phone": "13900000043", "display_name": "王阿姨", "password": PASSWORD, "tenant_id": "xingfu" })).await?;
    // A resident's report: an open ticket in 幸福社区.
    resident
        .post("/api/tickets", json!({ "category": "repair", "title": "楼道灯坏了", "description": "3栋", "location": "3栋2单元" }))
        .await?
        .expect_status(201)?;
    // The time bank gives per-community figures through its [dashboard] route.
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    host.publish(&vendor, "time-bank", &["data", "identity", "identity:real-name", "ledger"], &[DEMO_COUNTY]).await?;
    host.publish(&vendor, "hello", &["data", "identity"], &["xingfu"]).await?;
    for _ in 0..3 {
        host.plugin("GET", "xingfu", "hello/greet?name=x").await?.expect_status(200)?;
    }

    // The county's dashboard: totals and one entry per street.
    let board = county.get("/api/dashboard").await?.expect_status(200)?.json();
    assert_eq!(board["node"]["id"], DEMO_COUNTY, "opens at the top of the county admin's area");
    assert_eq!(board["totals"]["residents"], 4.0);
    assert_eq!(board["totals"]["elders"], 3.0);
    assert_eq!(board["totals"]["elders_alone"], 1.0);
    assert_eq!(board["totals"]["tickets_open"], 1.0);
    let child = |board: &Value, id: &str| {
        board["children"].as_array().and_then(|c| c.iter().find(|c| c["node"]["id"] == id)).map(|c| c["figures"].clone()).unwrap_or_default()
    };
    assert_eq!(child(&board, "chengguan")["residents"], 3.0);
    assert_eq!(child(&board, "nanhu")["residents"], 1.0);
    assert!(board["plugins"].as_array().is_some_and(|p| p.iter().any(|p| p["plugin_id"] == "time-bank" && p.get("error").is_none())), "{}", board["plugins"]);
    assert!(board["labels"]["time-bank.members"].as_str().is_some_and(|l| l.contains("会员")));

    // Drill down: street → community → grid.
    let chengguan = county.get("/api/dashboard?tenant=chengguan").await?.expect_status(200)?.json();
    assert_eq!(chengguan["path"].as_array().map(|p| p.iter().map(|n| n["id"].clone()).collect::<Vec<_>>()), Some(vec![json!(DEMO_COUNTY), json!("chengguan")]));
    assert_eq!(child(&chengguan, "xingfu")["elders"], 2.0);
    let xingfu = county.get("/api/dashboard?tenant=xingfu").await?.expect_status(200)?.json();
    assert_eq!(child(&xingfu, "xingfu-g1")["residents"], 2.0);
    assert_eq!(child(&xingfu, "xingfu-g2")["residents"], 1.0);

    // The street admin's dashboard opens at the street and cannot see the county.
    let own = street.get("/api/dashboard").await?.expect_status(200)?.json();
    assert_eq!(own["node"]["id"], "chengguan");
    assert_eq!(own["path"].as_array().map(Vec::len), Some(1), "breadcrumbs start at the street");
    assert_eq!(street.get("/api/dashboard?tenant=nanhu").await?.status, 403);
    assert_eq!(street.get("/api/dashboard?tenant=nowhere").await?.status, 404);
    assert_eq!(resident.get("/api/dashboard").await?.status, 403);

    // Plugin usage is counted in memory and saved every few seconds.
    let mut counted = 0.0;
    for _ in 0..40 {
        let now = county.get("/api/dashboard?tenant=xingfu").await?.expect_status(200)?.json();
        counted = now["totals"]["usage.hello"].as_f64().unwrap_or(0.0);
        if counted >= 3.0 {
            let today = now["usage"].as_array().and_then(|days| days.last()).cloned().unwrap_or_default();
            assert!(today["requests"]["hello"].as_i64().is_some_and(|n| n >= 3), "{today}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(counted >= 3.0, "hello's requests reach the dashboard: {counted}");
    host.stop().await;
    Ok(())
}
on_both_databases!(dashboards, dashboards_roll_up_the_tree);
