//! Devices end to end through the real Mosquitto: devices publish telemetry, rules raise
//! alarms with the device's location, the alarms reach a plugin's `on-event` in order, and
//! nothing acknowledged is lost across a restart; bad messages are counted and refused
//! without disturbing other devices; commands wait for the device's acknowledgement;
//! dead letters; HTTP ingest. SQLite and PostgreSQL.
use anyhow::{Context, Result};
use linli_tests::lab::*;
use linli_tests::*;
use rumqttc::QoS;
use serde_json::{json, Value};

const LISTENER: &str = "test-listener@xingfu";

/// A lab with the listener plugin installed at 幸福社区.
async fn lab(backend: Backend, tune: impl FnOnce(&mut linli_host::config::Config)) -> Result<Option<Lab>> {
    let Some(lab) = Lab::start(backend, tune).await? else { return Ok(None) };
    let vendor = Vendor::new("linli-tests")?;
    lab.host.trust(&vendor).await?;
    lab.host.publish(&vendor, "listener", &["data", "devices", "devices:alarms", "devices:command"], &["xingfu"]).await?;
    Ok(Some(lab))
}

async fn listener_log(lab: &Lab) -> Result<Value> {
    Ok(lab.host.plugin("GET", "xingfu", "test-listener/log").await?.expect_status(200)?.json())
}

/// Events the listener recorded, of `kind` prefix (`alarm.` leaves out schedule ticks).
async fn events(lab: &Lab, kind: &str) -> Result<Vec<Value>> {
    let log = listener_log(lab).await?;
    Ok(log["events"].as_array().cloned().unwrap_or_default().into_iter().filter(|e| e["kind"].as_str().is_some_and(|k| k.starts_with(kind))).collect())
}

async fn idle_water_meter_to_plugin(backend: Backend) -> Result<()> {
    let Some(lab) = lab(backend, |_| {}).await? else { return Ok(()) };
    let (house, address) = lone_elder_home(&lab.host).await?;
    let registered = lab.register("wm-401", "water-meter", &format!("house:{house}")).await?;
    assert_eq!(registered["device"]["location"]["tenant"], "xingfu-g1");
    assert_eq!(registered["device"]["location"]["label"], address);
    assert!(registered["secret"].as_str().is_some_and(|s| s.len() >= 32), "{registered}");
    lab.register("smoke-7", "smoke-detector", "grid:heping-g1").await?;
    lab.rule(idle_water_rule(None)).await?;
    lab.rule(instant_rule("smoke", "烟雾报警", "smoke-detector", "smoke")).await?;

    // Thirteen hours of an idle meter on the accelerated clock, after some morning use.
    lab.send("wm-401", json!({ "ts": DAY0, "flow": 2.5 })).await?;
    for hour in 1..=11 {
        lab.send("wm-401", json!({ "ts": DAY0 + hour * HOUR_MS, "flow": 0.0 })).await?;
    }
    wait_until("the eleventh hour is stored", || async { Ok(lab.latest("wm-401").await?["latest_at"] == DAY0 + 11 * HOUR_MS) }).await?;
    assert!(lab.alarms("active").await?.is_empty(), "11 idle hours raise nothing");
    for hour in 12..=14 {
        lab.send("wm-401", json!({ "ts": DAY0 + hour * HOUR_MS, "flow": 0.0 })).await?;
    }
    wait_until("the alarm is raised", || async { Ok(lab.alarms("active").await?.len() == 1) }).await?;
    let alarm = lab.alarms("active").await?.remove(0);
    assert_eq!(alarm["rule_id"], "water-idle");
    assert_eq!(alarm["device_id"], "wm-401");
    assert_eq!(alarm["severity"], "major");
    assert_eq!(alarm["since"], DAY0 + HOUR_MS, "the idle window began with the first idle reading");
    assert_eq!(alarm["location"]["label"], address, "an alarm carries the device's location");
    let alarm_id = alarm["id"].as_str().context("alarm id")?.to_string();

    // The plugin hears of it, with the location, and acknowledges it (devices:alarms).
    wait_until("the plugin receives alarm.raised", || async { Ok(!events(&lab, "alarm.").await?.is_empty()) }).await?;
    let raised = events(&lab, "alarm.").await?.remove(0);
    assert_eq!(raised["kind"], "alarm.raised");
    assert_eq!(raised["subject"], alarm_id.as_str());
    assert_eq!(raised["tenant"], "xingfu-g1");
    assert_eq!(raised["payload"]["location"]["label"], address);
    let in_plugin = lab.host.plugin("GET", "xingfu", "test-listener/alarms?status=active").await?.expect_status(200)?.json();
    assert_eq!(in_plugin.as_array().map(Vec::len), Some(1), "{in_plugin}");
    let acked = lab.host.plugin("POST", "xingfu", &format!("test-listener/alarms/{alarm_id}/acknowledge")).await?.expect_status(200)?.json();
    assert_eq!(acked["status"], "acknowledged");

    // Use again clears it; the smoke detector in another community stays out of this
    // plugin's sight (installed at 幸福社区 only).
    lab.send("wm-401", json!({ "ts": DAY0 + 15 * HOUR_MS, "flow": 1.2 })).await?;
    lab.send("smoke-7", json!({ "smoke": true })).await?;
    wait_until("the water alarm clears and the smoke alarm rises", || async {
        Ok(lab.alarms("cleared").await?.len() == 1 && lab.alarms("active").await?.len() == 1)
    })
    .await?;
    assert_eq!(lab.alarms("active").await?[0]["location"]["tenant"], "heping-g1");
    wait_until("the plugin receives the three events of its alarm", || async { Ok(events(&lab, "alarm.").await?.len() == 3) }).await?;
    let events = events(&lab, "alarm.").await?;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["alarm.raised", "alarm.acknowledged", "alarm.cleared"]);
    assert!(events.iter().all(|e| e["subject"] == alarm_id.as_str()), "nothing from 和平社区 reaches a 幸福社区 installation");
    let not_mine = lab.host.plugin("GET", "xingfu", "test-listener/devices").await?.expect_status(200)?.json();
    assert_eq!(not_mine.as_array().map(|d| d.iter().map(|d| d["id"].clone()).collect::<Vec<_>>()), Some(vec![json!("wm-401")]));

    // The meter shows online, with its latest reading; the plugin sees the same. Readings
    // are written in batches, apart from the alarm's events: wait for the batch.
    wait_until("the latest reading is recorded", || async { Ok(lab.latest("wm-401").await?["latest"]["flow"] == 1.2) }).await?;
    wait_until("last seen is recorded", || async { Ok(lab.latest("wm-401").await?["device"]["online"] == true) }).await?;
    let latest = lab.host.plugin("GET", "xingfu", "test-listener/devices/wm-401/latest").await?.expect_status(200)?.json();
    assert_eq!(latest["flow"], 1.2);
    Ok(())
}

async fn bad_messages_are_refused_and_counted(backend: Backend) -> Result<()> {
    let Some(lab) = lab(backend, |_| {}).await? else { return Ok(()) };
    lab.register("door-1", "door-sensor", "grid:xingfu-g2").await?;
    let topic = |device: &str| format!("{}/devices/{device}/telemetry", lab.prefix);
    lab.send_raw(&topic("door-1"), b"{not json".to_vec()).await?;
    lab.send_raw(&topic("door-1"), br#"["an", "array"]"#.to_vec()).await?;
    lab.send_raw(&topic("door-1"), format!(r#"{{"open": 1, "pad": "{}"}}"#, "x".repeat(4096)).into_bytes()).await?;
    lab.send("ghost-9", json!({ "open": 1 })).await?;
    lab.send_raw(&format!("{}/devices/door-1/elsewhere", lab.prefix), b"{}".to_vec()).await?;
    for i in 0..20 {
        lab.send("door-1", json!({ "ts": DAY0 + i, "open": i % 2 })).await?;
    }
    wait_until("every good message is taken and every bad one counted", || async {
        Ok(lab.metric("accepted").await? == 20
            && lab.metric("malformed").await? == 2
            && lab.metric("oversized").await? == 1
            && lab.metric("unknown-device").await? == 1)
    })
    .await?;
    wait_until("the good device's last reading is stored", || async { Ok(lab.latest("door-1").await?["latest_at"] == DAY0 + 19) }).await?;
    assert_eq!(lab.latest("door-1").await?["latest"]["open"], 1);
    let unknown = lab.host.admin("GET", "/devices/ghost-9", None).await?;
    assert_eq!(unknown.status, 404, "an unknown device is not registered by writing to its topic");

    // Bad rules and registrations get clear errors and change nothing.
    let overlap = lab.host.admin("POST", "/alarm-rules", Some(json!({ "id": "bad", "name": "x", "tenant_id": "xingfu", "device_type": "door-sensor", "metric": "open", "op": ">=", "threshold": 1, "clear_op": "<=", "clear_threshold": 1, "severity": "info" }))).await?;
    assert_eq!(overlap.status, 422);
    assert!(overlap.error_message().contains("overlap"), "{}", overlap.text);
    let nowhere = lab.host.admin("POST", "/devices", Some(json!({ "id": "wm-x", "device_type": "water-meter", "location": "house:no-such-house" }))).await?;
    assert_eq!(nowhere.status, 422);
    assert!(nowhere.error_message().contains("does not exist"), "{}", nowhere.text);
    assert!(lab.host.admin("GET", "/alarm-rules", None).await?.json()["rules"].as_array().is_some_and(Vec::is_empty));
    Ok(())
}

async fn restart_loses_nothing(backend: Backend) -> Result<()> {
    // The plugin will be down for a while: no dead-lettering in this story.
    let Some(mut lab) = lab(backend, |c| c.events.max_attempts = 10_000).await? else { return Ok(()) };
    lab.register("smoke-1", "smoke-detector", "grid:xingfu-g1").await?;
    lab.register("smoke-2", "smoke-detector", "grid:xingfu-g2").await?;
    lab.rule(instant_rule("smoke", "烟雾报警", "smoke-detector", "smoke")).await?;
    // The plugin is down: events pile up in the outbox.
    lab.host.plugin("POST", "xingfu", "test-listener/refuse").await?.expect_status(200)?;
    lab.send("smoke-1", json!({ "smoke": 1 })).await?;
    wait_until("the first alarm is raised", || async { Ok(lab.alarms("active").await?.len() == 1) }).await?;
    lab.send("smoke-2", json!({ "smoke": 1 })).await?;
    wait_until("the second alarm is raised", || async { Ok(lab.alarms("active").await?.len() == 2) }).await?;
    lab.send("smoke-1", json!({ "smoke": 0 })).await?;
    wait_until("the first alarm clears", || async { Ok(lab.alarms("cleared").await?.len() == 1) }).await?;
    wait_until("the plugin refused deliveries", || async { Ok(listener_log(&lab).await?["refused"].as_u64().unwrap_or(0) >= 2) }).await?;
    assert!(events(&lab, "alarm.").await?.is_empty());

    let device = lab.device.clone();
    let (prefix, received) = (lab.prefix.clone(), lab.received);
    // While the host is down, smoke-2 reports smoke again, then its end: the broker keeps
    // both for the host's telemetry session and hands them over after the restart.
    let topic = format!("{prefix}/devices/smoke-2/telemetry");
    let host = lab
        .host
        .restart_after(async {
            for smoke in [1, 0] {
                device.publish(&topic, QoS::AtLeastOnce, false, json!({ "smoke": smoke }).to_string().into_bytes()).await?;
            }
            Ok(())
        })
        .await?;
    lab = Lab { host, prefix, device, received };

    // The open alarm survived the restart: the repeated smoke raised no second alarm, and the
    // reading sent while the host was down cleared it.
    wait_until("the surviving alarm clears with the reading sent while the host was down", || async { Ok(lab.alarms("cleared").await?.len() == 2) }).await?;
    assert!(lab.alarms("active").await?.is_empty(), "no duplicate alarm after the restart");

    // The plugin comes back: everything arrives, once each, in the order it happened.
    lab.host.plugin("POST", "xingfu", "test-listener/accept").await?.expect_status(200)?;
    wait_until("all four alarm events are delivered", || async { Ok(events(&lab, "alarm.").await?.len() == 4) }).await?;
    let events = events(&lab, "alarm.").await?;
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    let story: Vec<String> =
        events.iter().map(|e| format!("{} {}", e["kind"].as_str().unwrap_or(""), e["payload"]["device_id"].as_str().unwrap_or(""))).collect();
    assert_eq!(story, ["alarm.raised smoke-1", "alarm.raised smoke-2", "alarm.cleared smoke-1", "alarm.cleared smoke-2"]);
    let pending = lab.host.admin("GET", "/events/deliveries?status=pending", None).await?.json();
    let alarm_pending = pending["deliveries"].as_array().map(|d| d.iter().filter(|d| d["kind"] != "schedule").count());
    assert_eq!(alarm_pending, Some(0), "{pending}");
    Ok(())
}

async fn dead_letters_and_schedules(backend: Backend) -> Result<()> {
    let Some(lab) = lab(backend, |c| c.events.max_attempts = 3).await? else { return Ok(()) };
    lab.register("fall-1", "fall-button", "grid:xingfu-g1").await?;
    lab.rule(json!({ "id": "fall", "name": "跌倒求助", "tenant_id": "xingfu", "device_type": "fall-button", "metric": "pressed", "op": "==", "threshold": 1, "clear_op": "==", "clear_threshold": 0, "severity": "critical" })).await?;
    // Schedule ticks arrive by themselves (every second).
    wait_until("a schedule tick arrives", || async { Ok(!events(&lab, "schedule").await?.is_empty()) }).await?;
    assert_eq!(events(&lab, "schedule").await?[0]["subject"], "tick");

    // Events about fall-1 are refused for good (a plugin bug): after 3 tries each is
    // dead-lettered, and the events after it are not held up.
    lab.host.plugin("POST", "xingfu", "test-listener/poison/fall-1").await?.expect_status(200)?;
    lab.send("fall-1", json!({ "pressed": true })).await?;
    wait_until("the fall alarm is raised", || async { Ok(lab.alarms("active").await?.len() == 1) }).await?;
    let alarm = lab.alarms("active").await?[0]["id"].as_str().context("id")?.to_string();
    let dead_row = || async {
        let dead = lab.host.admin("GET", "/events/deliveries?status=dead", None).await?.json();
        Ok::<_, anyhow::Error>(dead["deliveries"].as_array().and_then(|d| d.iter().find(|d| d["subject"] == alarm.as_str()).cloned()))
    };
    wait_until("the poisoned event is dead-lettered", || async { Ok(dead_row().await?.is_some()) }).await?;
    let row = dead_row().await?.context("dead row")?;
    assert_eq!(row["attempts"], 3, "{row}");
    assert_eq!(row["kind"], "alarm.raised");
    assert!(row["last_error"].as_str().is_some_and(|e| e.contains("on purpose")), "{row}");
    let seq = row["seq"].as_u64().context("seq")?;
    wait_until("events after the dead letter arrive", || async { Ok(events(&lab, "schedule").await?.iter().any(|e| e["seq"].as_u64() > Some(seq))) }).await?;
    assert!(events(&lab, "alarm.").await?.is_empty());

    // Fixed: the operator puts it back in the queue and it arrives.
    let installation = row["installation_id"].as_str().context("installation")?.to_string();
    assert_eq!(installation, LISTENER);
    lab.host.plugin("POST", "xingfu", "test-listener/cure").await?.expect_status(200)?;
    let retried = lab.host.admin("POST", &format!("/events/deliveries/{installation}/{seq}/retry"), None).await?;
    assert_eq!(retried.status, 204, "{}", retried.text);
    wait_until("the retried event arrives", || async { Ok(events(&lab, "alarm.").await?.iter().any(|e| e["subject"] == alarm.as_str())) }).await?;
    let again = lab.host.admin("POST", &format!("/events/deliveries/{installation}/{seq}/retry"), None).await?;
    assert_eq!(again.status, 404, "only dead letters are retried");
    Ok(())
}

async fn commands_and_http_ingest(backend: Backend) -> Result<()> {
    let Some(mut lab) = lab(backend, |_| {}).await? else { return Ok(()) };
    let registered = lab.register("park-3", "parking-sensor", "grid:xingfu-g1").await?;
    let secret = registered["secret"].as_str().context("secret")?.to_string();
    // A device that answers commands.
    let responder = lab.device.clone();
    let prefix = lab.prefix.clone();
    let mut received = std::mem::replace(&mut lab.received, tokio::sync::mpsc::unbounded_channel().1);
    let answering = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some((topic, payload)) = received.recv().await {
            let message: Value = serde_json::from_slice(&payload).unwrap_or_default();
            seen.push(message.clone());
            if message["command"]["reply"] == false {
                continue;
            }
            let device = topic.split('/').nth(2).unwrap_or_default().to_string();
            let ack = json!({ "id": message["id"], "ok": true, "did": message["command"] });
            let _ = responder.publish(format!("{prefix}/devices/{device}/ack"), QoS::AtLeastOnce, false, ack.to_string().into_bytes()).await;
            if seen.len() >= 3 {
                break;
            }
        }
        seen
    });
    let ack =
        lab.host.admin("POST", "/devices/park-3/commands", Some(json!({ "command": { "led": "red" }, "timeout_ms": 5000 }))).await?.expect_status(200)?.json();
    assert_eq!(ack["ok"], true);
    assert_eq!(ack["did"]["led"], "red");
    let silent = lab.host.admin("POST", "/devices/park-3/commands", Some(json!({ "command": { "reply": false }, "timeout_ms": 300 }))).await?;
    assert_eq!(silent.status, 504, "{}", silent.text);
    assert!(silent.error_message().contains("did not acknowledge"), "{}", silent.text);
    // A plugin with devices:command does the same.
    let via_plugin =
        lab.host.client.post(format!("{}/t/xingfu/p/test-listener/devices/park-3/command", lab.host.url)).json(&json!({ "led": "green" })).send().await?;
    let via_plugin = Reply::from(via_plugin).await?.expect_status(200)?.json();
    assert_eq!(via_plugin["did"]["led"], "green");
    let seen = answering.await?;
    assert_eq!(seen.len(), 3);

    // HTTP ingest: the device's secret, else 401; bad bodies get 400/413.
    let url = format!("{}/api/devices/park-3/telemetry", lab.host.url);
    let ok = lab.host.client.post(&url).bearer_auth(&secret).body(json!({ "ts": DAY0, "occupied": true }).to_string()).send().await?;
    assert_eq!(ok.status(), 202);
    let wrong = lab.host.client.post(&url).bearer_auth("not-the-secret").body("{\"occupied\": 1}").send().await?;
    assert_eq!(wrong.status(), 401);
    let bad = Reply::from(lab.host.client.post(&url).bearer_auth(&secret).body("occupied").send().await?).await?;
    assert_eq!(bad.status, 400);
    assert!(bad.error_message().contains("JSON"), "{}", bad.text);
    let big = lab.host.client.post(&url).bearer_auth(&secret).body(format!("{{\"occupied\": 1, \"pad\": \"{}\"}}", "x".repeat(2048))).send().await?;
    assert_eq!(big.status(), 413);
    wait_until("the HTTP reading is stored", || async { Ok(lab.latest("park-3").await?["latest"]["occupied"] == true) }).await?;
    Ok(())
}

on_both_backends!(idle_water_meter_to_plugin);
on_both_backends!(bad_messages_are_refused_and_counted);
on_both_backends!(restart_loses_nothing);
on_both_backends!(dead_letters_and_schedules);
on_both_backends!(commands_and_http_ingest);
