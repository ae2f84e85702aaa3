//! Shared parking end to end, through the real Mosquitto: an owner shares a space; a
//! resident finds and books it, and the gate controller (the test's device side) is told
//! to whitelist the plate; two residents racing for the same hours get one booking;
//! cancellation is free early and costs the late fee later; checking out charges the
//! tariff, split between the owner and the property company in the ledger; a car still
//! on the space after its booking ends is an overstay and the booker is told; the
//! dashboards show the income. Bad input changes nothing. SQLite and PostgreSQL.
use anyhow::{Context, Result};
use linli_tests::lab::*;
use linli_tests::*;
use serde_json::{json, Value};

const PASSWORD: &str = "parking-test-2026";
const MINUTE: i64 = 60_000;

fn resident(phone: &str, name: &str) -> Value {
    json!({ "kind": "resident", "phone": phone, "display_name": name, "password": PASSWORD, "tenant_id": "xingfu" })
}

async fn call(person: &Person, method: &str, path: &str, body: Option<Value>) -> Result<Reply> {
    person.call(method, &format!("/t/xingfu/p/parking{path}"), body).await
}

async fn balance(person: &Person) -> Result<i64> {
    Ok(call(person, "GET", "/account", None).await?.expect_status(200)?.json()["balance"].as_i64().unwrap_or(i64::MIN))
}

async fn book(person: &Person, space: &str, from: i64, to: i64, plate: &str) -> Result<Reply> {
    call(person, "POST", "/bookings", Some(json!({ "space": space, "from": cst_minute(from), "to": cst_minute(to), "plate": plate }))).await
}

async fn sharing_a_space(backend: Backend) -> Result<()> {
    let Some(mut lab) = Lab::start(backend, |_| {}).await? else { return Ok(()) };
    let gate_log = answer_commands(&mut lab);
    let host = &lab.host;
    lab.register("gate-north", "gate-controller", "grid:xingfu-g2").await?;
    lab.register("sensor-017", "parking-sensor", "grid:xingfu-g2").await?;
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    host.publish(&vendor, "parking", &["data", "identity", "devices", "devices:command", "ledger", "notify"], &["demo-county"]).await?;
    let owner = host.person(resident("13900000021", "李师傅")).await?;
    let booker = host.person(resident("13900000022", "王阿姨")).await?;
    let rival = host.person(resident("13900000023", "张先生")).await?;
    let staff = host.person(json!({ "kind": "staff", "phone": "13900000024", "display_name": "赵社工", "password": PASSWORD, "roles": [{ "role": "community-worker", "tenant": "xingfu" }] })).await?;

    // The owner registers the space and shares today and tomorrow.
    let bad_gate = call(&owner, "POST", "/spaces", Some(json!({ "label": "B2-017", "gate": "sensor-017" }))).await?;
    assert_eq!(bad_gate.status, 400, "a parking sensor is not a gate: {}", bad_gate.text);
    let space =
        call(&owner, "POST", "/spaces", Some(json!({ "label": "B2-017", "gate": "gate-north", "sensor": "sensor-017" }))).await?.expect_status(201)?.json();
    let space_id = space["id"].as_str().context("space id")?.to_string();
    assert_eq!(space_id, "xingfu:B2-017");
    let now = now_ms() / MINUTE * MINUTE;
    let window = json!({ "from": cst_minute(now - 60 * MINUTE), "to": cst_minute(now + 48 * 60 * MINUTE) });
    assert_eq!(call(&booker, "POST", &format!("/spaces/{space_id}/windows"), Some(window.clone())).await?.status, 403, "only the owner publishes");
    call(&owner, "POST", &format!("/spaces/{space_id}/windows"), Some(window.clone())).await?.expect_status(201)?;
    assert_eq!(call(&owner, "POST", &format!("/spaces/{space_id}/windows"), Some(window)).await?.status, 409, "windows do not overlap");

    // Search: the space is free for two hours in an hour's time, 5 元 on the default tariff.
    let (from, to) = (now + 60 * MINUTE, now + 180 * MINUTE);
    let query = format!("/search?from={}&to={}", cst_minute(from), cst_minute(to));
    let offers = call(&booker, "GET", &query, None).await?.expect_status(200)?.json();
    assert_eq!(offers.as_array().map(Vec::len), Some(1), "{offers}");
    assert_eq!(offers[0]["fee"], 500);

    // Bad bookings change nothing.
    for (body, why) in [
        (json!({ "space": space_id, "from": cst_minute(from), "to": cst_minute(to), "plate": "AB12345" }), "not a plate"),
        (json!({ "space": space_id, "from": cst_minute(to), "to": cst_minute(from), "plate": "浙A12345" }), "ends before it starts"),
        (json!({ "space": space_id, "from": "tomorrow", "to": cst_minute(to), "plate": "浙A12345" }), "not a time"),
        (
            json!({ "space": space_id, "from": cst_minute(now + 49 * 60 * MINUTE), "to": cst_minute(now + 50 * 60 * MINUTE), "plate": "浙A12345" }),
            "outside the window",
        ),
    ] {
        let refused = call(&booker, "POST", "/bookings", Some(body)).await?;
        assert!(matches!(refused.status, 400 | 409), "{why}: {} {}", refused.status, refused.text);
    }
    assert_eq!(book(&owner, &space_id, from, to, "浙B54321").await?.status, 400, "owners do not book their own space");
    assert_eq!(book(&booker, "xingfu:B9-999", from, to, "浙A12345").await?.status, 404);
    assert_eq!(call(&booker, "GET", "/bookings/mine", None).await?.json().as_array().map(Vec::len), Some(0));

    // Two residents race for the same hours: one gets them.
    let (a, b) = tokio::join!(book(&booker, &space_id, from, to, "浙a·12345"), book(&rival, &space_id, from + 30 * MINUTE, to, "浙C77777"));
    let (a, b) = (a?, b?);
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{} / {}", a.text, b.text);
    let (winner, loser, plate) = if a.status == 201 { (&booker, &rival, "浙A12345") } else { (&rival, &booker, "浙C77777") };
    let booking = if a.status == 201 { a.json() } else { b.json() };
    assert_eq!(booking["plate"], plate, "plates are normalised");
    assert_eq!(booking["gate_state"], "whitelisted", "{booking}");
    assert_eq!(commands(&gate_log, "whitelist-add", plate), 1);
    let searched = call(loser, "GET", &query, None).await?.expect_status(200)?.json();
    assert_eq!(searched.as_array().map(Vec::len), Some(0), "the hours are taken");
    let owner_inbox = owner.get("/api/inbox").await?.expect_status(200)?.json();
    assert!(owner_inbox["items"].to_string().contains("您的车位有新预约"), "{owner_inbox}");

    // Cancelling more than 30 minutes ahead is free; the gate lets the plate go.
    let id = booking["id"].as_str().context("booking id")?.to_string();
    assert_eq!(call(loser, "POST", &format!("/bookings/{id}/cancel"), None).await?.status, 403, "not theirs");
    let cancelled = call(winner, "POST", &format!("/bookings/{id}/cancel"), None).await?.expect_status(200)?.json();
    assert_eq!((cancelled["status"].as_str(), cancelled["charged"].as_i64()), (Some("cancelled"), Some(0)));
    assert_eq!(cancelled["gate_state"], "removed");
    assert_eq!(commands(&gate_log, "whitelist-remove", plate), 1);
    assert_eq!(call(winner, "POST", &format!("/bookings/{id}/cancel"), None).await?.status, 409, "once");

    // A late cancellation (10 minutes ahead) costs 2 元, to the owner less the 10 % share.
    let late = book(&booker, &space_id, now + 10 * MINUTE, now + 70 * MINUTE, "浙A12345").await?.expect_status(201)?.json();
    let late = call(&booker, "POST", &format!("/bookings/{}/cancel", late["id"].as_str().unwrap_or_default()), None).await?.expect_status(200)?.json();
    assert_eq!(late["charged"], 200);
    assert_eq!(balance(&booker).await?, -200);
    assert_eq!(balance(&owner).await?, 180);

    // Parking now and leaving at once: the first tier, 5 元.
    let parked = book(&booker, &space_id, now, now + 120 * MINUTE, "浙A12345").await?.expect_status(201)?.json();
    let parked_id = parked["id"].as_str().context("id")?.to_string();
    assert_eq!(call(&booker, "POST", &format!("/bookings/{parked_id}/cancel"), None).await?.status, 409, "it has started");
    let done = call(&booker, "POST", &format!("/bookings/{parked_id}/checkout"), None).await?.expect_status(200)?.json();
    assert_eq!((done["status"].as_str(), done["charged"].as_i64()), (Some("completed"), Some(500)), "{done}");
    assert_eq!(balance(&booker).await?, -700);
    assert_eq!(balance(&owner).await?, 180 + 450);
    assert_eq!(call(&booker, "POST", &format!("/bookings/{parked_id}/checkout"), None).await?.status, 409, "once");

    // Overstay: with no grace, a booking that ended while the sensor still sees a car
    // tells the booker. The sweep also ends the booking and takes the plate off the gate.
    let mut tariff = call(&booker, "GET", "/tariff", None).await?.expect_status(200)?.json();
    tariff["overstay_grace_minutes"] = json!(0);
    assert_eq!(call(&booker, "PUT", "/tariff", Some(tariff.clone())).await?.status, 403, "staff set the tariff");
    call(&staff, "PUT", "/tariff", Some(tariff)).await?.expect_status(200)?;
    let second =
        call(&owner, "POST", "/spaces", Some(json!({ "label": "B2-018", "gate": "gate-north", "sensor": "sensor-017" }))).await?.expect_status(201)?.json();
    let second = second["id"].as_str().context("space id")?.to_string();
    call(&owner, "POST", &format!("/spaces/{second}/windows"), Some(json!({ "from": cst_minute(now - 60 * MINUTE), "to": cst_minute(now + 60 * MINUTE) })))
        .await?
        .expect_status(201)?;
    let start = now_ms() / MINUTE * MINUTE;
    let short = book(&rival, &second, start, start + MINUTE, "浙C77777").await?.expect_status(201)?.json();
    lab.send("sensor-017", json!({ "occupied": 1 })).await?;
    let short_id = short["id"].as_str().context("id")?.to_string();
    for _ in 0..180 {
        let now = call(&rival, "GET", &format!("/bookings/{short_id}"), None).await?.expect_status(200)?.json();
        if now["overstay_notified"] == true {
            assert_eq!((now["status"].as_str(), now["gate_state"].as_str()), (Some("completed"), Some("removed")), "{now}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let inbox = rival.get("/api/inbox").await?.expect_status(200)?.json();
    assert!(inbox["items"].to_string().contains("停车已超时"), "the booker is told: {inbox}");

    // Past the credit limit, no new bookings: the booker owes 7 元 and the limit drops to 10 元.
    let mut tariff = call(&staff, "GET", "/tariff", None).await?.expect_status(200)?.json();
    tariff["credit_limit"] = json!(1000);
    call(&staff, "PUT", "/tariff", Some(tariff)).await?.expect_status(200)?;
    let over = book(&booker, &space_id, now + 300 * MINUTE, now + 400 * MINUTE, "浙A12345").await?;
    assert_eq!(over.status, 429, "{}", over.text);
    assert!(over.error_message().contains("欠费"), "{}", over.text);
    assert_eq!(balance(&booker).await?, -700, "nothing changed");

    // Figures for the dashboards: sums per community, rolled up by the host.
    let stats = call(&booker, "GET", "/stats", None).await?.expect_status(200)?.json();
    let xingfu = stats.as_array().and_then(|rows| rows.iter().find(|r| r["community"] == "xingfu")).cloned().context("xingfu row")?;
    assert_eq!(xingfu["spaces"], 2);
    assert_eq!(xingfu["income"].as_f64(), Some(2.0 + 5.0 + 5.0), "{xingfu}");
    let board = host.operator().get("/api/dashboard?tenant=chengguan").await?.expect_status(200)?.json();
    assert_eq!(board["totals"]["parking.income"].as_f64(), Some(12.0), "{}", board["totals"]);
    assert!(board["totals"]["parking.utilisation"].as_f64().is_some_and(|u| u > 0.0 && u < 1.0), "{}", board["totals"]);
    let xingfu_child = board["children"].as_array().and_then(|c| c.iter().find(|c| c["node"]["id"] == "xingfu")).cloned().context("xingfu child")?;
    assert_eq!(xingfu_child["figures"]["parking.income"].as_f64(), Some(12.0));
    lab.host.stop().await;
    Ok(())
}
on_both_backends!(sharing_a_space);
