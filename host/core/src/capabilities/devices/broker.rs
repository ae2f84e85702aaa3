//! Who may do what on the broker, and the embedded broker (rmqtt) that enforces it.
//!
//! A device signs in with its id as user name and client id and its secret as password, and
//! may publish only to its own `{prefix}/devices/{id}/telemetry` and `…/ack` and subscribe
//! only to its own `…/commands` (its last will is held to the same topics). The host's own
//! clients sign in as [`HOST_USER`] with client ids that start with `linli-`, which no device
//! id may; only they may use other topics. Every refusal is counted
//! (`linli_mqtt_refused_total{reason}`: `credentials`, `client-id`, `topic`).
//!
//! On the embedded broker the host is the gatekeeper: rmqtt's authentication and ACL hooks
//! ask it. An external Mosquitto is given the same rules as files (`mosquitto_files`,
//! written by `linli devices broker-auth`).
use super::registry;
use super::DeviceError;
use async_trait::async_trait;
use pbkdf2::pbkdf2_hmac;
use prometheus::IntCounterVec;
use rmqtt::codec::v5::SubscribeAckReason;
use rmqtt::context::ServerContext;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType, Type};
use rmqtt::server::MqttServer;
use rmqtt::types::{AuthResult, ConnectInfo, LastWill, PublishAclResult, SubscribeAclResult};
use sha2::{Digest, Sha256, Sha512};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The user name of the host's own broker clients.
pub const HOST_USER: &str = "linli-host";
/// Client ids and device ids beginning with this belong to the host.
pub const HOST_CLIENT_PREFIX: &str = "linli-";

/// The largest packet the embedded broker accepts (the per-message limit devices are held
/// to, `max_payload_bytes`, is smaller and counted by the host).
const MAX_PACKET: u32 = 1 << 20;

/// Why a client was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No, unknown or wrong user name and password.
    Credentials,
    /// A client id that is not the device's own (or one of the host's).
    ClientId,
    /// A topic outside the device's own.
    Topic,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Self::Credentials => "credentials",
            Self::ClientId => "client-id",
            Self::Topic => "topic",
        }
    }
}

/// Topics a device may publish to: its telemetry and its command acknowledgements.
pub fn device_may_publish(prefix: &str, device: &str, topic: &str) -> bool {
    let Some(leaf) = topic.strip_prefix(prefix).and_then(|t| t.strip_prefix("/devices/")).and_then(|t| t.strip_prefix(device)) else {
        return false;
    };
    leaf == "/telemetry" || leaf == "/ack"
}

/// The one filter a device may subscribe to: its commands, without wildcards.
pub fn device_may_subscribe(prefix: &str, device: &str, filter: &str) -> bool {
    filter.strip_prefix(prefix).and_then(|t| t.strip_prefix("/devices/")).and_then(|t| t.strip_prefix(device)) == Some("/commands")
}

/// A user name the host's own clients may use: outside every device id.
pub fn is_host_user(user: &str) -> bool {
    user.starts_with(HOST_CLIENT_PREFIX) && !user.contains(['+', '#', '/', ' ', ':'])
}

/// A user name that may be a device: a valid device id outside the host's names.
pub fn is_device_user(user: &str) -> bool {
    registry::is_valid_device_id(user) && !user.starts_with(HOST_CLIENT_PREFIX)
}

/// A device's secret as Mosquitto's password file stores it (`$7$`: PBKDF2-HMAC-SHA512,
/// 12 bytes of salt, 64 bytes of hash). Mosquitto's default 101 iterations suffice: the
/// secrets are 128 random bits, not passwords a person chose.
pub fn mosquitto_hash(secret: &str) -> String {
    use base64::Engine;
    const ITERATIONS: u32 = 101;
    let salt: [u8; 12] = rand::random();
    let mut hash = [0u8; 64];
    pbkdf2_hmac::<Sha512>(secret.as_bytes(), &salt, ITERATIONS, &mut hash);
    let b64 = base64::engine::general_purpose::STANDARD;
    format!("$7${ITERATIONS}${}${}", b64.encode(salt), b64.encode(hash))
}

/// Mosquitto's ACL file for the topic prefix: the host's user on every device topic, each
/// device (by user name) on its own.
pub fn mosquitto_acl(prefix: &str, host_user: &str) -> String {
    format!(
        "# Written by Linli (linli devices broker-auth); regenerated on every device registration.\n\
         # The host's own clients.\n\
         user {host_user}\n\
         topic readwrite {prefix}/devices/#\n\
         \n\
         # Every device on its own topics only (%u is the user name, which is the device id).\n\
         pattern write {prefix}/devices/%u/telemetry\n\
         pattern write {prefix}/devices/%u/ack\n\
         pattern read {prefix}/devices/%u/commands\n"
    )
}

/// A device's credentials, to be checked by the host.
pub struct CredentialCheck {
    pub device: String,
    pub secret: String,
    pub reply: oneshot::Sender<bool>,
}

/// The host a running embedded broker answers to: its topic prefix, where to check a
/// device's secret, where to count refusals.
pub struct Attached {
    pub prefix: String,
    pub checks: mpsc::Sender<CredentialCheck>,
    pub refused: IntCounterVec,
}

/// The embedded broker's side of the rules. It outlives a host restarted inside the same
/// process (tests), which attaches itself again.
pub struct Gate {
    host_secret_sha256: [u8; 32],
    host_secret: String,
    attached: RwLock<Option<Arc<Attached>>>,
    /// The running broker and its runtime, to end a device's connection.
    running: std::sync::OnceLock<(ServerContext, tokio::runtime::Handle)>,
}

impl Gate {
    fn new() -> Self {
        let host_secret = uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string();
        Self {
            host_secret_sha256: Sha256::digest(host_secret.as_bytes()).into(),
            host_secret,
            attached: RwLock::new(None),
            running: std::sync::OnceLock::new(),
        }
    }

    /// The password of the host's own clients on this broker (made at its start, kept in
    /// memory only).
    pub fn host_secret(&self) -> &str {
        &self.host_secret
    }

    /// Answer to this host from now on.
    pub fn attach(&self, attached: Attached) {
        if let Ok(mut slot) = self.attached.write() {
            *slot = Some(Arc::new(attached));
        }
    }

    /// End the connection (and session) of the client `client_id`, if it is connected: a
    /// device whose secret was just replaced signs in again with the new one or not at all.
    pub fn disconnect(&self, client_id: &str) {
        let Some((context, runtime)) = self.running.get() else { return };
        let (context, client_id) = (context.clone(), client_id.to_string());
        runtime.spawn(async move {
            let shared = context.extends.shared().await;
            let found = shared.iter().find(|entry| entry.session().is_some_and(|s| s.id.client_id.as_ref() as &str == client_id));
            if let Some(mut entry) = found {
                match entry.kick(true, true, true).await {
                    Ok(_) => tracing::info!(client = client_id, "MQTT client disconnected: its secret was replaced"),
                    Err(e) => tracing::warn!(client = client_id, "cannot disconnect an MQTT client: {e}"),
                }
            }
        });
    }

    fn attached(&self) -> Option<Arc<Attached>> {
        self.attached.read().ok().and_then(|a| a.clone())
    }

    fn refuse(&self, attached: Option<&Attached>, refusal: Refusal, client: &str) {
        tracing::info!(client, reason = refusal.label(), "MQTT client refused");
        if let Some(attached) = attached {
            attached.refused.with_label_values(&[refusal.label()]).inc();
        }
    }

    async fn authenticate(&self, info: &ConnectInfo) -> AuthResult {
        let attached = self.attached();
        let client_id: &str = info.client_id();
        let user: &str = info.username().map(|u| u.as_ref()).unwrap_or_default();
        let password = info.password().map(|p| p.as_ref()).unwrap_or_default();
        if user == HOST_USER {
            let presented: [u8; 32] = Sha256::digest(password).into();
            if presented != self.host_secret_sha256 {
                self.refuse(attached.as_deref(), Refusal::Credentials, client_id);
                return AuthResult::BadUsernameOrPassword;
            }
            if !client_id.starts_with(HOST_CLIENT_PREFIX) {
                self.refuse(attached.as_deref(), Refusal::ClientId, client_id);
                return AuthResult::NotAuthorized;
            }
            return AuthResult::Allow(true, None);
        }
        let Some(attached) = attached else {
            // No host to ask: nobody but the host gets in.
            self.refuse(None, Refusal::Credentials, client_id);
            return AuthResult::NotAuthorized;
        };
        let Ok(secret) = std::str::from_utf8(password) else {
            self.refuse(Some(&attached), Refusal::Credentials, client_id);
            return AuthResult::BadUsernameOrPassword;
        };
        if !is_device_user(user) || secret.is_empty() {
            self.refuse(Some(&attached), Refusal::Credentials, client_id);
            return AuthResult::BadUsernameOrPassword;
        }
        if client_id != user {
            self.refuse(Some(&attached), Refusal::ClientId, client_id);
            return AuthResult::NotAuthorized;
        }
        let will_topic = info.last_will().map(|will| match will {
            LastWill::V3(will) => will.topic.to_string(),
            LastWill::V5(will) => will.topic.to_string(),
        });
        if will_topic.is_some_and(|topic| !device_may_publish(&attached.prefix, user, &topic)) {
            self.refuse(Some(&attached), Refusal::Topic, client_id);
            return AuthResult::NotAuthorized;
        }
        let (reply, answer) = oneshot::channel();
        let asked = attached.checks.send(CredentialCheck { device: user.to_string(), secret: secret.to_string(), reply }).await;
        let matches = asked.is_ok() && matches!(tokio::time::timeout(Duration::from_secs(10), answer).await, Ok(Ok(true)));
        if !matches {
            self.refuse(Some(&attached), Refusal::Credentials, client_id);
            return AuthResult::BadUsernameOrPassword;
        }
        AuthResult::Allow(false, None)
    }

    /// A device's session may use `topic` (publish) or `filter` (subscribe). Host sessions
    /// never get here: rmqtt lets superusers through before asking.
    fn may(&self, user: &str, client_id: &str, topic: &str, check: fn(&str, &str, &str) -> bool) -> bool {
        let attached = self.attached();
        let allowed = attached.as_deref().is_some_and(|a| is_device_user(user) && client_id == user && check(&a.prefix, user, topic));
        if !allowed {
            self.refuse(attached.as_deref(), Refusal::Topic, client_id);
        }
        allowed
    }
}

#[async_trait]
impl Handler for GateHandler {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        match param {
            Parameter::ClientAuthenticate(info) => (false, Some(HookResult::AuthResult(self.0.authenticate(info).await))),
            Parameter::MessagePublishCheckAcl(session, publish) => {
                let result = if self.0.may(session.id.username_ref(), &session.id.client_id, &publish.topic, device_may_publish) {
                    PublishAclResult::allow()
                } else {
                    // Disconnect: MQTT 3.1.1 has no refusal for a publish, and a device that
                    // writes as another is not one to keep talking to.
                    PublishAclResult::rejected(true, Some("not this device's topic".into()))
                };
                (false, Some(HookResult::PublishAclResult(result)))
            }
            Parameter::ClientSubscribeCheckAcl(session, subscribe) => {
                let result = if self.0.may(session.id.username_ref(), &session.id.client_id, &subscribe.topic_filter, device_may_subscribe) {
                    SubscribeAclResult::new_success(subscribe.opts.qos(), None)
                } else {
                    SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized)
                };
                (false, Some(HookResult::SubscribeAclResult(result)))
            }
            _ => (true, acc),
        }
    }
}

struct GateHandler(Arc<Gate>);

/// Embedded brokers this process runs, by listen address. A broker cannot be stopped, so a
/// host restarted inside the same process (tests) attaches to the one already there.
static EMBEDDED: Mutex<Vec<(String, Arc<Gate>)>> = Mutex::new(Vec::new());

/// Start the embedded broker on `listen` (on threads of its own), or find the one this
/// process already runs there.
pub fn start_embedded(listen: &str) -> Result<Arc<Gate>, DeviceError> {
    let mut started = EMBEDDED.lock().map_err(|_| DeviceError::Config("embedded broker registry poisoned".into()))?;
    if let Some((_, gate)) = started.iter().find(|(l, _)| l == listen) {
        return Ok(gate.clone());
    }
    let address: std::net::SocketAddr =
        listen.parse().map_err(|_| DeviceError::Config(format!("embedded_listen `{listen}` must be an address such as 127.0.0.1:1884")))?;
    let gate = Arc::new(Gate::new());
    let (bound_tx, bound) = std::sync::mpsc::channel::<Result<(), String>>();
    let handler_gate = gate.clone();
    std::thread::Builder::new()
        .name("linli-mqtt-broker".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("linli-mqtt").enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = bound_tx.send(Err(format!("cannot start the embedded broker's runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                // The host's CPU is the host's business; rmqtt's busy check would refuse
                // devices while plugins are loaded.
                let context = ServerContext::new().busy_check_enable(false).build().await;
                let _ = handler_gate.running.set((context.clone(), tokio::runtime::Handle::current()));
                let register = context.extends.hook_mgr().register();
                for hook in [Type::ClientAuthenticate, Type::MessagePublishCheckAcl, Type::ClientSubscribeCheckAcl] {
                    register.add(hook, Box::new(GateHandler(handler_gate.clone()))).await;
                }
                register.start().await;
                let listener = rmqtt::net::Builder::new()
                    .name("linli-devices")
                    .laddr(address)
                    .allow_anonymous(false)
                    .max_packet_size(MAX_PACKET)
                    .max_connections(100_000)
                    .max_handshaking_limit(1_000)
                    .bind()
                    .and_then(|l| l.tcp());
                let listener = match listener {
                    Ok(listener) => listener,
                    Err(e) => {
                        let _ = bound_tx.send(Err(format!(
                            "the embedded MQTT broker cannot listen on {address}: {e}; set [devices] embedded_listen, or broker = \"mqtt://…\" for an external one"
                        )));
                        return;
                    }
                };
                let _ = bound_tx.send(Ok(()));
                if let Err(e) = MqttServer::new(context).listener(listener).build().run().await {
                    tracing::error!("the embedded MQTT broker stopped: {e}");
                }
            });
        })
        .map_err(|e| DeviceError::Config(format!("cannot start the embedded broker: {e}")))?;
    bound.recv_timeout(Duration::from_secs(30)).map_err(|_| DeviceError::Config("the embedded broker did not start".into()))?.map_err(DeviceError::Config)?;
    tracing::info!(%listen, "embedded MQTT broker listening (devices sign in with their id and secret)");
    started.push((listen.to_string(), gate.clone()));
    Ok(gate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_held_to_its_own_topics() {
        assert!(device_may_publish("linli", "wm-1", "linli/devices/wm-1/telemetry"));
        assert!(device_may_publish("linli", "wm-1", "linli/devices/wm-1/ack"));
        assert!(!device_may_publish("linli", "wm-1", "linli/devices/wm-2/telemetry"));
        assert!(!device_may_publish("linli", "wm-1", "linli/devices/wm-10/telemetry"));
        assert!(!device_may_publish("linli", "wm-1", "linli/devices/wm-1/commands"));
        assert!(!device_may_publish("linli", "wm-1", "other/devices/wm-1/telemetry"));
        assert!(!device_may_publish("linli", "wm-1", "linli/devices/wm-1/telemetry/x"));
        assert!(device_may_subscribe("linli", "wm-1", "linli/devices/wm-1/commands"));
        assert!(!device_may_subscribe("linli", "wm-1", "linli/devices/+/commands"));
        assert!(!device_may_subscribe("linli", "wm-1", "linli/devices/#"));
        assert!(!device_may_subscribe("linli", "wm-1", "linli/devices/wm-1/telemetry"));
        assert!(is_device_user("wm-1"));
        assert!(!is_device_user("linli-ingest-linli"));
        assert!(!is_device_user("a/b"));
    }

    #[test]
    fn mosquitto_hashes_are_pbkdf2_sha512() {
        use base64::Engine;
        let hash = mosquitto_hash("s3cret");
        let parts: Vec<&str> = hash.split('$').collect();
        assert_eq!(parts[..3], ["", "7", "101"]);
        let b64 = base64::engine::general_purpose::STANDARD;
        let salt = b64.decode(parts[3]).unwrap();
        let mut expected = [0u8; 64];
        pbkdf2_hmac::<Sha512>(b"s3cret", &salt, 101, &mut expected);
        assert_eq!(b64.decode(parts[4]).unwrap(), expected);
        assert_ne!(mosquitto_hash("s3cret"), hash, "a new salt each time");
    }
}
