//! The host side of every capability, exercised without a guest: the registry configures
//! exactly what was granted, every capability that was not granted answers each call with
//! `permission-denied` through its WIT `Host` trait, and the shared call path gives up with
//! `unavailable` when the request's deadline passes.
use super::*;
use crate::auth::sms::LogGateway;
use crate::bindings::linli::platform::{base as base_wit, data as data_wit, devices as devices_wit, identity as identity_wit};
use crate::bindings::linli::platform::{ledger as ledger_wit, notify as notify_wit, tickets as tickets_wit};
use crate::tenancy::{SharedTree, TenantTree};
use std::time::{Duration, Instant};

const MANIFEST: &str = r#"
id = "harness"
name = "Harness"
version = "0.1.0"
vendor = "linli"
description = "the capability harness"

[limits]
deadline_ms = 1000
"#;

/// What the platform hands `configure`, built on a real SQLite store.
struct Parts {
    store: Store,
    manifest: Manifest,
    tree: SharedTree,
    pairwise: Arc<identity::PairwiseIds>,
    devices: Arc<devices::Devices>,
    tickets: Arc<tickets::Tickets>,
    notifier: Arc<notify::Notifier>,
    metrics: Arc<crate::metrics::Metrics>,
    resident_totals: Arc<super::base::totals::ResidentTotals>,
    _dir: tempfile::TempDir,
}

async fn parts() -> Parts {
    let (store, dir) = crate::store::testing::sqlite().await;
    let tree = SharedTree::new(TenantTree::default());
    let outbox = Arc::new(events::Outbox::new(store.clone(), tree.clone(), Default::default()));
    let tickets = Arc::new(tickets::Tickets::new(store.clone(), outbox.clone(), tree.clone(), Default::default()));
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let devices = devices::Devices::new(store.clone(), outbox, tickets.clone(), tree.clone(), metrics.clone(), Default::default()).await.expect("devices");
    let notifier = Arc::new(notify::Notifier::new(store.clone(), Arc::new(LogGateway { outbox: dir.path().join("sms.jsonl") })));
    let pairwise = Arc::new(identity::PairwiseIds::load(&store).await.expect("pairwise key"));
    let manifest = Manifest::parse(MANIFEST).expect("the harness manifest");
    Parts { store, manifest, tree, pairwise, devices, tickets, notifier, metrics, resident_totals: Arc::default(), _dir: dir }
}

fn configured(parts: &Parts, granted: &[String]) -> Configured {
    configure(&Grant {
        store: &parts.store,
        manifest: &parts.manifest,
        plugin_id: "harness",
        tenant_id: "xingfu",
        granted,
        pairwise: &parts.pairwise,
        tree: &parts.tree,
        devices: &parts.devices,
        tickets: &parts.tickets,
        notifier: &parts.notifier,
        metrics: &parts.metrics,
        resident_totals: &parts.resident_totals,
    })
}

fn request(deadline: Instant) -> RequestContext {
    RequestContext { plugin_id: Arc::from("harness"), tenant_id: Arc::from("xingfu"), request_id: "harness-1".into(), user: None, deadline: Deadline(deadline) }
}

fn always_granted() -> Vec<&'static str> {
    KNOWN.iter().filter(|c| c.always_granted).map(|c| c.name).collect()
}

#[tokio::test]
async fn the_registry_configures_exactly_what_was_granted() {
    let parts = parts().await;
    assert_eq!(configured(&parts, &[]).granted(), always_granted(), "with no grant only the always-granted capabilities are configured");
    for capability in KNOWN.iter().filter(|c| !c.always_granted) {
        let mut expected = always_granted();
        expected.push(capability.name);
        expected.sort();
        let mut got = configured(&parts, &[capability.name.to_string()]).granted();
        got.sort();
        assert_eq!(got, expected, "granting `{}` configures it and nothing else", capability.name);
    }
    let everything: Vec<String> = KNOWN.iter().map(|c| c.name.to_string()).collect();
    assert_eq!(configured(&parts, &everything).granted().len(), KNOWN.len());
    // A scope alone (`identity:phone`) is no grant of the capability.
    assert_eq!(configured(&parts, &["identity:phone".to_string()]).granted(), always_granted());
}

fn assert_denied<T: std::fmt::Debug>(capability: &str, answer: Result<T, types::Error>) {
    match answer {
        Err(e) => assert!(matches!(e.code, types::ErrorCode::PermissionDenied), "`{capability}` without a grant answered {:?}: {}", e.code, e.message),
        Ok(value) => panic!("`{capability}` without a grant answered {value:?}"),
    }
}

#[tokio::test]
async fn every_capability_not_granted_answers_permission_denied() {
    use base_wit::Host as _;
    use data_wit::Host as _;
    use devices_wit::Host as _;
    use identity_wit::Host as _;
    use ledger_wit::Host as _;
    use notify_wit::Host as _;
    use tickets_wit::Host as _;
    let parts = parts().await;
    let mut caps = configured(&parts, &[]).prepare(&request(Instant::now() + Duration::from_secs(5)));
    assert_denied("data", caps.data.get("notes".into(), "a".into()).await);
    assert_denied("identity", caps.identity.current_user().await);
    let query = base_wit::ResidentQuery { tenant: None, tags: Vec::new(), min_age: None, max_age: None };
    assert_denied("base", caps.base.find_residents(query, None, 10).await);
    assert_denied("ledger", caps.ledger.currencies().await);
    assert_denied("devices", caps.devices.list_devices(None).await);
    assert_denied("tickets", caps.tickets.categories().await);
    let message = notify_wit::Message { title: "t".into(), body: "b".into(), link: None };
    assert_denied("notify", caps.notify.to_user("someone".into(), message).await);
    // http is WASI's interface: its refusal is wasi:http's own, and nothing is sent.
    assert_http_denied(&mut caps.http).await;
    let mut granted_without_hosts = configured(&parts, &["http".to_string()]).prepare(&request(Instant::now() + Duration::from_secs(5)));
    assert_http_denied(&mut granted_without_hosts.http).await;
}

async fn assert_http_denied(state: &mut http::OutboundHttp) {
    use http_body_util::BodyExt;
    use wasmtime_wasi_http::WasiHttpHooks;
    let body = http_body_util::Empty::new().map_err(|never| match never {}).boxed_unsync();
    let request = ::http::Request::get("https://api.vendor.cn/").body(body).expect("a request");
    let sent = Box::into_pin(state.send_request(request, None, Box::new(async { Ok(()) }))).await;
    assert!(matches!(sent, Err(wasmtime_wasi_http::Error::HttpRequestDenied)), "an outbound request without its grant was not refused");
}

#[tokio::test]
async fn the_call_path_denies_answers_and_keeps_the_deadline() {
    let later = Deadline(Instant::now() + Duration::from_secs(5));
    let denied = call(&None::<Arc<u32>>, later, "data", |_| async { Ok::<_, data::DataError>(1) }).await;
    assert_denied("data", denied);
    let answered = call(&Some(Arc::new(41u32)), later, "data", |grant| async move { Ok::<_, data::DataError>(*grant + 1) }).await;
    assert_eq!(answered.ok(), Some(42));
    let soon = Deadline(Instant::now() + Duration::from_millis(20));
    let granted = Some(Arc::new(0u32));
    let slow = call(&granted, soon, "data", |_| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok::<_, data::DataError>(0)
    });
    let started = Instant::now();
    match slow.await {
        Err(e) => assert!(matches!(e.code, types::ErrorCode::Unavailable), "a call past its deadline answered {:?}", e.code),
        Ok(_) => panic!("a call past its deadline answered"),
    }
    assert!(started.elapsed() < Duration::from_secs(5), "the deadline, not the operation, ended the call");
}
