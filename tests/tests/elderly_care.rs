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
    host.publish(&vendor, CARE, &["data", "identity", "base", "base:contacts", "devices", "devices:alarms", "tickets", "notify", "notify:sms"], &["xingfu"])
        .await?;
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
    // The staff's list leaves her contacts out (the host audits every read of them); her own
    // entry has them.
    let listed = call(&worker, "GET", "/elders", None).await?.expect_status(200)?.json();
    assert!(listed[0].get("contacts").is_none(), "{listed}");
    let one = call(&worker, "GET", &format!("/elders/{elder}"), None).await?.expect_status(200)?.json();
    assert_eq!(one["elder"]["contacts"][0]["phone"], "13900000099", "{one}");
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
    // neither the elder's address nor her daughter's name and phone stand in clear (the
    // contact itself is the host's, sealed in `resident_contacts`).
    let store = host.store().await?;
    let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM plugin_documents").fetch_all(&store.pool).await?;
    assert!(bodies.len() >= 3, "the archive, its alerts and the visit are stored: {}", bodies.len());
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
    // An organisation of another community does not serve this ticket's place.
    let elsewhere = host.import_csv("organisations", "heping", "名称,类型,网格,联系方式\n和平社区物业服务中心,物业,heping,0570-7654321\n").await?;
    assert_eq!(elsewhere["status"], "done", "{elsewhere}");
    let orgs = host.operator().get("/api/base/organisations").await?.expect_status(200)?.json();
    let other_org = orgs
        .as_array()
        .and_then(|o| o.iter().find(|o| o["name"] == "和平社区物业服务中心"))
        .and_then(|o| o["id"].as_str())
        .context("organisation")?
        .to_string();
    let refused = worker.post(&format!("/api/tickets/{parking_id}/dispatch"), json!({ "department": other_org })).await?;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.error_message().contains("does not serve"), "{}", refused.text);
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

/// 一键求助 and the elder's family, through the real Mosquitto: her own page (after her
/// consent to the plugin knowing her record), her emergency contacts (one list, the host's:
/// the page and the app show the same), a one-time code her daughter enters to follow her;
/// a fall reaches the daughter's page, inbox and phone. She presses 一键求助: an urgent ticket
/// for her grid, a text to her daughter, the duty line set for her community; pressing again
/// does not call twice. Refused: a guessed code, a stranger answering her alerts, staff
/// calling for help, a worker setting the duty line, the plugin once the county takes
/// `base:contacts` back (her page stays, without contacts). Her contacts are sealed at rest.
async fn one_tap_help_and_family(backend: Backend) -> Result<()> {
    let Some(lab) = Lab::start(backend, |c| c.tickets.sweep_seconds = 3600).await? else { return Ok(()) };
    let host = &lab.host;
    let (house, address) = lone_elder_home(host).await?;
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    let grants = ["data", "identity", "identity:resident-record", "base", "base:contacts", "devices", "devices:alarms", "tickets", "notify", "notify:sms"];
    host.publish(&vendor, CARE, &grants, &["xingfu"]).await?;
    let worker = host.person(staff("13900000011", "赵社工", "community-worker", "xingfu")).await?;
    call(&worker, "POST", "/elders/sync", None).await?.expect_status(200)?;
    let elder_id = call(&worker, "GET", "/elders", None).await?.expect_status(200)?.json()[0]["id"].as_str().context("elder id")?.to_string();
    call(&worker, "POST", &format!("/elders/{elder_id}/consent"), Some(json!({ "given_by": "本人" }))).await?.expect_status(200)?;
    let resident = |phone: &str, name: &str| json!({ "kind": "resident", "phone": phone, "display_name": name, "password": PASSWORD, "tenant_id": "xingfu" });
    // Her account's phone is the one in her base record (lone_elder_home).
    let elder = host.person(resident("13800000031", "王阿姨")).await?;
    let daughter = host.person(resident("13900000099", "王小红")).await?;
    let stranger = host.person(resident("13900000098", "路人甲")).await?;

    // Her page needs her consent to the plugin knowing which record is hers.
    let asked = call(&elder, "GET", "/mine", None).await?;
    assert_eq!((asked.status, asked.json()["error"]["code"].as_str()), (403, Some("consent-required")), "{}", asked.text);
    elder.post("/api/consents/elderly-care", json!({ "fields": ["resident-record"] })).await?.expect_status(204)?;
    let mine = call(&elder, "GET", "/mine", None).await?.expect_status(200)?.json();
    assert_eq!((mine["elder"]["id"].as_str(), mine["elder"]["address"].as_str()), (Some(elder_id.as_str()), Some(address.as_str())), "{mine}");
    assert_eq!(mine["contacts"], json!([]));
    assert_eq!(call(&elder, "GET", "/viewer", None).await?.expect_status(200)?.json()["helper"], false, "a resident gets no care desk");
    assert_eq!(call(&elder, "GET", "/elders", None).await?.status, 403, "nor the archive");

    // Her contacts: bad ones refused, nothing lost; the app shows what the page saved.
    let bad = call(&elder, "PUT", "/mine/contacts", Some(json!({ "contacts": [{ "name": "王小红", "relation": "女儿", "phone": "12345" }] }))).await?;
    assert_eq!(bad.status, 400, "{}", bad.text);
    let daughter_contact = json!({ "name": "王小红", "relation": "女儿", "phone": "13900000099" });
    call(&elder, "PUT", "/mine/contacts", Some(json!({ "contacts": [daughter_contact] }))).await?.expect_status(200)?;
    let in_app = elder.get("/api/me/contacts").await?.expect_status(200)?.json();
    assert_eq!(in_app["contacts"], json!([daughter_contact]), "one list of contacts: {in_app}");
    let too_many: Vec<Value> = (0..6).map(|i| json!({ "name": format!("联系人{i}"), "phone": format!("1390000001{i}") })).collect();
    assert_eq!(elder.call("PUT", "/api/me/contacts", Some(json!({ "contacts": too_many }))).await?.status, 422);
    assert_eq!(elder.get("/api/me/contacts").await?.json()["contacts"], json!([daughter_contact]), "a refused change loses nothing");
    let no_record = stranger.get("/api/me/contacts").await?;
    assert_eq!((no_record.status, no_record.json()["error"]["code"].as_str()), (409, Some("no-base-record")), "{}", no_record.text);

    // The code: made by her, entered by her daughter; a guess counts against the guesser.
    let code = call(&elder, "POST", "/mine/invite", None).await?.expect_status(201)?.json()["code"].as_str().context("code")?.to_string();
    assert_eq!(code.len(), 8);
    let wrong = if code == "00000000" { "11111111" } else { "00000000" };
    assert_eq!(call(&stranger, "POST", "/family", Some(json!({ "code": wrong }))).await?.status, 404);
    for _ in 0..4 {
        call(&stranger, "POST", "/family", Some(json!({ "code": wrong }))).await?;
    }
    let locked = call(&stranger, "POST", "/family", Some(json!({ "code": code }))).await?;
    assert_eq!(locked.status, 429, "after five wrong codes even the right one waits: {}", locked.text);
    let joined = call(&daughter, "POST", "/family", Some(json!({ "code": code }))).await?.expect_status(201)?.json();
    assert_eq!(joined["name"], "王阿姨");
    assert_eq!(call(&daughter, "POST", "/family", Some(json!({ "code": code }))).await?.status, 404, "a code works once");
    assert!(inbox_titles(&elder).await?.iter().any(|t| t.contains("家人已关注")), "she is told who follows her");
    let mine = call(&elder, "GET", "/mine", None).await?.expect_status(200)?.json();
    assert_eq!(mine["followers"][0]["name"], "王小红", "{mine}");

    // A fall: her daughter's page, inbox and phone have it; a stranger cannot answer it.
    lab.register("fall-401", "fall-button", &format!("house:{house}")).await?;
    lab.rule(instant_rule("fall", "跌倒求助", "fall-button", "pressed")).await?;
    lab.send("fall-401", json!({ "pressed": 1 })).await?;
    wait_until("the daughter's page shows the fall", || async {
        let family = call(&daughter, "GET", "/family", None).await?.expect_status(200)?.json();
        Ok(family["following"][0]["alerts"].as_array().is_some_and(|a| a.iter().any(|a| a["kind"] == "fall")))
    })
    .await?;
    assert!(inbox_titles(&daughter).await?.iter().any(|t| t.contains("跌倒求助")), "her inbox");
    wait_until("her phone", || async { Ok(sms_to(host, "13900000099").iter().any(|t| t.contains("跌倒"))) }).await?;
    let alert = call(&daughter, "GET", "/family", None).await?.json()["following"][0]["alerts"][0]["id"].as_str().context("alert")?.to_string();
    assert_eq!(call(&stranger, "POST", &format!("/alerts/{alert}/acknowledge"), None).await?.status, 403, "a stranger answers nothing");
    assert_eq!(call(&stranger, "GET", "/family", None).await?.json()["following"], json!([]));
    let her_alerts = call(&elder, "GET", "/mine", None).await?.json();
    assert!(her_alerts["alerts"][0]["history"].as_array().is_some_and(|h| h.iter().any(|l| l.as_str().is_some_and(|l| l.contains("派单")))), "{her_alerts}");

    // 一键求助, with the duty line her community set (a worker may not set one).
    let refused = worker.call("PUT", "/admin/duty-lines/xingfu", Some(json!({ "phone": "0571-1" }))).await?;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(host.admin("PUT", "/duty-lines/xingfu", Some(json!({ "phone": "call me" }))).await?.status, 422);
    host.admin("PUT", "/duty-lines/demo-county", Some(json!({ "phone": "0571-12345" }))).await?.expect_status(200)?;
    host.admin("PUT", "/duty-lines/xingfu", Some(json!({ "phone": "0571-88886666" }))).await?.expect_status(200)?;
    let plan = elder.get("/api/help").await?.expect_status(200)?.json();
    assert_eq!(plan["duty_line"]["phone"], "0571-88886666", "the nearest line above her: {plan}");
    let texts_before = sms_to(host, "13900000099").len();
    // Two presses at the same moment: one call, one ticket.
    let (first, second) = tokio::join!(elder.post("/api/help", json!({})), elder.post("/api/help", json!({})));
    let (first, second) = (first?, second?);
    let mut statuses = [first.status, second.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 201], "{} / {}", first.text, second.text);
    assert_eq!(first.json()["ticket"]["id"], second.json()["ticket"]["id"]);
    let answer = if first.status == 201 { first.json() } else { second.json() };
    assert_eq!((answer["ticket"]["category"].as_str(), answer["ticket"]["tenant_id"].as_str()), (Some("emergency"), Some("xingfu-g1")), "{answer}");
    assert_eq!(answer["texted"], json!(["王小红"]));
    assert_eq!(answer["ticket"]["location"].as_str(), Some(format!("幸福社区{address}").as_str()));
    let text = sms_to(host, "13900000099").pop().context("the help text")?;
    assert!(text.contains("一键求助") && text.contains(&address) && text.contains("0571-88886666"), "{text}");
    let again = elder.post("/api/help", json!({})).await?.expect_status(200)?.json();
    assert_eq!((again["repeated"].as_bool(), again["ticket"]["id"].clone()), (Some(true), answer["ticket"]["id"].clone()));
    assert_eq!(sms_to(host, "13900000099").len(), texts_before + 1, "one press, one text");
    let board = worker.get("/api/tickets?status=open").await?.expect_status(200)?.json();
    assert!(board["tickets"].as_array().is_some_and(|t| t.iter().any(|t| t["id"] == answer["ticket"]["id"])), "the community's board has it");
    assert_eq!(worker.post("/api/help", json!({})).await?.status, 403, "staff call for help by phone");

    // The county takes `base:contacts` back: the plugin reads no contacts any more, and the
    // refusal is in the audit log beside the reads.
    let installation = format!("{CARE}@xingfu");
    let fewer: Vec<&str> = grants.iter().copied().filter(|g| *g != "base:contacts").collect();
    host.admin("PUT", &format!("/installations/{installation}/grants"), Some(json!({ "grants": fewer }))).await?.expect_status(200)?;
    let denied = call(&elder, "PUT", "/mine/contacts", Some(json!({ "contacts": [] }))).await?;
    assert_eq!((denied.status, denied.json()["error"]["code"].as_str()), (403, Some("permission-denied")), "{}", denied.text);
    let page = call(&elder, "GET", "/mine", None).await?.expect_status(200)?.json();
    assert_eq!((page["contacts"].clone(), page["contacts_available"].as_bool()), (json!([]), Some(false)), "her page still works, without contacts: {page}");
    assert_eq!(elder.get("/api/me/contacts").await?.json()["contacts"], json!([daughter_contact]), "the refused call changed nothing");
    let store = host.store().await?;
    let outcomes: Vec<String> = sqlx::query_scalar("SELECT outcome FROM audit_log WHERE fields LIKE 'emergency-contacts%'").fetch_all(&store.pool).await?;
    assert!(outcomes.iter().any(|o| o == "allowed") && outcomes.iter().any(|o| o == "denied"), "{outcomes:?}");

    // A copied database: her contacts are sealed.
    let sealed: Vec<String> = sqlx::query_scalar("SELECT contacts FROM resident_contacts").fetch_all(&store.pool).await?;
    assert_eq!(sealed.len(), 1);
    assert!(sealed.iter().all(|c| c.starts_with("enc1:") && !c.contains("13900000099") && !c.contains("王小红")), "{sealed:?}");
    Ok(())
}

on_both_backends!(one_tap_help_and_family);
