//! Prometheus metrics, served at /metrics.
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    /// Plugin requests by plugin, tenant of the installation and status code.
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    /// Failures of plugin code by plugin and kind (trap, timeout, memory, busy, host).
    pub failures: IntCounterVec,
    pub live_instances: IntGauge,
    pub installations: IntGauge,
    /// Device messages by outcome: accepted, malformed, oversized, unknown-device, bad-topic.
    pub device_messages: IntCounterVec,
    /// MQTT clients and messages the embedded broker refused: credentials, client-id, topic.
    pub mqtt_refused: IntCounterVec,
    /// Alarm transitions: raised, cleared, suppressed.
    pub alarms: IntCounterVec,
    /// Event deliveries by outcome: delivered, retry, dead.
    pub events_delivered: IntCounterVec,
    /// Plugins' outbound HTTP requests by plugin, origin (`other` for refused ones) and
    /// outcome: sent, denied, failed, timeout.
    pub outbound_http: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("linli".into()), None).unwrap_or_default();
        let requests = IntCounterVec::new(Opts::new("plugin_requests_total", "Plugin requests"), &["plugin", "installation", "status"]);
        let latency = HistogramVec::new(
            HistogramOpts::new("plugin_request_seconds", "Plugin request latency")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["plugin"],
        );
        let failures = IntCounterVec::new(Opts::new("plugin_failures_total", "Plugin traps, timeouts, memory-limit hits and rejections"), &["plugin", "kind"]);
        let live_instances = IntGauge::new("plugin_live_instances", "Plugin instances running now");
        let installations = IntGauge::new("installations", "Active installations");
        let device_messages = IntCounterVec::new(Opts::new("device_messages_total", "Device messages by outcome"), &["outcome"]);
        let alarms = IntCounterVec::new(Opts::new("alarms_total", "Alarm transitions"), &["transition"]);
        let mqtt_refused = IntCounterVec::new(Opts::new("mqtt_refused_total", "MQTT clients and messages the embedded broker refused, by reason"), &["reason"])
            .expect("static metric");
        let events_delivered = IntCounterVec::new(Opts::new("event_deliveries_total", "Event delivery attempts by outcome"), &["outcome"]);
        let outbound_http = IntCounterVec::new(
            Opts::new("plugin_http_requests_total", "Plugins' outbound HTTP requests by origin and outcome"),
            &["plugin", "origin", "outcome"],
        )
        .expect("static metric");
        // The metric names and labels above are static and valid, so construction cannot
        // fail; registration of distinct names cannot collide.
        let (device_messages, alarms, events_delivered) =
            (device_messages.expect("static metric"), alarms.expect("static metric"), events_delivered.expect("static metric"));
        let (requests, latency, failures, live_instances, installations) = (
            requests.expect("static metric"),
            latency.expect("static metric"),
            failures.expect("static metric"),
            live_instances.expect("static metric"),
            installations.expect("static metric"),
        );
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(failures.clone()),
            Box::new(live_instances.clone()),
            Box::new(installations.clone()),
            Box::new(device_messages.clone()),
            Box::new(alarms.clone()),
            Box::new(events_delivered.clone()),
            Box::new(mqtt_refused.clone()),
            Box::new(outbound_http.clone()),
        ] {
            let _ = registry.register(collector);
        }
        Self { registry, requests, latency, failures, live_instances, installations, device_messages, mqtt_refused, alarms, events_delivered, outbound_http }
    }

    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Handles for one installation's hot-path metrics, looked up once when it is loaded
/// instead of hashing label values on every request.
pub struct RouteMetrics {
    pub latency: prometheus::Histogram,
    pub ok: prometheus::IntCounter,
}

impl Metrics {
    pub fn route(&self, plugin: &str, installation: &str) -> RouteMetrics {
        RouteMetrics { latency: self.latency.with_label_values(&[plugin]), ok: self.requests.with_label_values(&[plugin, installation, "200"]) }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
