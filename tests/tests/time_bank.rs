//! The time-bank plugin end to end over HTTP: joining under the real name (with consent),
//! a need and an offer that match, acceptance, the recipient's confirmation crediting the
//! volunteer's hours through the ledger (once, however often it is confirmed), donating
//! to the community pool, spending saved hours on a service, and the statistics.
use linli_host::capabilities::ledger::book::check_invariants;
use linli_tests::*;
use serde_json::{json, Value};

const PASSWORD: &str = "linli-test-2026";
const BASE: &str = "/t/xingfu/p/time-bank";

fn resident(phone: &str, name: &str) -> Value {
    json!({ "kind": "resident", "phone": phone, "display_name": name, "password": PASSWORD, "tenant_id": "xingfu" })
}

async fn join(person: &Person, roles: &[&str]) -> anyhow::Result<Value> {
    person.post("/api/consents/time-bank", json!({ "fields": ["real-name"] })).await?.expect_status(204)?;
    Ok(person.post(&format!("{BASE}/members"), json!({ "roles": roles })).await?.expect_status(201)?.json())
}

async fn balance(person: &Person) -> anyhow::Result<i64> {
    Ok(person.get(&format!("{BASE}/me")).await?.expect_status(200)?.json()["balance"].as_i64().unwrap_or(-1))
}

async fn need_to_credited_hours(host: TestHost) -> anyhow::Result<()> {
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    host.publish(&vendor, "time-bank", &["data", "identity", "identity:real-name", "ledger"], &["demo-county"]).await?;
    let records = format!(
        "姓名,身份证号,手机号,网格\n王秀英,{},13800000001,xingfu-g1\n李志强,{},13800000002,xingfu-g1\n张晓燕,{},13800000003,xingfu-g2\n",
        id_number("33078219560312002"),
        id_number("33078219900101001"),
        id_number("33078219850505002"),
    );
    assert_eq!(host.import_csv("residents", "xingfu", &records).await?["status"], "done");
    let elder = host.person(resident("13800000001", "王阿姨")).await?;
    let volunteer = host.person(resident("13800000002", "小李")).await?;
    let daughter = host.person(resident("13800000003", "小张")).await?;

    // Joining needs the real name, so consent first.
    let ask = elder.post(&format!("{BASE}/members"), json!({ "roles": ["elder"] })).await?;
    assert_eq!((ask.status, ask.error_code().as_str()), (403, "consent-required"), "{}", ask.text);
    assert_eq!(ask.json()["error"]["consent_url"], "/app/#/consent/time-bank");
    assert_eq!(elder.post(&format!("{BASE}/members"), json!({ "roles": ["boss"] })).await?.status, 400);
    let joined = join(&elder, &["elder"]).await?;
    assert_eq!((joined["name"].as_str(), joined["community"].as_str()), (Some("王秀英"), Some("xingfu")));
    join(&volunteer, &["volunteer"]).await?;
    join(&daughter, &["family"]).await?;

    // A need and an offer that match; bad input is refused.
    let need =
        json!({ "kind": "need", "category": "就医陪同", "title": "陪我去县医院复查", "starts_at": "2026-11-25T09:00", "minutes": 90, "place": "幸福社区3栋" });
    for (field, value) in [("category", json!("打麻将")), ("starts_at", json!("明天上午")), ("minutes", json!(10)), ("place", json!(" "))] {
        let mut bad = need.clone();
        bad[field] = value;
        let refused = elder.post(&format!("{BASE}/tasks"), bad).await?;
        assert_eq!(refused.status, 400, "{field}: {}", refused.text);
    }
    let need = elder.post(&format!("{BASE}/tasks"), need).await?.expect_status(201)?.json();
    let need_id = need["id"].as_str().unwrap_or_default().to_string();
    let offer =
        json!({ "kind": "offer", "category": "就医陪同", "title": "周三上午可陪同就医", "starts_at": "2026-11-25T10:00", "minutes": 120, "place": "幸福社区" });
    assert_eq!(daughter.post(&format!("{BASE}/tasks"), offer.clone()).await?.status, 403, "offers are for volunteers");
    let offer = volunteer.post(&format!("{BASE}/tasks"), offer).await?.expect_status(201)?.json();
    let matched = volunteer.get(&format!("{BASE}/tasks/{need_id}/matches")).await?.expect_status(200)?.json();
    assert_eq!(matched[0]["id"], offer["id"]);
    let open = volunteer.get(&format!("{BASE}/tasks?kind=need&category=就医陪同")).await?.expect_status(200)?.json();
    assert_eq!(open.as_array().map(Vec::len), Some(1));

    // Only a volunteer takes on a need; the recipient confirms; hours once.
    assert_eq!(daughter.post(&format!("{BASE}/tasks/{need_id}/accept"), json!({})).await?.status, 403);
    assert_eq!(elder.post(&format!("{BASE}/tasks/{need_id}/confirm"), json!({})).await?.status, 409, "nobody accepted yet");
    volunteer.post(&format!("{BASE}/tasks/{need_id}/accept"), json!({})).await?.expect_status(200)?;
    assert_eq!(volunteer.post(&format!("{BASE}/tasks/{need_id}/accept"), json!({})).await?.status, 409);
    assert_eq!(volunteer.post(&format!("{BASE}/tasks/{need_id}/confirm"), json!({})).await?.status, 403, "the volunteer cannot confirm their own service");
    let done = elder.post(&format!("{BASE}/tasks/{need_id}/confirm"), json!({})).await?.expect_status(200)?.json();
    assert_eq!(done["status"], "completed");
    elder.post(&format!("{BASE}/tasks/{need_id}/confirm"), json!({})).await?.expect_status(200)?;
    assert_eq!(balance(&volunteer).await?, 150, "1.5 hours of service, credited once");
    let me = volunteer.get(&format!("{BASE}/me")).await?.json();
    assert!(me["movements"][0]["memo"].as_str().unwrap_or_default().contains("陪我去县医院复查"));

    // Donations: to the community pool, retried safely; never beyond the balance.
    let donated = volunteer.post(&format!("{BASE}/donations"), json!({ "to": "pool", "amount": 50, "key": "d1" })).await?.expect_status(200)?.json();
    assert_eq!(donated["balance"], 100);
    assert_eq!(
        volunteer.post(&format!("{BASE}/donations"), json!({ "to": "pool", "amount": 50, "key": "d1" })).await?.expect_status(200)?.json()["replayed"],
        true
    );
    let too_much = volunteer.post(&format!("{BASE}/donations"), json!({ "to": "pool", "amount": 1_000, "key": "d2" })).await?;
    assert_eq!((too_much.status, too_much.error_code().as_str()), (429, "limit-exceeded"));
    assert_eq!(volunteer.post(&format!("{BASE}/donations"), json!({ "to": "pool", "amount": 0, "key": "d3" })).await?.status, 400);
    assert_eq!(balance(&volunteer).await?, 100);

    // Spending saved hours: the volunteer needs shopping done and pays with an hour.
    let shopping = json!({ "kind": "need", "category": "代购", "title": "帮忙买米和油", "starts_at": "2026-11-26T16:00", "minutes": 60, "place": "幸福社区", "payment": "hours" });
    let shopping = volunteer.post(&format!("{BASE}/tasks"), shopping).await?.expect_status(201)?.json();
    let shopping_id = shopping["id"].as_str().unwrap_or_default().to_string();
    let helper =
        host.person(json!({ "kind": "resident", "phone": "13800000004", "display_name": "小赵", "password": PASSWORD, "tenant_id": "xingfu" })).await?;
    let record = format!("姓名,身份证号,手机号,网格\n赵小明,{},13800000004,xingfu-g2\n", id_number("33078219950909001"));
    assert_eq!(host.import_csv("residents", "xingfu", &record).await?["status"], "done");
    join(&helper, &["volunteer"]).await?;
    helper.post(&format!("{BASE}/tasks/{shopping_id}/accept"), json!({})).await?.expect_status(200)?;
    volunteer.post(&format!("{BASE}/tasks/{shopping_id}/confirm"), json!({})).await?.expect_status(200)?;
    assert_eq!((balance(&volunteer).await?, balance(&helper).await?), (0, 100));
    let broke = json!({ "kind": "need", "category": "代购", "title": "再买一次", "starts_at": "2026-11-27T16:00", "minutes": 60, "place": "幸福社区", "payment": "hours" });
    assert_eq!(volunteer.post(&format!("{BASE}/tasks"), broke).await?.status, 429, "no hours left to spend");

    // Donating to another member; an unknown member is refused.
    let elder_id = joined["id"].as_str().unwrap_or_default();
    let gift = helper.post(&format!("{BASE}/donations"), json!({ "to": elder_id, "amount": 25, "key": "g1" })).await?.expect_status(200)?.json();
    assert_eq!(gift["balance"], 75);
    assert_eq!(balance(&elder).await?, 25);
    assert_eq!(helper.post(&format!("{BASE}/donations"), json!({ "to": "nobody", "amount": 25, "key": "g2" })).await?.status, 404);
    assert_eq!(balance(&helper).await?, 75);

    // Statistics for the dashboards.
    let stats = elder.get(&format!("{BASE}/stats")).await?.expect_status(200)?.json();
    let xingfu = stats.as_array().and_then(|rows| rows.iter().find(|r| r["community"] == "xingfu")).cloned().unwrap_or_default();
    assert_eq!(
        (
            xingfu["members"].as_i64(),
            xingfu["needs"].as_i64(),
            xingfu["offers"].as_i64(),
            xingfu["matched"].as_i64(),
            xingfu["completed"].as_i64(),
            xingfu["hours_credited"].as_f64()
        ),
        (Some(4), Some(2), Some(1), Some(2), Some(2), Some(2.5)),
        "{stats}"
    );
    let store = host.store().await?;
    assert_eq!(check_invariants(&store).await?, Vec::<String>::new());
    host.stop().await;
    Ok(())
}

on_both_databases!(time_bank_need_to_credited_hours, need_to_credited_hours);
