//! Property services (plugins/property, the TypeScript reference plugin, built by
//! scripts/build-polyglot) end to end, on both databases and through the real Mosquitto: a
//! resident reports a leak with a photo, which becomes her own work order; the community's
//! worker dispatches it to the community's property company (an organisation of the base
//! data), whose staff resolve it, and she rates it, in the plugin and in the app's list. The
//! office bills every house, a page at a time; she consents, pays through the demo gateway,
//! gets a receipt and her house's ledger balance; the other houses stay in arrears. She issues a visitor pass
//! and the gate controller (the test's device side) is told the plate, and told again when
//! she revokes it. The figures roll up community → street → county.
use anyhow::{Context, Result};
use linli_tests::lab::*;
use linli_tests::*;
use serde_json::{json, Value};

const PASSWORD: &str = "property-test-2026";

async fn call(person: &Person, method: &str, path: &str, body: Option<Value>) -> Result<Reply> {
    person.call(method, &format!("/t/xingfu/p/property{path}"), body).await
}

async fn property_services(backend: Backend) -> Result<()> {
    let Some(mut lab) = Lab::start(backend, |_| {}).await? else { return Ok(()) };
    let refused_plates = std::sync::Arc::new(std::sync::Mutex::new(vec!["浙B88888".to_string()]));
    let gate_log = answer_commands_refusing(&mut lab, refused_plates.clone());
    let host = &lab.host;
    lab.register("gate-east", "gate-controller", "grid:xingfu-g1").await?;
    let (she, neighbour) = ("13900000041", "13900000042");
    let csv = format!(
        "姓名,身份证号,手机号,网格,楼栋,单元,房号,户,标签\n\
         王秀英,330782195603120020,{she},xingfu-g1,3,2,501,3-2-501,\n\
         李建军,330782197805060037,{neighbour},xingfu-g1,3,2,502,3-2-502,\n"
    );
    assert_eq!(host.import_csv("residents", "demo-county", &csv).await?["status"], "done");
    // Many more houses than one request bills (the office's page pages through them).
    host.import_demo_residents(150, 7).await?;
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    let dir = polyglot_dir("property");
    host.upload(vendor.package_from(&dir, &dir.join("dist/plugin.wasm"), |_| {})?).await?.expect_status(201)?;
    let grants = ["data", "identity", "identity:resident-record", "base", "ledger", "tickets", "devices", "devices:command", "notify"];
    host.install("property", "0.1.0", "demo-county", &grants, json!({})).await?.expect_status(201)?;
    let resident = |phone: &str, name: &str| json!({ "kind": "resident", "phone": phone, "display_name": name, "password": PASSWORD, "tenant_id": "xingfu" });
    let wang = host.person(resident(she, "王阿姨")).await?;
    let li = host.person(resident(neighbour, "李师傅")).await?;
    let office = host
        .person(json!({ "kind": "staff", "phone": "13900000043", "display_name": "物业小张", "password": PASSWORD,
            "roles": [{ "role": "community-worker", "tenant": "xingfu" }] }))
        .await?;

    // A leak with a photo: her own work order, resolved by the office, rated by her.
    let repair = call(&wang, "POST", "/repairs", Some(json!({ "kind": "water", "description": "厨房水管接口漏水", "location": "3栋2单元501" })))
        .await?
        .expect_status(201)?
        .json();
    let id = repair["id"].as_str().context("repair id")?.to_string();
    let photo = wang.post_bytes(&format!("/t/xingfu/p/property/repairs/{id}/photos"), "image/png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec()).await?;
    assert_eq!(photo.expect_status(201)?.json()["n"], 1);
    let stranger = li.post_bytes(&format!("/t/xingfu/p/property/repairs/{id}/photos"), "image/png", b"\x89PNG\r\n\x1a\n".to_vec()).await?;
    assert_eq!(stranger.status, 404, "{}", stranger.text);
    let seen_by_office = call(&office, "GET", "/office/repairs", None).await?.expect_status(200)?.json();
    assert_eq!(seen_by_office[0]["id"], id.as_str(), "{seen_by_office}");
    // Dispatched to the community's property company: none in the base data yet, then the one
    // registered at 幸福社区. Its staff may not dispatch, and get nothing of the host's own.
    let none = call(&office, "POST", &format!("/office/repairs/{id}/dispatch"), None).await?;
    assert_eq!((none.status, none.error_code().as_str()), (409, "conflict"), "{}", none.text);
    let companies = "名称,类型,网格,联系方式
幸福社区物业服务中心,物业,xingfu,0571-88880001
和平社区物业服务中心,物业,heping,0571-88880002
";
    assert_eq!(host.import_csv("organisations", "demo-county", companies).await?["status"], "done");
    let company_staff = host
        .person(json!({ "kind": "staff", "phone": "13900000044", "display_name": "物业小刘", "password": PASSWORD,
            "roles": [{ "role": "property-staff", "tenant": "xingfu" }] }))
        .await?;
    call(&company_staff, "POST", &format!("/office/repairs/{id}/dispatch"), None).await?.expect_status(403)?;
    let dispatched = call(&office, "POST", &format!("/office/repairs/{id}/dispatch"), None).await?.expect_status(200)?.json();
    assert_eq!((dispatched["status"].as_str(), dispatched["assignee"].as_str()), (Some("dispatched"), Some("幸福社区物业服务中心")), "{dispatched}");
    let in_console = office.get(&format!("/api/tickets/{id}")).await?.expect_status(200)?.json();
    assert_eq!(in_console["ticket"]["assignee_name"], "幸福社区物业服务中心", "{in_console}");
    let outside = company_staff.get(&format!("/api/tickets/{id}")).await?;
    assert!(matches!(outside.status, 403 | 404), "property staff have no work orders of the host's own: {}", outside.text);
    let resolved =
        call(&company_staff, "POST", &format!("/office/repairs/{id}/resolve"), Some(json!({ "note": "已更换接口" }))).await?.expect_status(200)?.json();
    assert_eq!(resolved["status"], "resolved", "{resolved}");
    let rated = call(&wang, "POST", &format!("/repairs/{id}/rate"), Some(json!({ "rating": 5, "feedback": "很快" }))).await?.expect_status(200)?.json();
    assert_eq!((rated["status"].as_str(), rated["rating"].as_u64()), (Some("closed"), Some(5)), "{rated}");
    let in_app = wang.get(&format!("/api/tickets/{id}")).await?.expect_status(200)?.json();
    assert_eq!((in_app["ticket"]["rating"].as_u64(), in_app["photos"].clone()), (Some(5), json!([1])), "{in_app}");

    // Fees: every house billed once, a page at a time; she pays hers and gets a receipt.
    let bill_all = || async {
        let (mut created, mut existing, mut pages, mut cursor) = (0, 0, 0, Value::Null);
        loop {
            let body = json!({ "period": "2026-12", "amount": 12000, "cursor": cursor });
            let page = call(&office, "POST", "/office/bills", Some(body)).await?.expect_status(201)?.json();
            (created, existing, pages) = (created + page["created"].as_u64().unwrap_or(0), existing + page["existing"].as_u64().unwrap_or(0), pages + 1);
            cursor = page["next"].clone();
            if cursor.is_null() {
                return anyhow::Ok((created, existing, pages));
            }
        }
    };
    let (created, existing, pages) = bill_all().await?;
    assert!(created > 100 && existing == 0 && pages >= 2, "created {created}, existing {existing}, in {pages} pages");
    assert_eq!(bill_all().await?, (0, created, pages), "a second run bills nothing twice");
    let asked = call(&wang, "GET", "/bills/mine", None).await?;
    assert_eq!((asked.status, asked.error_code().as_str()), (403, "consent-required"), "{}", asked.text);
    wang.post("/api/consents/property", json!({ "fields": ["resident-record"] })).await?.expect_status(204)?;
    let mine = call(&wang, "GET", "/bills/mine", None).await?.expect_status(200)?.json();
    assert_eq!((mine["address"].as_str(), mine["balance"].as_i64()), (Some("3栋2单元501"), Some(-12000)), "{mine}");
    let bill = mine["bills"][0]["id"].as_str().context("bill id")?.to_string();
    let started = call(&wang, "POST", &format!("/bills/{bill}/pay"), None).await?.expect_status(201)?.json();
    let payment = started["payment"].as_str().context("payment id")?.to_string();
    let receipt = call(&wang, "POST", &format!("/payments/{payment}/demo-confirm"), None).await?.expect_status(200)?.json();
    assert_eq!((receipt["amountText"].as_str(), receipt["balance"].as_i64()), (Some("120.00 元"), Some(0)), "{receipt}");
    let again = call(&wang, "POST", &format!("/payments/{payment}/demo-confirm"), None).await?.expect_status(200)?.json();
    assert_eq!((again["receipt"].clone(), again["balance"].as_i64()), (receipt["receipt"].clone(), Some(0)), "a retried confirmation pays once");
    let arrears = call(&office, "GET", "/office/arrears", None).await?.expect_status(200)?.json();
    let owing: Vec<&str> = arrears.as_array().map(|a| a.iter().filter_map(|r| r["address"].as_str()).collect()).unwrap_or_default();
    assert_eq!(owing.len() as u64, created - 1, "every house but hers owes");
    assert!(owing.contains(&"3栋2单元502") && !owing.contains(&"3栋2单元501"), "{owing:?}");

    // A visitor pass: the plate goes to the gate, and leaves it when she revokes the pass.
    call(&office, "PUT", "/office/gate", Some(json!({ "gate": "gate-east" }))).await?.expect_status(200)?;
    let pass = call(&wang, "POST", "/passes", Some(json!({ "visitor": "女儿", "plate": "浙A·66666", "hours": 2 }))).await?.expect_status(201)?.json();
    assert_eq!((pass["gateState"].as_str(), pass["state"].as_str()), (Some("listed"), Some("valid")), "{pass}");
    assert_eq!(commands(&gate_log, "whitelist-add", "浙A66666"), 1);
    let pass_id = pass["id"].as_str().context("pass id")?;
    let revoked = call(&wang, "POST", &format!("/passes/{pass_id}/revoke"), None).await?.expect_status(200)?.json();
    assert_eq!(revoked["gateState"], "removed", "{revoked}");
    assert_eq!(commands(&gate_log, "whitelist-remove", "浙A66666"), 1);
    // A plate the gate refuses: the office sees the pass, and retries once the gate is seen to.
    let stuck = call(&wang, "POST", "/passes", Some(json!({ "visitor": "朋友", "plate": "浙B88888", "hours": 2 }))).await?.expect_status(201)?.json();
    assert_eq!(stuck["gateState"], "pending", "{stuck}");
    let stuck_id = stuck["id"].as_str().context("pass id")?;
    let unsynced = call(&office, "GET", "/office/passes/unsynced", None).await?.expect_status(200)?.json();
    assert_eq!(unsynced.as_array().map(|a| a.iter().map(|p| p["id"].clone()).collect::<Vec<_>>()), Some(vec![json!(stuck_id)]), "{unsynced}");
    assert!(unsynced[0]["gateError"].as_str().is_some_and(|e| e.contains("道闸拒绝")), "{unsynced}");
    call(&wang, "GET", "/office/passes/unsynced", None).await?.expect_status(403)?;
    refused_plates.lock().map_err(|_| anyhow::anyhow!("lock"))?.clear();
    let retried = call(&office, "POST", &format!("/office/passes/{stuck_id}/retry"), None).await?.expect_status(200)?.json();
    assert_eq!(retried["gateState"], "listed", "{retried}");
    assert_eq!(call(&office, "GET", "/office/passes/unsynced", None).await?.expect_status(200)?.json(), json!([]));

    // The figures roll up: only 幸福社区 has any, so its street and the county show the same.
    let board = host.operator().get("/api/dashboard?tenant=xingfu").await?.expect_status(200)?.json();
    let totals = &board["totals"];
    for above in ["chengguan", "demo-county"] {
        let rolled = host.operator().get(&format!("/api/dashboard?tenant={above}")).await?.expect_status(200)?.json();
        for key in
            ["property.repairs", "property.repairs_overdue", "property.rating_points", "property.fees_billed", "property.fees_paid", "property.visitor_passes"]
        {
            assert_eq!(rolled["totals"][key], totals[key], "{key} at {above}: {}", rolled["totals"]);
        }
    }
    assert_eq!((totals["property.repairs"].as_f64(), totals["property.rating_points"].as_f64()), (Some(1.0), Some(5.0)), "{totals}");
    let billed_yuan = created as f64 * 120.0;
    assert_eq!((totals["property.fees_billed"].as_f64(), totals["property.fees_paid"].as_f64()), (Some(billed_yuan), Some(120.0)), "{totals}");
    assert_eq!(totals["property.collection_rate"].as_f64(), Some(120.0 / billed_yuan), "{totals}");
    lab.host.stop().await;
    Ok(())
}
on_both_backends!(property_services);
