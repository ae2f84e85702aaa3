//! The community council (plugins/council, the Python reference plugin, built by
//! scripts/build-polyglot) end to end on both databases: a proposal counted against the
//! community's households in the base data; one vote per household (her husband's second
//! vote refused, a resident of another community refused); the result published on closing;
//! an activity's attendees awarded points once, which one of them redeems; the figures rolled
//! up to the street's dashboard as a participation rate.
use anyhow::{Context, Result};
use linli_tests::*;
use serde_json::{json, Value};

const PASSWORD: &str = "council-test-2026";

async fn call(person: &Person, method: &str, path: &str, body: Option<Value>) -> Result<Reply> {
    person.call(method, &format!("/t/xingfu/p/council{path}"), body).await
}

async fn vote(person: &Person, proposal: &str, choice: &str) -> Result<Reply> {
    call(person, "POST", &format!("/proposals/{proposal}/vote"), Some(json!({ "choice": choice }))).await
}

async fn a_household_votes_once(host: TestHost) -> Result<()> {
    // Three households of 幸福社区: 王秀英 and 王建国 share one; 李建军; 王小红.
    let csv = "姓名,身份证号,手机号,网格,楼栋,单元,房号,户,标签\n\
               王秀英,330782195603120020,13900000061,xingfu-g1,3,2,501,3-2-501,\n\
               王建国,330782195401010018,13900000062,xingfu-g1,3,2,501,3-2-501,\n\
               李建军,330782197805060037,13900000063,xingfu-g1,3,2,502,3-2-502,\n\
               王小红,330782199008080042,13900000064,xingfu-g2,5,1,101,5-1-101,\n";
    assert_eq!(host.import_csv("residents", "demo-county", csv).await?["status"], "done");
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    let dir = polyglot_dir("council");
    host.upload(vendor.package_from(&dir, &dir.join("dist/plugin.wasm"), |_| {})?).await?.expect_status(201)?;
    host.install("council", "0.1.0", DEMO_COUNTY, &["data", "identity", "identity:resident-record", "base", "ledger"], json!({})).await?.expect_status(201)?;
    let resident = |phone: &str, name: &str, community: &str| json!({ "kind": "resident", "phone": phone, "display_name": name, "password": PASSWORD, "tenant_id": community });
    let wang = host.person(resident("13900000061", "王阿姨", "xingfu")).await?;
    let husband = host.person(resident("13900000062", "王大伯", "xingfu")).await?;
    let li = host.person(resident("13900000063", "李师傅", "xingfu")).await?;
    let outsider = host.person(resident("13900000065", "刘先生", "heping")).await?;
    let worker = host
        .person(json!({ "kind": "staff", "phone": "13900000066", "display_name": "赵社工", "password": PASSWORD,
            "roles": [{ "role": "community-worker", "tenant": "xingfu" }] }))
        .await?;
    for person in [&wang, &husband, &li, &outsider] {
        person.post("/api/consents/council", json!({ "fields": ["resident-record"] })).await?.expect_status(204)?;
    }

    let body = json!({ "title": "小区停车收费调整", "body": "地面停车位每月收费由100元调整为120元。", "quorum_percent": 60, "threshold_percent": 50 });
    let proposal = call(&worker, "POST", "/proposals", Some(body)).await?.expect_status(201)?.json();
    assert_eq!(proposal["eligible"], 3, "three households: {proposal}");
    let id = proposal["id"].as_str().context("proposal id")?.to_string();
    assert_eq!(vote(&wang, &id, "yes").await?.expect_status(201)?.json()["cast"], 1);
    let second = vote(&husband, &id, "no").await?;
    assert_eq!((second.status, second.error_code().as_str()), (409, "conflict"), "{}", second.text);
    let foreign = vote(&outsider, &id, "no").await?;
    assert_eq!(foreign.status, 403, "{}", foreign.text);
    assert_eq!(vote(&li, &id, "yes").await?.expect_status(201)?.json()["cast"], 2);
    let audit = call(&worker, "GET", &format!("/proposals/{id}/audit"), None).await?.expect_status(200)?.json();
    assert_eq!(audit["voted"].as_array().map(Vec::len), Some(2), "{audit}");
    assert!(audit["voted"][0].get("choice").is_none(), "the audit shows who voted, not how: {audit}");
    let closed = call(&worker, "POST", &format!("/proposals/{id}/close"), None).await?.expect_status(200)?.json();
    assert_eq!(closed["result"], json!({ "yes": 2, "no": 0, "abstain": 0, "cast": 2, "eligible": 3, "quorum_met": true, "passed": true }));
    let late = vote(&husband, &id, "no").await?;
    assert_eq!(late.status, 409, "{}", late.text);

    // Points for coming to an activity, awarded once, redeemed once.
    let activity = call(&worker, "POST", "/activities", Some(json!({ "title": "义务植树", "when": "12月14日 9:00", "place": "中心花园", "points": 30 })))
        .await?
        .expect_status(201)?
        .json();
    let activity_id = activity["id"].as_str().context("activity id")?;
    let signed = call(&li, "POST", &format!("/activities/{activity_id}/signup"), None).await?.expect_status(201)?.json();
    let li_id = signed["user"].as_str().context("user")?.to_string();
    for _ in 0..2 {
        call(&worker, "POST", &format!("/activities/{activity_id}/attendance"), Some(json!({ "present": [li_id] }))).await?.expect_status(200)?;
    }
    assert_eq!(call(&li, "GET", "/points", None).await?.expect_status(200)?.json()["balance"], 30);
    let reward = call(&worker, "POST", "/rewards", Some(json!({ "name": "洗衣液", "points": 25, "stock": 5 }))).await?.expect_status(201)?.json();
    let reward_id = reward["id"].as_str().context("reward id")?;
    let redeemed = call(&li, "POST", &format!("/rewards/{reward_id}/redeem"), None).await?.expect_status(201)?.json();
    assert_eq!(redeemed["balance"], 5, "{redeemed}");
    let short = call(&li, "POST", &format!("/rewards/{reward_id}/redeem"), None).await?;
    assert_eq!((short.status, short.error_code().as_str()), (429, "limit-exceeded"), "{}", short.text);
    let stock = call(&li, "GET", "/rewards", None).await?.expect_status(200)?.json();
    assert_eq!(stock[0]["stock"], 4, "a refused redemption keeps the stock: {stock}");

    let board = host.operator().get("/api/dashboard?tenant=chengguan").await?.expect_status(200)?.json();
    let totals = &board["totals"];
    assert_eq!((totals["council.votes"].as_f64(), totals["council.eligible"].as_f64()), (Some(2.0), Some(3.0)), "{totals}");
    assert_eq!((totals["council.points_issued"].as_f64(), totals["council.points_redeemed"].as_f64()), (Some(30.0), Some(25.0)), "{totals}");
    assert_eq!(totals["council.participation"].as_f64(), Some(2.0 / 3.0), "{totals}");
    host.stop().await;
    Ok(())
}
on_both_databases!(council, a_household_votes_once);
