//! Devices on the broker, tried as an attacker would: a client without credentials, a
//! device signing in with another's secret (or, on the embedded broker, under another's
//! client id), a device publishing to another's telemetry or listening to another's
//! commands — each refused, and on the embedded broker counted — while the real device's
//! readings still raise and clear its alarm and it answers its commands. A rotated secret
//! replaces the old one (the embedded broker also ends the connection made with it). Once on the embedded broker, once on a Mosquitto started on its own
//! port from the files `linli devices broker-auth` wrote (and that the host then keeps
//! current). SQLite and PostgreSQL.
use anyhow::{bail, Context, Result};
use linli_tests::lab::*;
use linli_tests::*;
use rumqttc::{AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Packet, QoS, SubscribeReasonCode};
use serde_json::{json, Value};
use std::process::{Child, Command};
use std::time::Duration;

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A device-side client: `client_id`, signing in as `login` (user, password) if given.
fn client(port: u16, client_id: &str, login: Option<(&str, &str)>) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    AsyncClient::new(options, 64)
}

/// Poll until the broker answers the connection: Ok(()) when let in, Err(why) when refused.
async fn signed_in(eventloop: &mut EventLoop) -> Result<std::result::Result<(), String>> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), eventloop.poll()).await.context("no answer to CONNECT")? {
            Ok(Event::Incoming(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => return Ok(Ok(())),
            Ok(Event::Incoming(Packet::ConnAck(ack))) => return Ok(Err(format!("{:?}", ack.code))),
            Ok(_) => {}
            Err(e) => return Ok(Err(e.to_string())),
        }
    }
}

/// A connected device client, its events fed to a channel: incoming publishes and suback
/// codes, and a flag once the broker closes the connection.
struct Device {
    client: AsyncClient,
    events: tokio::sync::mpsc::UnboundedReceiver<Incoming>,
}

#[derive(Debug)]
enum Incoming {
    Publish(String, Vec<u8>),
    SubAck(Vec<SubscribeReasonCode>),
    Closed,
}

async fn device(port: u16, id: &str, secret: &str) -> Result<Device> {
    let (client, mut eventloop) = client(port, id, Some((id, secret)));
    if let Err(why) = signed_in(&mut eventloop).await? {
        bail!("{id} was refused with its own secret: {why}");
    }
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send(Incoming::Publish(p.topic.clone(), p.payload.to_vec()));
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    let _ = tx.send(Incoming::SubAck(ack.return_codes));
                }
                Ok(_) => {}
                Err(_) => {
                    let _ = tx.send(Incoming::Closed);
                    return;
                }
            }
        }
    });
    Ok(Device { client, events })
}

impl Device {
    async fn next(&mut self) -> Result<Incoming> {
        tokio::time::timeout(Duration::from_secs(10), self.events.recv()).await.context("nothing from the broker")?.context("the client task ended")
    }

    async fn suback(&mut self) -> Result<Vec<SubscribeReasonCode>> {
        loop {
            if let Incoming::SubAck(codes) = self.next().await? {
                return Ok(codes);
            }
        }
    }
}

async fn refused(port: u16, client_id: &str, login: Option<(&str, &str)>) -> Result<String> {
    let (_client, mut eventloop) = client(port, client_id, login);
    match signed_in(&mut eventloop).await? {
        Ok(()) => bail!("{client_id} signed in as {:?}", login.map(|l| l.0)),
        Err(why) => Ok(why),
    }
}

async fn refusals(host: &TestHost, reason: &str) -> Result<u64> {
    host.counter("linli_mqtt_refused_total", "reason", reason).await
}

async fn register(host: &TestHost, id: &str) -> Result<String> {
    let registered = host
        .admin("POST", "/devices", Some(json!({ "id": id, "device_type": "smoke-detector", "location": "grid:heping-g1" })))
        .await?
        .expect_status(201)?
        .json();
    Ok(registered["secret"].as_str().context("a new device's secret")?.to_string())
}

/// Which broker the story runs on.
#[derive(Clone, Copy, PartialEq)]
enum Broker {
    Embedded,
    Mosquitto,
}

/// The attacks and the real device's day, on a host already connected to the broker on
/// `port`, with devices `smoke-a` and `smoke-b` registered and the smoke rule in place.
async fn attacks_fail_and_the_device_works(host: &TestHost, broker: Broker, port: u16, prefix: &str, secret_a: &str, secret_b: &str) -> Result<()> {
    let telemetry = |device: &str| format!("{prefix}/devices/{device}/telemetry");

    // Nobody gets in without the right secret.
    refused(port, "smoke-a", None).await?;
    refused(port, "smoke-a", Some(("smoke-a", secret_b))).await?;
    refused(port, "smoke-a", Some(("smoke-a", "guessed"))).await?;
    refused(port, "not-registered", Some(("not-registered", secret_a))).await?;
    refused(port, "linli-host-x", Some(("linli-host", secret_a))).await?;
    if broker == Broker::Embedded {
        // Under another device's client id (which would take over its session).
        let why = refused(port, "smoke-b", Some(("smoke-a", secret_a))).await?;
        assert!(why.contains("NotAuthorized"), "{why}");
        // A last will on another device's topic would publish as that device.
        let mut options = MqttOptions::new("smoke-a", "127.0.0.1", port);
        options.set_credentials("smoke-a", secret_a).set_last_will(rumqttc::LastWill::new(telemetry("smoke-b"), "{\"smoke\": 1}", QoS::AtLeastOnce, false));
        let (_client, mut eventloop) = AsyncClient::new(options, 8);
        assert!(signed_in(&mut eventloop).await?.is_err(), "a will on another device's topic is refused");
    }

    // Signed in as itself, smoke-a may not write as smoke-b nor hear smoke-b's commands.
    let mut spoofer = device(port, "smoke-a", secret_a).await?;
    for filter in [format!("{prefix}/devices/smoke-b/commands"), format!("{prefix}/devices/#")] {
        spoofer.client.subscribe(filter.clone(), QoS::AtLeastOnce).await?;
        let codes = spoofer.suback().await?;
        // The embedded broker refuses the subscription; Mosquitto 2.0 grants it and then
        // delivers nothing the ACL does not allow (checked below).
        if broker == Broker::Embedded {
            assert!(matches!(codes[..], [SubscribeReasonCode::Failure]), "subscribing to {filter}: {codes:?}");
        }
    }
    let unanswered = host.admin("POST", "/devices/smoke-b/commands", Some(json!({ "command": { "unlock": true }, "timeout_ms": 500 }))).await?;
    assert_eq!(unanswered.status, 504, "nobody answers smoke-b's command: {}", unanswered.text);
    let overheard = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            match spoofer.events.recv().await {
                Some(Incoming::Publish(topic, _)) => return Some(topic),
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await;
    assert!(!matches!(overheard, Ok(Some(_))), "smoke-a heard another device's command: {overheard:?}");
    spoofer.client.publish(telemetry("smoke-b"), QoS::AtLeastOnce, false, json!({ "smoke": 1 }).to_string().into_bytes()).await?;
    if broker == Broker::Embedded {
        // The embedded broker hangs up on a device that writes as another.
        loop {
            if let Incoming::Closed = spoofer.next().await? {
                break;
            }
        }
    }

    // The real smoke-a: its alarm rises and clears, and it answers a command.
    let mut real = device(port, "smoke-a", secret_a).await?;
    real.client.subscribe(format!("{prefix}/devices/smoke-a/commands"), QoS::AtLeastOnce).await?;
    let codes = real.suback().await?;
    assert!(matches!(codes[..], [SubscribeReasonCode::Success(_)]), "its own commands: {codes:?}");
    real.client.publish(telemetry("smoke-a"), QoS::AtLeastOnce, false, json!({ "smoke": 1 }).to_string().into_bytes()).await?;
    wait_until("smoke-a's alarm is raised", || async { Ok(host.alarms("active").await?.iter().any(|a| a["device_id"] == "smoke-a")) }).await?;
    let command = {
        let asked = host.admin("POST", "/devices/smoke-a/commands", Some(json!({ "command": { "beep": true }, "timeout_ms": 10_000 })));
        let answer = async {
            loop {
                if let Incoming::Publish(topic, payload) = real.next().await? {
                    assert_eq!(topic, format!("{prefix}/devices/smoke-a/commands"));
                    let message: Value = serde_json::from_slice(&payload)?;
                    let ack = json!({ "id": message["id"], "ok": true });
                    real.client.publish(format!("{prefix}/devices/smoke-a/ack"), QoS::AtLeastOnce, false, ack.to_string().into_bytes()).await?;
                    return anyhow::Ok(());
                }
            }
        };
        let (reply, answered) = tokio::join!(asked, answer);
        answered?;
        reply?.expect_status(200)?.json()
    };
    assert_eq!(command["ok"], true, "{command}");
    real.client.publish(telemetry("smoke-a"), QoS::AtLeastOnce, false, json!({ "smoke": 0 }).to_string().into_bytes()).await?;
    wait_until("smoke-a's alarm clears", || async { Ok(host.alarms("cleared").await?.iter().any(|a| a["device_id"] == "smoke-a")) }).await?;

    // What smoke-a wrote as smoke-b never arrived.
    let b = host.admin("GET", "/devices/smoke-b", None).await?.expect_status(200)?.json();
    assert!(b["latest"].is_null(), "nothing reached the host as smoke-b: {b}");
    assert!(!host.alarms("active").await?.iter().chain(host.alarms("cleared").await?.iter()).any(|a| a["device_id"] == "smoke-b"), "no alarm for smoke-b");
    Ok(())
}

async fn on_the_embedded_broker(backend: Backend) -> Result<()> {
    let port = free_port()?;
    let prefix = format!("t{}", unique());
    let topic_prefix = prefix.clone();
    let Some(host) = TestHost::start_tuned(backend, |c| {
        c.devices.broker = "embedded".into();
        c.devices.embedded_listen = format!("127.0.0.1:{port}");
        c.devices.topic_prefix = topic_prefix;
    })
    .await?
    else {
        return Ok(());
    };
    wait_until("the host signs in to its broker", || async { Ok(host.admin("GET", "/devices/status", None).await?.json()["connected"] == true) }).await?;
    let secret_a = register(&host, "smoke-a").await?;
    let secret_b = register(&host, "smoke-b").await?;
    host.admin("POST", "/alarm-rules", Some(instant_rule("smoke", "烟雾报警", "smoke-detector", "smoke"))).await?.expect_status(200)?;
    let reserved =
        host.admin("POST", "/devices", Some(json!({ "id": "linli-ingest-x", "device_type": "smoke-detector", "location": "grid:heping-g1" }))).await?;
    assert_eq!(reserved.status, 422, "device ids may not take the host's names: {}", reserved.text);

    attacks_fail_and_the_device_works(&host, Broker::Embedded, port, &prefix, &secret_a, &secret_b).await?;
    assert!(refusals(&host, "credentials").await? >= 5, "bad credentials are counted");
    assert!(refusals(&host, "client-id").await? >= 1, "a borrowed client id is counted");
    assert!(refusals(&host, "topic").await? >= 4, "the will, two subscriptions and the spoofed publish are counted");

    // A rotated secret: the connection made with the old one is ended, the old one no longer
    // signs in, the new one does.
    let mut connected = device(port, "smoke-a", &secret_a).await?;
    let rotated = host.admin("POST", "/devices/smoke-a/secret", None).await?.expect_status(200)?.json();
    let new_secret = rotated["secret"].as_str().context("new secret")?;
    assert_ne!(new_secret, secret_a);
    loop {
        if let Incoming::Closed = connected.next().await? {
            break;
        }
    }
    refused(port, "smoke-a", Some(("smoke-a", &secret_a))).await?;
    device(port, "smoke-a", new_secret).await?;
    host.stop().await;
    Ok(())
}

/// A Mosquitto of the test's own, killed when dropped.
struct Mosquitto(Child);

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Mosquitto {
    async fn start(dir: &std::path::Path, port: u16, files: &std::path::Path) -> Result<Self> {
        let conf = dir.join("mosquitto.conf");
        // Started as root, Mosquitto becomes user `mosquitto`, who may not read the test's
        // private directory: stay who the test is.
        let me = String::from_utf8(Command::new("id").arg("-un").output()?.stdout)?.trim().to_string();
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {0}/passwd\nacl_file {0}/acl\npersistence false\nuser {me}\nlog_dest stderr\n",
                files.display()
            ),
        )?;
        let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].into_iter().find(|p| std::path::Path::new(p).exists()).unwrap_or("mosquitto");
        let log = std::fs::File::create(dir.join("mosquitto.log"))?;
        let child = Command::new(binary).arg("-c").arg(&conf).stdout(std::process::Stdio::null()).stderr(log).spawn().context("starting mosquitto")?;
        let mosquitto = Self(child);
        let listening = wait_until("mosquitto listens", || async { Ok(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()) }).await;
        listening.with_context(|| std::fs::read_to_string(dir.join("mosquitto.log")).unwrap_or_default())?;
        Ok(mosquitto)
    }

    /// Reread the password and ACL files.
    fn reload(&self) -> Result<()> {
        let status = Command::new("kill").args(["-HUP", &self.0.id().to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill -HUP mosquitto");
        Ok(())
    }
}

async fn on_mosquitto_from_broker_auth(backend: Backend) -> Result<()> {
    // The shared Mosquitto shows the package is there; the test runs its own.
    if mqtt_url().await?.is_none() {
        return Ok(());
    }
    let port = free_port()?;
    let prefix = format!("t{}", unique());
    let files = tempfile::tempdir()?;
    let files_dir = files.path().to_string_lossy().to_string();
    let host_password = format!("host-{}", unique());
    let (topic_prefix, password, kept) = (prefix.clone(), host_password.clone(), files_dir.clone());
    let Some(host) = TestHost::start_tuned(backend, |c| {
        c.devices.broker = format!("mqtt://127.0.0.1:{port}");
        c.devices.topic_prefix = topic_prefix;
        c.devices.broker_password = password;
        c.devices.mosquitto_files = kept;
    })
    .await?
    else {
        return Ok(());
    };
    let secret_a = register(&host, "smoke-a").await?;
    let secret_b = register(&host, "smoke-b").await?;
    host.admin("POST", "/alarm-rules", Some(instant_rule("smoke", "烟雾报警", "smoke-detector", "smoke"))).await?.expect_status(200)?;

    // The operator writes the files and starts Mosquitto from them.
    let wrote = Command::new(linli_bin())
        .args(["devices", "broker-auth", "--out", &files_dir])
        .env("LINLI_DATA_DIR", &host.data_dir)
        .env("LINLI_DATABASE_URL", &host.database_url)
        .env("LINLI_DEVICES__TOPIC_PREFIX", &prefix)
        .env("LINLI_DEVICES__BROKER_PASSWORD", &host_password)
        .output()?;
    let said = String::from_utf8_lossy(&wrote.stdout).to_string();
    assert!(wrote.status.success(), "{said}{}", String::from_utf8_lossy(&wrote.stderr));
    assert!(said.contains("2 devices"), "{said}");
    let passwd = std::fs::read_to_string(files.path().join("passwd"))?;
    assert!(passwd.lines().any(|l| l.starts_with("linli-host:$7$")) && passwd.lines().any(|l| l.starts_with("smoke-a:$7$")), "{passwd}");
    assert!(!passwd.contains(&secret_a) && !passwd.contains(&host_password), "no secret in clear");
    let mosquitto = Mosquitto::start(files.path(), port, files.path()).await?;
    wait_until("the host signs in to Mosquitto", || async { Ok(host.admin("GET", "/devices/status", None).await?.json()["connected"] == true) }).await?;

    attacks_fail_and_the_device_works(&host, Broker::Mosquitto, port, &prefix, &secret_a, &secret_b).await?;

    // A rotation: the host rewrites the files at once; Mosquitto takes them on SIGHUP.
    let rotated = host.admin("POST", "/devices/smoke-a/secret", None).await?.expect_status(200)?.json();
    let new_secret = rotated["secret"].as_str().context("new secret")?.to_string();
    mosquitto.reload()?;
    wait_until("Mosquitto refuses the old secret", || async { Ok(refused(port, "smoke-a", Some(("smoke-a", &secret_a))).await.is_ok()) }).await?;
    device(port, "smoke-a", &new_secret).await?;
    host.stop().await;
    drop(mosquitto);
    Ok(())
}

on_both_backends!(on_the_embedded_broker);
on_both_backends!(on_mosquitto_from_broker_auth);
