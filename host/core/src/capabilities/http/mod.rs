//! `http`: outbound HTTP for a plugin's server code, through the standard
//! `wasi:http/outgoing-handler`, so that JavaScript's `fetch` and the Rust and Python clients
//! built for wasi:http work as they are (Spin's `allowed_outbound_hosts` is the model). Only
//! to the origins the manifest lists (`hosts`) and the county granted one by one
//! (`http-host:ORIGIN`). Every request is checked by its scheme, host and port (a redirect is
//! a new request the guest makes, checked again), bounded by the plugin's deadline and in
//! response size, and counted per origin. Anywhere else, or without the grant, the guest
//! gets wasi:http's `HTTP-request-denied` and nothing leaves the host.
//!
//! The interface is WASI's, so the runtime links it beside the rest of WASI (it shares
//! WASI's resource table); this capability decides where a request may go.
use crate::capabilities::{Capability, CapabilityInfo, Deadline, Grant, RequestContext};
use crate::metrics::Metrics;
use http_body_util::BodyExt;
use linli_formats::manifest::HTTP_HOST_GRANT;
use std::future::Future;
use std::sync::Arc;
use wasmtime::component::Linker;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

pub const INFO: CapabilityInfo = CapabilityInfo {
    name: "http",
    interface: "wasi:http/outgoing-handler",
    summary_zh: "访问外部网络服务（仅限清单列出、县里逐个批准的地址）",
    summary_en: "Call outside web services (only the addresses the manifest lists and the county approves one by one)",
    always_granted: false,
    scopes: &[],
};

/// The most a response body may hold: a plugin's memory is small, and what it fetches is
/// data, not files.
pub const MAX_RESPONSE_BYTES: usize = 8 << 20;

/// What one installation may call, decided when it is loaded.
pub struct OutboundGrant {
    /// Normalised origins (`origin_of`): granted and listed in the manifest.
    origins: Vec<String>,
    plugin_id: String,
    metrics: Arc<Metrics>,
}

impl OutboundGrant {
    fn count(&self, origin: &str, outcome: &str) {
        self.metrics.outbound_http.with_label_values(&[self.plugin_id.as_str(), origin, outcome]).inc();
    }
}

/// Per request: the grant (`None`: not granted) and the deadline that bounds every call.
pub struct OutboundHttp {
    grant: Option<Arc<OutboundGrant>>,
    deadline: Deadline,
}

/// `scheme://host[:port]` of a URI, lower case, with the port only when it is not the
/// scheme's default: origins compare as written in manifests.
pub fn origin_of(uri: &http::Uri) -> Option<String> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let host = uri.host()?.to_ascii_lowercase();
    Some(match uri.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

pub struct Adapter;

impl Capability for Adapter {
    const INFO: CapabilityInfo = INFO;
    type Configured = OutboundGrant;
    type State = OutboundHttp;

    fn configure(grant: &Grant<'_>) -> OutboundGrant {
        let listed: Vec<Option<String>> = grant.manifest.http_hosts().iter().map(|o| o.parse::<http::Uri>().ok().and_then(|u| origin_of(&u))).collect();
        let origins = grant
            .granted
            .iter()
            .filter_map(|g| g.strip_prefix(HTTP_HOST_GRANT))
            .filter_map(|o| o.parse::<http::Uri>().ok().and_then(|u| origin_of(&u)))
            .filter(|o| listed.iter().flatten().any(|l| l == o))
            .collect();
        OutboundGrant { origins, plugin_id: grant.plugin_id.to_string(), metrics: grant.metrics.clone() }
    }

    fn prepare(configured: Option<Arc<OutboundGrant>>, request: &RequestContext) -> OutboundHttp {
        OutboundHttp { grant: configured, deadline: request.deadline }
    }

    /// Nothing to link here: see the module's comment.
    fn add_to_linker<T: Send + 'static>(_linker: &mut Linker<T>, _project: fn(&mut T) -> &mut OutboundHttp) -> wasmtime::Result<()> {
        Ok(())
    }
}

type Sent = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>), HttpError>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_done: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let origin = origin_of(request.uri());
        let grant = match (&self.grant, &origin) {
            (Some(grant), Some(origin)) if grant.origins.contains(origin) => grant.clone(),
            (grant, _) => {
                // A refused origin is whatever the plugin wrote: counted under one label.
                if let Some(grant) = grant {
                    grant.count("other", "denied");
                }
                tracing::info!(origin = origin.as_deref().unwrap_or("?"), "outbound HTTP refused: not granted");
                return Box::new(async { Err(HttpError::HttpRequestDenied) });
            }
        };
        let origin = origin.unwrap_or_default();
        let deadline = self.deadline.0;
        Box::new(async move {
            // No wait may outlast the request: each of the client's timeouts ends at the deadline.
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let cap = |asked: Option<std::time::Duration>| Some(asked.map_or(left, |a| a.min(left)));
            let options = RequestOptions {
                connect_timeout: cap(options.and_then(|o| o.connect_timeout)),
                first_byte_timeout: cap(options.and_then(|o| o.first_byte_timeout)),
                between_bytes_timeout: cap(options.and_then(|o| o.between_bytes_timeout)),
            };
            let sent = tokio::time::timeout_at(deadline.into(), wasmtime_wasi_http::default_send_request(request, Some(options))).await;
            match sent {
                Err(_) => {
                    grant.count(&origin, "timeout");
                    Err(HttpError::ConnectionTimeout)
                }
                Ok(Err(e)) => {
                    grant.count(&origin, "failed");
                    Err(e)
                }
                Ok(Ok((response, io))) => {
                    grant.count(&origin, "sent");
                    // A body announced too large is refused before it is read, with the code
                    // the guest can tell; one that grows too large while streaming (no
                    // length given) is cut off by the limit below.
                    let announced = response.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
                    if announced.is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
                        return Err(HttpError::HttpResponseBodySize(announced));
                    }
                    let response = response.map(|body| {
                        http_body_util::Limited::new(body, MAX_RESPONSE_BYTES)
                            .map_err(|e| match e.downcast::<HttpError>() {
                                Ok(inner) => *inner,
                                Err(_) => HttpError::HttpResponseBodySize(Some(MAX_RESPONSE_BYTES as u64)),
                            })
                            .boxed_unsync()
                    });
                    Ok((response, Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origins_compare_as_manifests_write_them() {
        let origin = |uri: &str| origin_of(&uri.parse().expect("a URI"));
        assert_eq!(origin("https://API.Vendor.cn/v1/x?y=1").as_deref(), Some("https://api.vendor.cn"));
        assert_eq!(origin("https://api.vendor.cn:443/").as_deref(), Some("https://api.vendor.cn"));
        assert_eq!(origin("https://api.vendor.cn:8443/").as_deref(), Some("https://api.vendor.cn:8443"));
        assert_eq!(origin("http://127.0.0.1:8080/a").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(origin("http://[::1]:8080/a").as_deref(), Some("http://[::1]:8080"));
        assert_eq!(origin("ftp://files.example/").as_deref(), None);
        assert_eq!(origin("/relative").as_deref(), None);
    }
}
