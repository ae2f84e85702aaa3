//! Two `linli serve` replicas on one database (issue 8, scale-out, first part): what an
//! operator changes through one replica — installs, grants, uninstalls, the tenant tree,
//! alarm rules — is served by the other within seconds, and a session signed in on one
//! works on the other, also after a key rotation. SQLite and PostgreSQL. And device ingest:
//! one replica evaluates readings at a time, also when it is killed with an alarm open.
use anyhow::{Context, Result};
use linli_tests::lab::{instant_rule, wait_until, Lab};
use linli_tests::serve::Serve;
use linli_tests::*;
use serde_json::json;

async fn status(client: &reqwest::Client, url: String) -> Result<u16> {
    Ok(client.get(url).send().await?.status().as_u16())
}

async fn changes_on_one_replica_reach_the_other(backend: Backend) -> Result<()> {
    // Replicas behind one address share the public URL: it is the issuer of sessions.
    let Some(a) = TestHost::start_tuned(backend, |c| c.public_url = Some("http://linli.test".into())).await? else { return Ok(()) };
    let b = a.replica().await?;
    let client = reqwest::Client::new();
    let greet = |host: &TestHost| format!("{}/t/xingfu/p/hello/greet?name=x", host.url);
    let visits = |host: &TestHost| format!("{}/t/xingfu/p/hello/visits", host.url);

    // Installed through A: B serves it.
    let vendor = Vendor::new("linli")?;
    a.trust(&vendor).await?;
    a.publish(&vendor, "hello", &["data", "identity"], &["xingfu"]).await?;
    wait_until("replica B serves the plugin installed through A", || async { Ok(status(&client, greet(&b)).await? == 200) }).await?;

    // Signed in on A, known on B.
    let resident = a
        .person(json!({ "kind": "resident", "phone": "13900000051", "display_name": "王阿姨", "password": "replica-test-2026", "tenant_id": "xingfu" }))
        .await?;
    let me: serde_json::Value = client.get(format!("{}/api/me", b.url)).bearer_auth(&resident.token).send().await?.json().await?;
    assert_eq!(me["display_name"], "王阿姨", "{me}");

    // Keys rotated through A: sessions A signs with the new key are known on B.
    a.admin("POST", "/signing-keys/rotate", None).await?.expect_status(200)?;
    let login = client.post(format!("{}/api/auth/login", a.url)).json(&json!({ "phone": "13900000051", "password": "replica-test-2026" })).send().await?;
    let fresh = Reply::from(login).await?.expect_status(200)?.json()["access_token"].as_str().unwrap_or_default().to_string();
    wait_until("replica B verifies sessions signed with A's new key", || async {
        Ok(client.get(format!("{}/api/me", b.url)).bearer_auth(&fresh).send().await?.status().as_u16() == 200)
    })
    .await?;

    // Data store revoked through B: A refuses it.
    a.plugin("GET", "xingfu", "hello/visits").await?.expect_status(200)?;
    b.admin("PUT", "/installations/hello@xingfu/grants", Some(json!({ "grants": ["identity"] }))).await?.expect_status(200)?;
    wait_until("replica A drops the revoked grant", || async { Ok(status(&client, visits(&a)).await? == 403) }).await?;

    // A new community added through A: B knows it (and can install there).
    a.admin("POST", "/tenants", Some(json!({ "tenants": [{ "id": DEMO_COUNTY, "name": "示范县", "children": [{ "id": "chengguan", "name": "城关镇", "children": [{ "id": "xinyuan", "name": "新苑社区" }] }] }] })))
        .await?
        .expect_status(200)?;
    wait_until("replica B knows the new community", || async { Ok(b.operator().get("/api/dashboard?tenant=xinyuan").await?.status == 200) }).await?;
    b.install("hello", "0.1.0", "xinyuan", &["data"], json!({})).await?.expect_status(201)?;
    wait_until("replica A serves the new community", || async { Ok(status(&client, format!("{}/t/xinyuan/p/hello/visits", a.url)).await? == 200) }).await?;

    // An alarm rule set through A is in force on B.
    let rule = instant_rule("smoke", "烟雾报警", "smoke-detector", "smoke");
    a.admin("POST", "/alarm-rules", Some(rule)).await?.expect_status(200)?;
    wait_until("replica B has the rule", || async { Ok(b.admin("GET", "/alarm-rules", None).await?.json()["rules"].as_array().is_some_and(|r| r.len() == 1)) })
        .await?;

    // Uninstalled through B: A stops serving.
    b.admin("DELETE", "/installations/hello@xingfu", None).await?;
    wait_until("replica A stops serving the uninstalled plugin", || async { Ok(status(&client, greet(&a)).await? == 404) }).await?;
    b.stop().await;
    a.stop().await;
    Ok(())
}
on_both_backends!(changes_on_one_replica_reach_the_other);

/// Two replicas on one broker: one at a time evaluates device readings (the holder of the
/// ingest lease), so an alarm is raised once; when it stops, the other takes over with the
/// open alarm and clears it.
async fn one_replica_evaluates_device_readings(backend: Backend) -> Result<()> {
    let Some(lab) = Lab::start(backend, |c| c.public_url = Some("http://linli.test".into())).await? else { return Ok(()) };
    let b = lab.host.replica().await?;
    lab.register("smoke-1", "smoke-detector", "grid:xingfu-g1").await?;
    let rule = instant_rule("smoke", "烟雾报警", "smoke-detector", "smoke");
    lab.rule(rule).await?;
    wait_until("replica B has the rule", || async { Ok(b.admin("GET", "/alarm-rules", None).await?.json()["rules"].as_array().is_some_and(|r| r.len() == 1)) })
        .await?;
    let alarms = |status: &'static str| {
        let b = &b;
        async move {
            Ok::<_, anyhow::Error>(b.admin("GET", &format!("/alarms?status={status}"), None).await?.json()["alarms"].as_array().cloned().unwrap_or_default())
        }
    };
    lab.send("smoke-1", json!({ "smoke": 1 })).await?;
    wait_until("the alarm is raised", || async { Ok(alarms("active").await?.len() == 1) }).await?;
    lab.send("smoke-1", json!({ "smoke": 1 })).await?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(alarms("active").await?.len(), 1, "one alarm, not one per replica");

    // The replica that evaluates stops; the other takes over and knows the open alarm.
    let Lab { host: a, prefix, device, .. } = lab;
    a.stop().await;
    let send = |payload: serde_json::Value| {
        let (device, topic) = (device.clone(), format!("{prefix}/devices/smoke-1/telemetry"));
        async move { device.publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.to_string().into_bytes()).await }
    };
    wait_until("replica B clears the alarm A raised", || async {
        send(json!({ "smoke": 0 })).await?;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        Ok(alarms("cleared").await?.len() == 1)
    })
    .await?;
    assert_eq!(alarms("active").await?.len(), 0);
    b.stop().await;
    Ok(())
}
on_both_backends!(one_replica_evaluates_device_readings);

/// Two real `linli serve` processes on one PostgreSQL and the test broker; the one that
/// evaluates device readings is killed (SIGKILL) while an alarm it raised is open. The
/// other takes the ingest over once the dead one's lease has run out and clears that alarm
/// with the one reading a device sent while neither evaluated telemetry: one alarm in all,
/// and the plugin subscribed to alarms recorded one `alarm.raised` and one `alarm.cleared` —
/// nothing the dead replica had acknowledged is lost, no reading sent in the gap is lost,
/// nothing is doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_with_an_open_alarm() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let Some(database_url) = database_url(Backend::Postgres, temp.path()).await? else { return Ok(()) };
    let Some(broker) = mqtt_url().await? else { return Ok(()) };
    let prefix = format!("k{}", linli_tests::lab::unique());
    let replica = |name: &str| Serve::device_replica(temp.path(), name, &database_url, &broker, &prefix);
    // A starts alone, so it holds the ingest lease; B joins.
    let mut a = replica("a")?;
    a.spawn().await?;
    let vendor = Vendor::new("linli-tests")?;
    a.admin(reqwest::Method::POST, "/keys", Some(json!({ "county": DEMO_COUNTY, "vendor": vendor.name, "public_key": vendor.public_key() }))).await?;
    a.upload(DEMO_COUNTY, vendor.package("listener", |_| {})?).await?;
    let grants = json!(["data", "devices", "devices:alarms"]);
    a.admin(
        reqwest::Method::POST,
        "/installations",
        Some(json!({ "plugin_id": "test-listener", "version": "0.1.0", "tenant_id": DEMO_COUNTY, "grants": grants })),
    )
    .await?;
    a.admin(
        reqwest::Method::POST,
        "/devices",
        Some(json!({ "id": "smoke-k", "device_type": "smoke-detector", "model": "T-1", "vendor": "测试", "location": "grid:xingfu-g1" })),
    )
    .await?;
    let rule = instant_rule("smoke", "烟雾报警", "smoke-detector", "smoke");
    a.admin(reqwest::Method::POST, "/alarm-rules", Some(rule)).await?;
    let mut b = replica("b")?;
    b.spawn().await?;
    wait_until("replica B has the rule", || async {
        Ok(b.admin(reqwest::Method::GET, "/alarm-rules", None).await?["rules"].as_array().is_some_and(|r| r.len() == 1))
    })
    .await?;

    let (device, _commands) = linli_tests::lab::device_client(&broker, &prefix).await?;
    let send = |smoke: u8| {
        let (device, topic) = (device.clone(), format!("{prefix}/devices/smoke-k/telemetry"));
        async move { device.publish(topic, rumqttc::QoS::AtLeastOnce, false, json!({ "smoke": smoke }).to_string().into_bytes()).await }
    };
    let alarms = |status: &'static str| {
        let b = &b;
        async move {
            Ok::<_, anyhow::Error>(
                b.admin(reqwest::Method::GET, &format!("/alarms?status={status}"), None).await?["alarms"].as_array().cloned().unwrap_or_default(),
            )
        }
    };
    let log = || {
        let b = &b;
        async move { Ok::<_, anyhow::Error>(b.http.get(format!("{}/t/xingfu/p/test-listener/log", b.url())).send().await?.json::<serde_json::Value>().await?) }
    };
    let recorded = |log: &serde_json::Value, kind: &str| log["events"].as_array().map_or(0, |events| events.iter().filter(|e| e["kind"] == kind).count());
    wait_until("A raises the alarm", || async {
        send(1).await?;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        Ok(alarms("active").await?.len() == 1)
    })
    .await?;
    // The event is delivered and acknowledged before A dies.
    wait_until("the plugin has the alarm", || async { Ok(recorded(&log().await?, "alarm.raised") == 1) }).await?;
    a.kill()?;

    // One reading, sent while nobody evaluates telemetry: the broker keeps it in the
    // telemetry session A left, and B gets it when it takes the ingest over once A's lease
    // runs out (10 s), and clears A's alarm with it.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    send(0).await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(45);
    while alarms("cleared").await?.is_empty() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "replica B did not clear the alarm with the reading sent while A was dead; see {}",
            b.data_dir.join("serve.log").display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(alarms("active").await?.len(), 0);
    assert_eq!(alarms("cleared").await?.len(), 1, "one alarm in all");
    wait_until("the plugin has the clearing", || async { Ok(recorded(&log().await?, "alarm.cleared") == 1) }).await?;
    let log = log().await?;
    assert_eq!((recorded(&log, "alarm.raised"), recorded(&log, "alarm.cleared")), (1, 1), "{log}");
    b.stop()?;
    Ok(())
}

/// The ingest partitions a replica evaluates (`/admin/devices/status`).
async fn partitions_of(host: &Serve) -> Result<Vec<u64>> {
    let status = host.admin(reqwest::Method::GET, "/devices/status", None).await?;
    Ok(status["partitions"].as_array().map(|p| p.iter().filter_map(|p| p.as_u64()).collect()).unwrap_or_default())
}

async fn all_alarms(host: &Serve) -> Result<Vec<serde_json::Value>> {
    Ok(host.admin(reqwest::Method::GET, "/alarms?limit=500", None).await?["alarms"].as_array().cloned().unwrap_or_default())
}

/// Partitioned ingest (`[devices] ingest_stream`, NATS JetStream): two real `linli serve`
/// processes share 4 partitions of 12 devices; one is killed (SIGKILL) with alarms open and
/// `duration` windows half run in its partitions. The other takes those partitions over
/// from the database's positions and goes on: every device's instant alarm, raised before
/// the kill, is cleared once; every device's duration alarm is raised once — with a window
/// that began before the kill, so only if the window moved with the partition — and cleared
/// once. The plugin subscribed to alarms hears each raise and each clear once. SQLite and
/// PostgreSQL.
async fn partitions_move_when_a_replica_dies(backend: Backend) -> Result<()> {
    let temp = tempfile::tempdir()?;
    let Some(database_url) = database_url(backend, temp.path()).await? else { return Ok(()) };
    let Some(broker) = mqtt_url().await? else { return Ok(()) };
    let Some(nats) = nats_url().await? else { return Ok(()) };
    let prefix = format!("p{}", linli_tests::lab::unique());
    // The stream is the test's own: deleted whether the story passes, fails or panics.
    with_ingest_stream(&nats, &prefix, async {
        let replica = |name: &str| -> Result<Serve> {
            Ok(Serve::device_replica(temp.path(), name, &database_url, &broker, &prefix)?
                .env("LINLI_DEVICES__INGEST_STREAM", &nats)
                .env("LINLI_DEVICES__INGEST_PARTITIONS", "4")
                .env("LINLI_DEVICES__INGEST_STREAM_MAX_MIB", "16"))
        };
        let mut a = replica("a")?;
        a.spawn().await?;
        let vendor = Vendor::new("linli-tests")?;
        a.admin(reqwest::Method::POST, "/keys", Some(json!({ "county": DEMO_COUNTY, "vendor": vendor.name, "public_key": vendor.public_key() }))).await?;
        a.upload(DEMO_COUNTY, vendor.package("listener", |_| {})?).await?;
        a.admin(
            reqwest::Method::POST,
            "/installations",
            Some(json!({ "plugin_id": "test-listener", "version": "0.1.0", "tenant_id": DEMO_COUNTY, "grants": ["data", "devices", "devices:alarms"] })),
        )
        .await?;
        let devices: Vec<String> = (0..12).map(|i| format!("sensor-{i}")).collect();
        for id in &devices {
            a.admin(
                reqwest::Method::POST,
                "/devices",
                Some(json!({ "id": id, "device_type": "kitchen-sensor", "model": "T-1", "vendor": "测试", "location": "grid:xingfu-g1" })),
            )
            .await?;
        }
        a.admin(reqwest::Method::POST, "/alarm-rules", Some(instant_rule("smoke", "烟雾报警", "kitchen-sensor", "smoke"))).await?;
        let hot = json!({
            "id": "hot", "name": "灶台持续高温（10分钟）", "tenant_id": DEMO_COUNTY, "device_type": "kitchen-sensor",
            "metric": "temp", "op": ">", "threshold": 50.0, "duration_seconds": 600,
            "clear_op": "<=", "clear_threshold": 50.0, "severity": "major"
        });
        a.admin(reqwest::Method::POST, "/alarm-rules", Some(hot)).await?;
        let mut b = replica("b")?;
        b.spawn().await?;
        // A feeds the stream from the broker (it holds the telemetry session), so it evaluates
        // fewer: 1 of the 4 partitions, B 3.
        wait_until("the two replicas split the partitions", || async {
            let (on_a, on_b) = (partitions_of(&a).await?, partitions_of(&b).await?);
            Ok(on_a.len() == 1 && on_b.len() == 3)
        })
        .await?;
        wait_until("replica B has the rules", || async {
            Ok(b.admin(reqwest::Method::GET, "/alarm-rules", None).await?["rules"].as_array().is_some_and(|r| r.len() == 2))
        })
        .await?;

        let (device, _commands) = linli_tests::lab::device_client(&broker, &prefix).await?;
        let send = |id: &str, reading: serde_json::Value| {
            let (device, topic) = (device.clone(), format!("{prefix}/devices/{id}/telemetry"));
            async move { device.publish(topic, rumqttc::QoS::AtLeastOnce, false, reading.to_string().into_bytes()).await }
        };
        let count = |alarms: &[serde_json::Value], rule: &str, status: &str| alarms.iter().filter(|a| a["rule_id"] == rule && a["status"] == status).count();

        // Device time: the hot window opens at t0 and has held 11 minutes at the second reading.
        let t0 = linli_host::store::now_millis() - 3_600_000;
        for id in &devices {
            send(id, json!({ "ts": t0, "temp": 80.0 })).await?;
            send(id, json!({ "ts": t0 + 1_000, "smoke": 1 })).await?;
        }
        wait_until("every device's smoke alarm is raised", || async { Ok(count(&all_alarms(&b).await?, "smoke", "active") == devices.len()) }).await?;
        // The smoke readings are stored after the windows their devices' earlier readings
        // opened: once they are, so are the windows, in the same or an earlier commit.
        wait_until("the readings are written", || async {
            for id in &devices {
                let detail = b.admin(reqwest::Method::GET, &format!("/devices/{id}"), None).await?;
                if detail["latest_at"].as_i64() != Some(t0 + 1_000) {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await?;
        let log = || {
            let b = &b;
            async move { Ok::<_, anyhow::Error>(b.http.get(format!("{}/t/xingfu/p/test-listener/log", b.url())).send().await?.json::<serde_json::Value>().await?) }
        };
        let recorded = |log: &serde_json::Value, kind: &str| log["events"].as_array().map_or(0, |events| events.iter().filter(|e| e["kind"] == kind).count());
        wait_until("the plugin has the raised alarms", || async { Ok(recorded(&log().await?, "alarm.raised") == devices.len()) }).await?;
        let dead_partitions = partitions_of(&a).await?;
        let moving = devices.iter().filter(|id| dead_partitions.contains(&u64::from(linli_host::capabilities::devices::partitions::partition_of(id, 4)))).count();
        assert!(moving >= 2, "A's partitions {dead_partitions:?} hold {moving} of the devices: too few to tell anything");
        a.kill()?;

        // While A's partitions wait for their leases to run out, the readings go into the
        // stream; B evaluates them once it holds those partitions.
        for id in &devices {
            send(id, json!({ "ts": t0 + 660_000, "temp": 81.0 })).await?;
            send(id, json!({ "ts": t0 + 661_000, "smoke": 0 })).await?;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let now = all_alarms(&b).await?;
            if count(&now, "smoke", "cleared") == devices.len() && count(&now, "hot", "active") == devices.len() {
                break;
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "replica B did not take A's partitions {dead_partitions:?} over (smoke cleared {}, hot raised {} of {}); see {}",
                count(&now, "smoke", "cleared"),
                count(&now, "hot", "active"),
                devices.len(),
                b.data_dir.join("serve.log").display()
            );
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        assert_eq!(partitions_of(&b).await?, vec![0, 1, 2, 3], "B evaluates every partition now");
        for id in &devices {
            send(id, json!({ "ts": t0 + 720_000, "temp": 30.0 })).await?;
        }
        wait_until("every hot alarm is cleared", || async { Ok(count(&all_alarms(&b).await?, "hot", "cleared") == devices.len()) }).await?;

        let all = all_alarms(&b).await?;
        assert_eq!(all.len(), 2 * devices.len(), "one alarm per rule and device: {all:#?}");
        for id in &devices {
            for rule in ["smoke", "hot"] {
                let theirs: Vec<_> = all.iter().filter(|a| a["device_id"] == id.as_str() && a["rule_id"] == rule).collect();
                assert_eq!(theirs.len(), 1, "{rule} on {id}: {theirs:#?}");
                assert_eq!(theirs[0]["status"], "cleared", "{rule} on {id}");
            }
            let hot_alarm = all.iter().find(|a| a["device_id"] == id.as_str() && a["rule_id"] == "hot").map(|a| a["since"].as_i64());
            assert_eq!(hot_alarm, Some(Some(t0)), "the window of {id} began before the kill");
        }
        wait_until("the plugin has every clear", || async { Ok(recorded(&log().await?, "alarm.cleared") == 2 * devices.len()) }).await?;
        let log = log().await?;
        assert_eq!((recorded(&log, "alarm.raised"), recorded(&log, "alarm.cleared")), (2 * devices.len(), 2 * devices.len()), "{log}");
        b.stop()?;
        Ok(())
    })
    .await
}
on_both_backends!(partitions_move_when_a_replica_dies);

/// The ingest stream behind a NATS server that requires a user, as production's should (the
/// stream is the replicas' only; no device may write into it). The host signs in with the
/// user and password of `ingest_stream`'s URL, and HTTP ingest goes through the stream into
/// evaluation; a wrong password stops the host at start with an error that names the server
/// but not the password; a client without the user is turned away by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ingest_stream_signs_in() -> Result<()> {
    let Some(_shared) = nats_url().await? else { return Ok(()) };
    let temp = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let store_dir = temp.path().join("jetstream");
    let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server"].into_iter().find(|p| std::path::Path::new(p).exists()).unwrap_or("nats-server");
    let mut server = std::process::Command::new(binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(&store_dir)
        .args(["--user", "linli-replicas", "--pass", "stream-secret-2026"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("starting {binary} (the machine's NATS server, Debian package nats-server)"))?;
    wait_until("the NATS server listens", || async { Ok(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()) }).await?;
    let outcome = async {
        // Without the user: refused.
        let anonymous = async_nats::ConnectOptions::new().connection_timeout(std::time::Duration::from_secs(2));
        let refused = tokio::time::timeout(std::time::Duration::from_secs(3), anonymous.connect(format!("nats://127.0.0.1:{port}"))).await;
        match refused {
            Ok(Err(e)) => assert!(e.to_string().to_lowercase().contains("authorization"), "refused, but why? {e}"),
            Ok(Ok(_)) => panic!("a client without the user reached the stream's server"),
            Err(_) => panic!("the server neither took nor refused a client without the user"),
        }

        // A wrong password: the host does not start, and says why without the password.
        let wrong = TestHost::start_tuned(Backend::Sqlite, |c| c.devices.ingest_stream = format!("nats://linli-replicas:not-it@127.0.0.1:{port}")).await;
        let error = format!("{:#}", wrong.err().context("a host started with a wrong stream password")?);
        assert!(error.contains("ingest stream") && error.contains(&port.to_string()), "{error}");
        assert!(!error.contains("not-it"), "the password is in the error: {error}");

        // The right one: HTTP ingest goes through the stream and is evaluated.
        let host = TestHost::start_tuned(Backend::Sqlite, |c| {
            c.devices.ingest_stream = format!("nats://linli-replicas:stream-secret-2026@127.0.0.1:{port}");
            c.devices.ingest_partitions = 2;
        })
        .await?
        .context("SQLite is always there")?;
        let registered = host
            .admin("POST", "/devices", Some(json!({ "id": "park-9", "device_type": "parking-sensor", "location": "grid:xingfu-g1" })))
            .await?
            .expect_status(201)?
            .json();
        let secret = registered["secret"].as_str().context("the device's secret")?.to_string();
        let url = format!("{}/api/devices/park-9/telemetry", host.url);
        let sent = host.client.post(&url).bearer_auth(&secret).body(json!({ "ts": 1_764_000_000_000i64, "occupied": true }).to_string()).send().await?;
        assert_eq!(sent.status(), 202);
        let bad = Reply::from(host.client.post(&url).bearer_auth(&secret).body("occupied").send().await?).await?;
        assert_eq!(bad.status, 400, "{}", bad.text);
        wait_until("the reading is evaluated and written", || async {
            Ok(host.admin("GET", "/devices/park-9", None).await?.json()["latest_at"].as_i64() == Some(1_764_000_000_000))
        })
        .await?;
        let status = host.admin("GET", "/devices/status", None).await?.json();
        assert_eq!(status["partitions"], json!([0, 1]), "{status}");
        host.stop().await;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    let _ = server.kill();
    let _ = server.wait();
    outcome
}
