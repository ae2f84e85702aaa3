//! The elderly-care story end to end, through the real Mosquitto: a lone elder's water
//! meter idle for 12 hours (on the device's accelerated clock) → her daughter gets a text
//! and the grid worker an inbox message → nobody answers in time → a visit ticket → the
//! community worker dispatches it to a volunteer, who accepts, visits and records the
//! visit against it → the ticket is resolved and closed, the care alert resolved. A fall
//! button raises a ticket at once, with the location. Tickets on their own: a resident's
//! report, dispatch, rating, supervision, escalation up the tenant tree when overdue,
//! and the refusals. SQLite and PostgreSQL.
use anyhow::{Context, Result};
use linli_tests::lab::*;
use linli_tests::*;
use serde_json::{json, Value};

const PASSWORD: &str = "care-test-2026";
const CARE: &str = "elderly-care";

fn staff(phone: &str, name: &str, role: &str, tenant: &str) -> Value {
    json!({ "kind": "staff", "phone": phone, "display_name": name, "password": PASSWORD, "roles": [{ "role": role, "tenant": tenant }] })
}

async fn call(person: &Person, method: &str, path: &str, body: Option<Value>) -> Result<Reply> {
    person.call(method, &format!("/t/xingfu/p/{CARE}{path}"), body).await
}

fn sms_to(host: &TestHost, phone: &str) -> Vec<String> {
    let outbox = std::fs::read_to_string(host.data_dir.join("sms-outbox.jsonl")).unwrap_or_default();
    outbox
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["to"] == phone)
        .filter_map(|m| m["text"].as_str().map(str::to_string))
        .collect()
}

async fn inbox_titles(person: &Person) -> Result<Vec<String>> {
    let inbox = person.get("/api/inbox").await?.expect_status(200)?.json();
    Ok(inbox["items"].as_array().cloned().unwrap_or_default().iter().filter_map(|i| i["title"].as_str().map(str::to_string)).collect())
}

async fn lone_elder_water_meter(backend: Backend) -> Result<()> {
    let Some(lab) = Lab::start(backend, |c| c.tickets.sweep_seconds = 3600).await? else { return Ok(()) };
    let host = &lab.host;
    let (house, address) = lone_elder_home(host).await?;
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    host.publish(&vendor, CARE, &["data", "identity", "base", "devices", "devices:alarms", "tickets", "notify", "notify:sms"], &["xingfu"]).await?;
    let worker = host.person(staff("13900000011", "赵社工", "community-worker", "xingfu")).await?;
    let grid = host.person(staff("13900000012", "李网格员", "grid-worker", "xingfu-g1")).await?;
    let volunteer = host.person(staff("13900000013", "小陈志愿者", "volunteer", "xingfu")).await?;

    // The archive comes from the base data; consent and a contact are recorded.
    let synced = call(&worker, "POST", "/elders/sync", None).await?.expect_status(200)?.json();
    assert_eq!(synced["added"], 1, "{synced}");
    let elders = call(&worker, "GET", "/elders", None).await?.expect_status(200)?.json();
    let elder = elders[0]["id"].as_str().context("elder id")?.to_string();
    assert_eq!(elders[0]["address"], address.as_str());
    assert_eq!(call(&volunteer, "POST", "/elders/sync", None).await?.status, 403, "volunteers do not manage the archive");
    call(&worker, "POST", &format!("/elders/{elder}/consent"), Some(json!({ "given_by": "本人" }))).await?.expect_status(200)?;
    let bad_contact = call(&worker, "POST", &format!("/elders/{elder}/contacts"), Some(json!({ "name": "女儿", "relation": "女儿", "phone": "12" }))).await?;
    assert_eq!(bad_contact.status, 400);
    call(&worker, "POST", &format!("/elders/{elder}/contacts"), Some(json!({ "name": "王小红", "relation": "女儿", "phone": "13900000099" })))
        .await?
        .expect_status(200)?;
    call(&worker, "PUT", "/settings", Some(json!({ "ack_seconds": 1 }))).await?.expect_status(200)?;

    lab.register("wm-401", "water-meter", &format!("house:{house}")).await?;
    lab.register("fall-401", "fall-button", &format!("house:{house}")).await?;
    lab.rule(idle_water_rule(None)).await?;
    lab.rule(instant_rule("fall", "跌倒求助", "fall-button", "pressed")).await?;

    // Thirteen idle hours of device time.
    lab.send("wm-401", json!({ "ts": DAY0, "flow": 3.0 })).await?;
    lab.idle_hours("wm-401", 1, 13).await?;
    wait_until("the family is texted", || async { Ok(!sms_to(host, "13900000099").is_empty()) }).await?;
    let text = sms_to(host, "13900000099").remove(0);
    assert!(text.contains("王阿姨") && text.contains(&address) && text.contains("未用水"), "{text}");
    wait_until("the grid worker is told", || async { Ok(inbox_titles(&grid).await?.iter().any(|t| t.contains("用水异常"))) }).await?;

    // Nobody acknowledges: after ack_seconds, at the next check (every 10 s), a ticket.
    let ticket = {
        let mut found = None;
        for _ in 0..60 {
            let alerts = call(&grid, "GET", "/alerts", None).await?.expect_status(200)?.json();
            if let Some(t) = alerts[0]["ticket"].as_str() {
                found = Some(t.to_string());
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        found.context("no ticket 30 s after the alert")?
    };
    let detail = worker.get(&format!("/api/tickets/{ticket}")).await?.expect_status(200)?.json();
    assert_eq!(detail["ticket"]["category"], "elderly-care");
    assert_eq!(detail["ticket"]["location"], address.as_str());
    assert_eq!(detail["ticket"]["tenant_id"], "xingfu-g1");
    assert_eq!(detail["ticket"]["source"], "plugin");
    assert!(detail["ticket"]["alarm_id"].is_string());
    let late_ack = call(&grid, "POST", &format!("/alerts/{}/acknowledge", detail["ticket"]["alarm_id"].as_str().unwrap_or_default()), None).await?;
    assert_eq!(late_ack.status, 409, "a ticketed alert is no longer acknowledged: {}", late_ack.text);

    // Dispatch to the volunteer, who accepts, visits and records it against the ticket.
    let refused = grid.post(&format!("/api/tickets/{ticket}/dispatch"), json!({ "assignee": volunteer.account_id })).await?;
    assert_eq!(refused.status, 403, "grid workers handle but do not dispatch: {}", refused.text);
    worker.post(&format!("/api/tickets/{ticket}/dispatch"), json!({ "assignee": volunteer.account_id })).await?.expect_status(200)?;
    assert!(inbox_titles(&volunteer).await?.iter().any(|t| t.starts_with("派单")));
    volunteer.call("POST", &format!("/api/tickets/{ticket}/accept"), None).await?.expect_status(200)?;
    let visit = call(
        &volunteer,
        "POST",
        "/records",
        Some(json!({ "elder": elder, "kind": "visit", "note": "上门探访，老人在家休息，水龙头冻住已处理", "ticket": ticket })),
    )
    .await?
    .expect_status(201)?
    .json();
    assert_eq!(visit["by"], "小陈志愿者");
    worker.post(&format!("/api/tickets/{ticket}/close"), json!({})).await?.expect_status(200)?;
    let done = worker.get(&format!("/api/tickets/{ticket}")).await?.expect_status(200)?.json();
    assert_eq!(done["ticket"]["status"], "closed");
    let trace: Vec<&str> = done["steps"].as_array().map(|s| s.iter().filter_map(|s| s["action"].as_str()).collect()).unwrap_or_default();
    assert_eq!(trace, ["created", "dispatched", "accepted", "resolved", "closed"]);
    assert!(done["steps"][3]["note"].as_str().is_some_and(|n| n.contains("上门探访")));
    wait_until("the care alert is resolved", || async {
        let alerts = call(&grid, "GET", "/alerts", None).await?.expect_status(200)?.json();
        Ok(alerts[0]["status"] == "resolved")
    })
    .await?;
    let profile = call(&grid, "GET", &format!("/elders/{elder}"), None).await?.expect_status(200)?.json();
    assert_eq!(profile["records"].as_array().map(Vec::len), Some(1));

    // A fall: a ticket at once, in the emergency category, and the daughter is texted.
    lab.send("fall-401", json!({ "pressed": 1 })).await?;
    wait_until("the fall opens a ticket", || async {
        let list = worker.get("/api/tickets?status=open").await?.expect_status(200)?.json();
        Ok(list["tickets"].as_array().is_some_and(|t| t.iter().any(|t| t["category"] == "emergency")))
    })
    .await?;
    let list = worker.get("/api/tickets?status=open").await?.expect_status(200)?.json();
    let fall = list["tickets"].as_array().and_then(|t| t.iter().find(|t| t["category"] == "emergency").cloned()).context("fall ticket")?;
    assert!(fall["title"].as_str().is_some_and(|t| t.contains(&address)), "{fall}");
    wait_until("the daughter hears of the fall", || async { Ok(sms_to(host, "13900000099").iter().any(|t| t.contains("跌倒"))) }).await?;
    let stats = call(&worker, "GET", "/stats", None).await?.expect_status(200)?.json();
    assert_eq!(stats["elders"], 1);
    assert_eq!(stats["consented"], 1);
    assert_eq!(stats["records"], 1);

    // The archive as a copied database shows it: the plugin's documents are there, sealed;
    // neither the elder's address nor her daughter's name and phone stand in clear.
    let store = host.store().await?;
    let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM plugin_documents").fetch_all(&store.pool).await?;
    assert!(bodies.len() >= 3, "the archive, its contact and the visit are stored: {}", bodies.len());
    for secret in [address.as_str(), "王小红", "13900000099"] {
        assert!(bodies.iter().all(|b| b.starts_with("enc1:") && !b.contains(secret)), "`{secret}` in a stored document");
    }
    // Nor do the inbox messages that told the grid worker where she lives.
    let messages: Vec<(String, String)> = sqlx::query_as("SELECT title, body FROM notifications").fetch_all(&store.pool).await?;
    assert!(!messages.is_empty());
    assert!(messages.iter().all(|(t, b)| t.starts_with("enc1:") && b.starts_with("enc1:") && !t.contains("王阿姨") && !b.contains(&address)), "{messages:?}");
    // Nor the work orders opened for her, and their steps.
    let tickets: Vec<(String, String, String)> = sqlx::query_as("SELECT title, description, location_label FROM tickets").fetch_all(&store.pool).await?;
    assert!(!tickets.is_empty());
    assert!(tickets.iter().all(|(t, d, l)| [t, d, l].iter().all(|v| v.starts_with("enc1:") && !v.contains(&address))), "{tickets:?}");
    let notes: Vec<String> = sqlx::query_scalar("SELECT note FROM ticket_steps").fetch_all(&store.pool).await?;
    assert!(notes.iter().all(|n| n.starts_with("enc1:") && !n.contains(&address)), "{notes:?}");
    let indexed: Vec<String> = sqlx::query_scalar("SELECT field_value FROM plugin_document_index").fetch_all(&store.pool).await?;
    assert!(indexed.iter().all(|v| v.starts_with("h:")), "{indexed:?}");
    Ok(())
}

async fn tickets_from_report_to_rating(backend: Backend) -> Result<()> {
    let Some(host) = TestHost::start_tuned(backend, |c| c.tickets.sweep_seconds = 1).await? else { return Ok(()) };
    let resident =
        host.person(json!({ "kind": "resident", "phone": "13800000041", "display_name": "张大爷", "password": PASSWORD, "tenant_id": "xingfu" })).await?;
    let neighbour =
        host.person(json!({ "kind": "resident", "phone": "13800000042", "display_name": "邻居", "password": PASSWORD, "tenant_id": "xingfu" })).await?;
    let worker = host.person(staff("13900000021", "赵社工", "community-worker", "xingfu")).await?;
    let other = host.person(staff("13900000022", "和平社工", "community-worker", "heping")).await?;
    let street = host.person(staff("13900000023", "城关镇干部", "street-admin", "chengguan")).await?;
    let fixer = host.person(staff("13900000024", "维修师傅", "grid-worker", "xingfu-g1")).await?;

    // A resident reports; bad reports are refused with a reason.
    let empty = resident.post("/api/tickets", json!({ "category": "repair", "title": " " })).await?;
    assert_eq!(empty.status, 422);
    let unknown = resident.post("/api/tickets", json!({ "category": "nope", "title": "灯坏了" })).await?;
    assert!(unknown.error_message().contains("category"), "{}", unknown.text);
    let ticket = resident
        .post("/api/tickets", json!({ "category": "repair", "title": "楼道灯坏了", "description": "3栋2单元楼道灯不亮", "location": "3栋2单元" }))
        .await?
        .expect_status(201)?
        .json();
    let id = ticket["id"].as_str().context("id")?.to_string();
    assert_eq!(ticket["tenant_id"], "xingfu");
    assert_eq!(ticket["status"], "open");
    assert!(inbox_titles(&worker).await?.iter().any(|t| t.contains("楼道灯")), "the community worker is told of a new ticket");

    // Who sees it.
    assert_eq!(neighbour.get(&format!("/api/tickets/{id}")).await?.status, 404);
    assert_eq!(other.get(&format!("/api/tickets/{id}")).await?.status, 404);
    assert_eq!(resident.get("/api/tickets").await?.expect_status(200)?.json()["tickets"].as_array().map(Vec::len), Some(1));
    assert_eq!(neighbour.get("/api/tickets").await?.expect_status(200)?.json()["tickets"].as_array().map(Vec::len), Some(0));

    // Dispatch, accept, resolve, rate; out-of-order steps are refused.
    assert_eq!(resident.post(&format!("/api/tickets/{id}/close"), json!({ "rating": 5 })).await?.status, 409);
    assert_eq!(resident.post(&format!("/api/tickets/{id}/dispatch"), json!({ "assignee": fixer.account_id })).await?.status, 403);
    let to_resident = worker.post(&format!("/api/tickets/{id}/dispatch"), json!({ "assignee": neighbour.account_id })).await?;
    assert_eq!(to_resident.status, 422, "only staff are assigned: {}", to_resident.text);
    worker.post(&format!("/api/tickets/{id}/dispatch"), json!({ "assignee": fixer.account_id })).await?.expect_status(200)?;
    assert_eq!(worker.call("POST", &format!("/api/tickets/{id}/accept"), None).await?.status, 403, "only the assignee accepts");
    fixer.call("POST", &format!("/api/tickets/{id}/accept"), None).await?.expect_status(200)?;
    street.post(&format!("/api/tickets/{id}/supervise"), json!({ "note": "请今天内修好" })).await?.expect_status(200)?;
    assert!(inbox_titles(&fixer).await?.iter().any(|t| t.starts_with("督办")));
    resident.post(&format!("/api/tickets/{id}/comment"), json!({ "note": "晚上很黑，谢谢" })).await?.expect_status(200)?;
    fixer.post(&format!("/api/tickets/{id}/resolve"), json!({ "note": "已更换灯泡" })).await?.expect_status(200)?;
    assert!(inbox_titles(&resident).await?.iter().any(|t| t.contains("已处理")), "the resident is asked to rate");
    assert_eq!(resident.post(&format!("/api/tickets/{id}/close"), json!({ "rating": 9 })).await?.status, 422);
    let closed = resident.post(&format!("/api/tickets/{id}/close"), json!({ "rating": 5, "feedback": "修得很快" })).await?.expect_status(200)?.json();
    assert_eq!(closed["rating"], 5);
    let detail = resident.get(&format!("/api/tickets/{id}")).await?.expect_status(200)?.json();
    let trace: Vec<&str> = detail["steps"].as_array().map(|s| s.iter().filter_map(|s| s["action"].as_str()).collect()).unwrap_or_default();
    assert_eq!(trace, ["created", "dispatched", "accepted", "supervised", "commented", "resolved", "closed"]);
    assert_eq!(detail["steps"][6]["note"], "满意度 5/5：修得很快");

    // To a department: whoever of the area's staff takes it on becomes the assignee.
    let report = host.import_csv("organisations", "xingfu", "名称,类型,网格,联系方式\n城管执法中队,执法部门,xingfu-g1,0570-1234567\n").await?;
    assert_eq!(report["status"], "done", "{report}");
    let orgs = host.operator().get("/api/base/organisations").await?.expect_status(200)?.json();
    let org = orgs.as_array().and_then(|o| o.iter().find(|o| o["name"] == "城管执法中队")).and_then(|o| o["id"].as_str()).context("organisation")?.to_string();
    let parking = worker
        .post("/api/tickets", json!({ "category": "environment", "title": "占道经营", "tenant": "xingfu-g1", "location": "幸福路口" }))
        .await?
        .expect_status(201)?
        .json();
    let parking_id = parking["id"].as_str().context("id")?.to_string();
    let both = worker.post(&format!("/api/tickets/{parking_id}/dispatch"), json!({ "assignee": fixer.account_id, "department": org })).await?;
    assert_eq!(both.status, 422, "{}", both.text);
    worker.post(&format!("/api/tickets/{parking_id}/dispatch"), json!({ "department": org })).await?.expect_status(200)?;
    assert_eq!(other.call("POST", &format!("/api/tickets/{parking_id}/accept"), None).await?.status, 404, "outside their area");
    let taken = fixer.call("POST", &format!("/api/tickets/{parking_id}/accept"), None).await?.expect_status(200)?.json();
    assert_eq!(taken["assignee_name"], "维修师傅（城管执法中队）");
    let trace = host.admin_get_ticket(&parking_id).await?;
    assert_eq!(trace["steps"][1]["note"], "派往部门：城管执法中队");

    // Overdue tickets climb the tree: grid → community → street → county, then stay
    // under supervision at the top.
    host.admin("POST", "/ticket-categories", Some(json!({ "id": "urgent-test", "name": "立即处理", "time_limit_minutes": 0 }))).await?.expect_status(200)?;
    let urgent = worker
        .post("/api/tickets", json!({ "category": "urgent-test", "title": "井盖缺失", "tenant": "xingfu-g1", "location": "3栋北侧" }))
        .await?
        .expect_status(201)?
        .json();
    let urgent_id = urgent["id"].as_str().context("id")?.to_string();
    wait_until("the ticket reaches the county", || async {
        let t = host.admin_get_ticket(&urgent_id).await?;
        Ok(t["ticket"]["level_tenant_id"] == "demo-county" && t["ticket"]["supervised"] == true)
    })
    .await?;
    let climbed = host.admin_get_ticket(&urgent_id).await?;
    let notes: Vec<&str> =
        climbed["steps"].as_array().map(|s| s.iter().filter(|s| s["action"] == "escalated").filter_map(|s| s["note"].as_str()).collect()).unwrap_or_default();
    assert!(notes.len() >= 4, "{notes:?}");
    assert!(notes[0].contains("幸福社区") && notes[1].contains("城关镇") && notes[2].contains("示范县"), "{notes:?}");
    assert!(inbox_titles(&street).await?.iter().any(|t| t.contains("超时升级")), "the street hears when it reaches them");
    Ok(())
}

trait AdminTickets {
    async fn admin_get_ticket(&self, id: &str) -> Result<Value>;
}

impl AdminTickets for TestHost {
    async fn admin_get_ticket(&self, id: &str) -> Result<Value> {
        Ok(self.operator().get(&format!("/api/tickets/{id}")).await?.expect_status(200)?.json())
    }
}

on_both_backends!(lone_elder_water_meter);
on_both_backends!(tickets_from_report_to_rating);
