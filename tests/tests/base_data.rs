//! Base data, consent and audit: CSV imports that add all or nothing, staff who see only
//! their subtree with sensitive fields masked, plugins that get only granted scopes and
//! consented fields, and an audit log of every sensitive read. SQLite and PostgreSQL.
use linli_tests::*;
use serde_json::{json, Value};

const PASSWORD: &str = "linli-test-2026";

fn staff(phone: &str, name: &str, role: &str, tenant: &str) -> Value {
    json!({ "kind": "staff", "phone": phone, "display_name": name, "password": PASSWORD, "roles": [{ "role": role, "tenant": tenant }] })
}

fn resident(phone: &str, name: &str, community: &str) -> Value {
    json!({ "kind": "resident", "phone": phone, "display_name": name, "password": PASSWORD, "tenant_id": community })
}

/// Residents: two in xingfu-g1 (one a lone elder), one in xingfu-g2, one in heping-g1.
fn residents_csv() -> String {
    let rows = [
        ("王秀英", id_number("33078219500312002"), "13800000001", "xingfu-g1", "3", "2", "501", "独居老人"),
        ("李建国", id_number("33078219800101003"), "13800000011", "xingfu-g1", "3", "2", "502", ""),
        ("张淑珍", id_number("33078219450707004"), "13800000012", "xingfu-g2", "5", "1", "101", "独居老人;低保"),
        ("刘德明", id_number("33078219520202005"), "13800000013", "heping-g1", "1", "1", "201", "独居老人"),
    ];
    let mut csv = String::from("姓名,身份证号,手机号,网格,楼栋,单元,房号,标签\n");
    for (name, id, phone, grid, b, u, r, tags) in rows {
        csv.push_str(&format!("{name},{id},{phone},{grid},{b},{u},{r},{tags}\n"));
    }
    csv
}

async fn count(host: &TestHost) -> anyhow::Result<i64> {
    Ok(host.operator().get("/api/base/residents?limit=1").await?.expect_status(200)?.json()["total_in_scope"].as_i64().unwrap_or(-1))
}

async fn imports_are_all_or_nothing_and_report_every_problem(host: TestHost) -> anyhow::Result<()> {
    let good = id_number("33078219600101001");
    let bad_check = format!("{}{}", &good[..17], if good.ends_with('0') { '1' } else { '0' });
    let csv = format!(
        "姓名,身份证号,手机号,网格,楼栋,单元,房号\n\
         甲,{good},13800000021,xingfu-g1,1,1,101\n\
         乙,{bad_check},13800000022,xingfu-g1,1,1,102\n\
         丙,{},1380000,xingfu-g1,1,1,103\n\
         丁,{},13800000024,nanhu-lake-g1,1,1,104\n\
         戊,{good},13800000025,xingfu-g1,1,,105\n",
        id_number("33078219600101011"),
        id_number("33078219600101021"),
    );
    let report = host.import_csv("residents", "xingfu", &csv).await?;
    assert_eq!(report["status"], "rejected", "{report}");
    let problems: Vec<(u64, String, String)> = report["problems"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| (p["row"].as_u64().unwrap_or(0), p["column"].as_str().unwrap_or("").to_string(), p["code"].as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    // Each with the code the console words it by in the reader's language.
    for expected in [
        (3, "id_number", "id-number-invalid"),
        (4, "phone", "phone-invalid"),
        (5, "grid", "grid-outside"),
        (6, "id_number", "id-number-repeated"),
        (6, "building", "house-incomplete"),
    ] {
        assert!(problems.contains(&(expected.0, expected.1.to_string(), expected.2.to_string())), "{expected:?} missing from {problems:?}");
    }
    assert_eq!(count(&host).await?, 0, "a rejected file writes nothing, not even its good rows");

    let unknown_column = host.import_csv("residents", "xingfu", "姓名,身份证号,手机号,网格,血型\n甲,x,1,xingfu-g1,A\n").await?;
    assert_eq!(unknown_column["status"], "rejected");
    assert!(unknown_column["problems"].to_string().contains("血型"));

    // A large file goes through, with its progress reported.
    let mut big = String::from("real_name,id_number,phone,grid,building,unit,room,tags\n");
    for i in 0..2000u32 {
        let grid = if i % 2 == 0 { "xingfu-g1" } else { "xingfu-g2" };
        big.push_str(&format!(
            "居民{i},{},139{i:08},{grid},{},{},{},\n",
            id_number(&format!("3307821970{:02}{:02}{:03}", i % 12 + 1, (i / 12) % 28 + 1, i / 336)),
            i / 100 + 1,
            i % 3 + 1,
            100 + i % 50
        ));
    }
    let done = host.import_csv("residents", "xingfu", &big).await?;
    assert_eq!((done["status"].as_str(), done["total_rows"].as_u64(), done["processed"].as_u64()), (Some("done"), Some(2000), Some(2000)), "{done}");
    assert_eq!(count(&host).await?, 2000);

    // Importing the same people again is refused as a whole.
    let again = host.import_csv("residents", "xingfu", &big).await?;
    assert_eq!(again["status"], "rejected");
    assert!(again["problems"][0]["problem"].as_str().unwrap_or("").contains("already registered"));
    assert_eq!(count(&host).await?, 2000);

    // A street admin may import only inside their street.
    let street = host.person(staff("13900000001", "城关管理员", "street-admin", "chengguan")).await?;
    let outside = street.call("POST", "/api/base/imports?kind=residents&tenant=nanhu", None).await?;
    assert_eq!(outside.status, 403);
    host.stop().await;
    Ok(())
}
on_both_databases!(imports, imports_are_all_or_nothing_and_report_every_problem);

async fn staff_see_their_subtree_with_sensitive_fields_masked(host: TestHost) -> anyhow::Result<()> {
    assert_eq!(host.import_csv("residents", "demo-county", &residents_csv()).await?["status"], "done");
    let grid_worker = host.person(staff("13900000002", "李网格员", "grid-worker", "xingfu-g1")).await?;
    let street_admin = host.person(staff("13900000003", "城关管理员", "street-admin", "chengguan")).await?;
    let county_admin = host.person(staff("13900000004", "县管理员", "county-admin", "demo-county")).await?;
    let someone = host.person(resident("13900000005", "居民", "xingfu")).await?;

    let mine = grid_worker.get("/api/base/residents").await?.expect_status(200)?.json();
    let items = mine["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2, "only xingfu-g1: {mine}");
    assert!(items.iter().all(|r| r["tenant_id"] == "xingfu-g1"));
    let wang = items.iter().find(|r| r["real_name"] == "王秀英").cloned().unwrap_or_default();
    assert_eq!(wang["phone"], "13800000001", "grid workers call residents");
    assert!(wang["id_number"].as_str().unwrap_or("").contains("********"), "ID numbers are masked in lists");
    assert_eq!(wang["address"], "3栋2单元501");

    // Reading outside the grid: refused, whether by listing or by id.
    let other_grid = grid_worker.get("/api/base/residents?tenant=xingfu-g2").await?;
    assert_eq!((other_grid.status, other_grid.error_code().as_str()), (403, "outside-area"));
    assert_eq!(other_grid.json()["error"]["params"]["node"], "xingfu-g2", "the refusal names the node for the screen's sentence");
    let everything = street_admin.get("/api/base/residents").await?.expect_status(200)?.json();
    let zhang = everything["items"].as_array().and_then(|a| a.iter().find(|r| r["real_name"] == "张淑珍").cloned()).unwrap_or_default();
    let by_id = grid_worker.get(&format!("/api/base/residents/{}", zhang["id"].as_str().unwrap_or(""))).await?;
    assert_eq!((by_id.status, by_id.error_code().as_str()), (403, "outside-area"));
    assert_eq!(by_id.json()["error"]["params"]["node"], zhang["tenant_id"], "{}", by_id.text);

    // The street admin sees the street, masked; the other street is outside.
    assert_eq!(everything["total_in_scope"], 4, "城关镇 has 幸福社区 and 和平社区");
    assert_eq!(zhang["phone"], "138****0012");
    assert_eq!(street_admin.get("/api/base/residents?tenant=nanhu").await?.status, 403);
    let lone = street_admin.get(&format!("/api/base/residents?tags={}&min_age=60", "独居老人")).await?.expect_status(200)?.json();
    assert_eq!(lone["items"].as_array().map(Vec::len), Some(3));
    let lone_and_poor = street_admin.get("/api/base/residents?tags=%E7%8B%AC%E5%B1%85%E8%80%81%E4%BA%BA,%E4%BD%8E%E4%BF%9D").await?.expect_status(200)?.json();
    assert_eq!(lone_and_poor["items"].as_array().map(Vec::len), Some(1));

    // The grid worker's detail view shows everything, and is audited.
    let full = grid_worker.get(&format!("/api/base/residents/{}", wang["id"].as_str().unwrap_or(""))).await?.expect_status(200)?.json();
    assert_eq!(full["id_number"], id_number("33078219500312002"));
    let audit = county_admin.get("/api/audit?field=id-number").await?.expect_status(200)?.json();
    assert!(
        audit
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["subject"] == format!("resident:{}", wang["id"].as_str().unwrap_or("")) && e["outcome"] == "allowed")),
        "{audit}"
    );

    // Residents and street admins do not read base data or the audit log.
    assert_eq!(someone.get("/api/base/residents").await?.status, 403);
    assert_eq!(street_admin.get("/api/audit").await?.status, 403);
    assert_eq!(host.get("/api/base/residents").await?.status, 401);
    host.stop().await;
    Ok(())
}
on_both_databases!(staff_scope, staff_see_their_subtree_with_sensitive_fields_masked);

async fn plugins_get_granted_scopes_and_consented_fields_only(host: TestHost) -> anyhow::Result<()> {
    assert_eq!(host.import_csv("residents", "demo-county", &residents_csv()).await?["status"], "done");
    let vendor = Vendor::new("linli-tests")?;
    host.trust(&vendor).await?;
    // Scopes are granted one by one, never without their capability, never unrequested.
    let package = vendor.package("nosy", |_| {})?;
    host.upload(package).await?.expect_status(201)?;
    let without_parent = host.install("test-nosy", "0.1.0", "xingfu", &["base:phone"], json!({})).await?;
    assert_eq!(without_parent.status, 422, "{}", without_parent.text);
    let unrequested = host.install("test-nosy", "0.1.0", "xingfu", &["identity", "identity:address"], json!({})).await?;
    assert_eq!(unrequested.status, 422);
    // xingfu: base and identity, no sensitive scope. heping: phone scopes granted.
    host.install("test-nosy", "0.1.0", "xingfu", &["base", "identity"], json!({})).await?.expect_status(201)?;
    host.install("test-nosy", "0.1.0", "heping", &["base", "base:phone", "identity", "identity:phone"], json!({})).await?.expect_status(201)?;
    let county_admin = host.person(staff("13900000004", "县管理员", "county-admin", "demo-county")).await?;
    let xingfu_resident = host.person(resident("13800000001", "王阿姨", "xingfu")).await?;
    let heping_resident = host.person(resident("13800000013", "刘大爷", "heping")).await?;

    // Base queries stay inside the installation's community.
    let elders = host.plugin("GET", "xingfu", "test-nosy/elders").await?.expect_status(200)?.json();
    assert_eq!(elders["count"], 2, "{elders}");
    assert_eq!(elders["tenants"], json!(["xingfu-g1", "xingfu-g2"]));
    assert!(elders["min_age"].as_u64().unwrap_or(0) >= 60);
    let elsewhere = host.plugin("GET", "xingfu", "test-nosy/elders?tenant=nanhu-lake").await?.json();
    assert_eq!(elsewhere["code"], "permission-denied");

    let all = county_admin.get("/api/base/residents").await?.expect_status(200)?.json();
    let id_of = |name: &str| {
        all["items"].as_array().and_then(|a| a.iter().find(|r| r["real_name"] == name)).map(|r| r["id"].as_str().unwrap_or("").to_string()).unwrap_or_default()
    };

    // Houses too: the community's, page by page, and a resident's own; nothing outside.
    let houses = host.plugin("GET", "xingfu", "test-nosy/houses?per_page=2").await?.expect_status(200)?.json();
    let mut addresses: Vec<&str> = houses["addresses"].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default();
    addresses.sort();
    assert_eq!(addresses, ["3栋2单元501", "3栋2单元502", "5栋1单元101"], "{houses}");
    assert_eq!(houses["pages"], 2, "{houses}");
    let one_grid = host.plugin("GET", "xingfu", "test-nosy/houses?tenant=xingfu-g2").await?.json();
    assert_eq!(one_grid["addresses"], json!(["5栋1单元101"]), "{one_grid}");
    let elsewhere = host.plugin("GET", "xingfu", "test-nosy/houses?tenant=heping-g1").await?.json();
    assert_eq!(elsewhere["code"], "permission-denied", "{elsewhere}");
    let hers = host.plugin("GET", "xingfu", &format!("test-nosy/house-of/{}", id_of("王秀英"))).await?.json();
    assert_eq!(hers, json!({ "outcome": "read", "address": "3栋2单元501" }));
    let foreign = host.plugin("GET", "xingfu", &format!("test-nosy/house-of/{}", id_of("刘德明"))).await?.json();
    assert_eq!(foreign, json!({ "outcome": "read", "address": null }), "a heping resident's house is not xingfu's to read");

    // A phone number without the scope: refused, and the refusal is in the audit log.
    let denied = host.plugin("GET", "xingfu", &format!("test-nosy/phone/{}", id_of("王秀英"))).await?.json();
    assert_eq!(denied["code"], "permission-denied", "{denied}");
    let log = county_admin.get("/api/audit?actor=plugin:test-nosy&outcome=denied").await?.expect_status(200)?.json();
    assert!(
        log.as_array().is_some_and(|a| a.iter().any(|e| e["fields"] == json!(["phone"]) && e["subject"] == format!("resident:{}", id_of("王秀英")))),
        "{log}"
    );
    // With the scope, inside the area: read and audited; outside the area: not found.
    let read = host.plugin("GET", "heping", &format!("test-nosy/phone/{}", id_of("刘德明"))).await?.json();
    assert_eq!(read["phone"], "13800000013");
    let foreign = host.plugin("GET", "heping", &format!("test-nosy/phone/{}", id_of("王秀英"))).await?.json();
    assert_eq!(foreign["code"], "not-found");
    let allowed = county_admin.get("/api/audit?actor=plugin:test-nosy&outcome=allowed&field=phone").await?.expect_status(200)?.json();
    assert_eq!(allowed.as_array().map(Vec::len), Some(1));

    // Profile fields: not granted → denied; granted → consent first; revoked → again.
    let not_granted = xingfu_resident.get("/t/xingfu/p/test-nosy/my-phone").await?.json();
    assert_eq!(not_granted["code"], "permission-denied");
    let ask = heping_resident.get("/t/heping/p/test-nosy/my-phone").await?.json();
    assert_eq!(ask["code"], "consent-required", "{ask}");
    assert!(ask["message"].as_str().unwrap_or("").contains("/app/#/consent/test-nosy"));
    let screen = heping_resident.get("/api/consents/test-nosy").await?.expect_status(200)?.json();
    assert_eq!(screen["fields"], json!([{ "name": "phone", "label_zh": "手机号", "label_en": "Phone number", "consented": false }]));
    assert_eq!(screen["reason"], "tells who is asking");
    let too_much = heping_resident.post("/api/consents/test-nosy", json!({ "fields": ["phone", "id-number"] })).await?;
    assert_eq!(too_much.status, 422, "only granted fields can be consented to");
    assert_eq!(heping_resident.get("/api/consents").await?.json(), json!([]), "and nothing was recorded");
    heping_resident.post("/api/consents/test-nosy", json!({ "fields": ["phone"] })).await?.expect_status(204)?;
    let given = heping_resident.get("/t/heping/p/test-nosy/my-phone").await?.json();
    assert_eq!(given["phone"], "13800000013");
    assert_eq!(heping_resident.get("/api/consents").await?.json()[0]["scope"], "phone");
    let revoked = heping_resident.call("DELETE", "/api/consents/test-nosy", None).await?.expect_status(200)?.json();
    assert_eq!(revoked["revoked"], 1);
    assert_eq!(heping_resident.get("/t/heping/p/test-nosy/my-phone").await?.json()["code"], "consent-required");
    let outcomes: Vec<String> = county_admin
        .get("/api/audit?actor=plugin:test-nosy&field=phone")
        .await?
        .json()
        .as_array()
        .map(|a| {
            a.iter().filter(|e| e["subject"].as_str().unwrap_or("").starts_with("account:")).map(|e| e["outcome"].as_str().unwrap_or("").to_string()).collect()
        })
        .unwrap_or_default();
    assert_eq!(outcomes, ["consent-required", "consent-withdrawn", "allowed", "consent-given", "consent-required", "denied"], "newest first");
    host.stop().await;
    Ok(())
}
on_both_databases!(plugin_scopes, plugins_get_granted_scopes_and_consented_fields_only);

/// Every id (in the order given) of the residents `path` lists, page after page.
async fn listed(person: &Person, path: &str) -> anyhow::Result<Vec<(String, String)>> {
    let (mut out, mut cursor) = (Vec::new(), String::new());
    loop {
        let page = person.get(&format!("{path}&limit=40&cursor={cursor}")).await?.expect_status(200)?.json();
        for resident in page["items"].as_array().into_iter().flatten() {
            out.push((resident["id"].as_str().unwrap_or_default().to_string(), resident["tenant_id"].as_str().unwrap_or_default().to_string()));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return Ok(out),
        }
    }
}

/// A page is read one of several ways — in id order over a county, through the tenant index
/// for a grid, through the tag index — and each gives the residents the same filter names, in
/// id order, page after page.
async fn every_way_of_reading_a_list_gives_the_same_residents(host: TestHost) -> anyhow::Result<()> {
    host.import_demo_residents(80, 11).await?;
    let operator = host.operator();
    let everyone = listed(&operator, "/api/base/residents?tenant=demo-county").await?;
    let mut nodes: Vec<String> = everyone.iter().map(|(_, node)| node.clone()).collect();
    nodes.sort();
    nodes.dedup();
    assert!(everyone.len() > 300 && nodes.len() > 3, "{} residents at {nodes:?}", everyone.len());
    // 独居老人 and 低保 percent-encoded.
    let (alone, poor) = ("%E7%8B%AC%E5%B1%85%E8%80%81%E4%BA%BA", "%E4%BD%8E%E4%BF%9D");
    for filter in
        ["".to_string(), format!("&tags={alone}"), format!("&tags={poor},{alone}"), "&min_age=60&max_age=80".to_string(), format!("&tags={poor}&max_age=50")]
    {
        let county = listed(&operator, &format!("/api/base/residents?tenant=demo-county{filter}")).await?;
        let mut by_node = Vec::new();
        for node in &nodes {
            by_node.extend(listed(&operator, &format!("/api/base/residents?tenant={node}{filter}")).await?);
        }
        by_node.sort();
        assert!(county.windows(2).all(|pair| pair[0].0 < pair[1].0), "in id order: {filter}");
        assert_eq!(county, by_node, "the county's list is its grids' lists: {filter}");
        // Two tags together are rare in the demo data (3 % of 3 %): found or not, alike.
        assert!(!county.is_empty() || filter.contains(','), "the demo data has residents for {filter}");
    }
    host.stop().await;
    Ok(())
}
on_both_databases!(read_paths, every_way_of_reading_a_list_gives_the_same_residents);
