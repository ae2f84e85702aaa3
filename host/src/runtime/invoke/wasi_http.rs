//! Routes served through the standard `wasi:http/incoming-handler@0.2.x`: the request goes
//! in as a wasi:http resource with its body as a stream, and the response body is read while
//! the guest writes it, bounded by the installation's memory limit and its deadline.
use super::{classify, error_id, log_dropped, scopeguard, Entry, InvokeError, LoadedPlugin, PluginRequest, PluginResponse};
use crate::runtime::Runtime;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

/// Past the deadline the guest is interrupted at the next epoch tick; a guest waiting in a
/// host call (a sleep, say) is not, so the whole exchange is cut off this much later.
const DEADLINE_GRACE: Duration = Duration::from_millis(250);

/// Why an answer did not come back whole.
enum Unanswered {
    /// The guest never set a response, or set an error code instead of one.
    NoResponse(Option<ErrorCode>),
    /// The body was larger than the installation's memory limit.
    TooLarge,
    /// The body stream ended in an error (the guest trapped while writing, say).
    Broken(String),
}

impl Runtime {
    /// One request to a wasi:http component, in a fresh instance. The guest runs beside the
    /// reading of its response body, on this task (a task of its own cost a spawn and a
    /// hand-over between threads per request), so the body is read while it is written.
    pub(super) async fn invoke_wasi_http(&self, plugin: Arc<LoadedPlugin>, request: PluginRequest) -> Result<PluginResponse, InvokeError> {
        let limits = plugin.installation.limits;
        let (mut store, stderr, started) = self.store_for(&plugin, &request.tenant, &request.request_id, request.user.clone());
        let request_id = request.request_id.clone();
        let host_failure = |what: String| {
            let error_id = error_id();
            tracing::error!(error_id, plugin = %plugin.installation.plugin_id, request = %request_id, "{what}");
            InvokeError::Host { error_id }
        };
        let incoming = hyper_request(request).map_err(|e| host_failure(format!("the request cannot be given to a wasi:http component: {e}")))?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let resources = {
            let mut http = store.data_mut().http();
            http.new_incoming_request(Scheme::Http, incoming).and_then(|request| Ok((request, http.new_response_outparam(sender)?)))
        };
        let (incoming, outparam) = resources.map_err(|e| host_failure(format!("wasi:http resources: {e:#}")))?;

        self.metrics.live_instances.inc();
        let _live = scopeguard(|| self.metrics.live_instances.dec());
        let guest_plugin = plugin.clone();
        // Dropping this future (on a return below) drops the store, which ends the instance.
        let guest = async move {
            let outcome = async {
                let Entry::WasiHttp(pre) = &guest_plugin.entry else {
                    return Err(wasmtime::format_err!("not a wasi:http component"));
                };
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy.wasi_http_incoming_handler().call_handle(&mut store, incoming, outparam).await
            }
            .await;
            (store, outcome)
        };
        tokio::pin!(guest);

        let cutoff = tokio::time::Instant::from_std(started + Duration::from_millis(limits.deadline_ms) + DEADLINE_GRACE);
        let max_body = usize::try_from(limits.memory_mib << 20).unwrap_or(usize::MAX);
        let reading = read_answer(receiver, max_body);
        tokio::pin!(reading);
        // Whichever ends first: the answer (then the guest returns soon after), or the guest
        // (a trap, or a return without finishing the body, whose resources then live on in
        // the store: dropping the store ends the body).
        let (answer, finished) = tokio::select! {
            answer = &mut reading => (Some(answer), None),
            finished = &mut guest => (None, Some(finished)),
            () = tokio::time::sleep_until(cutoff) => return Err(timed_out(&plugin, &request_id, started)),
        };
        let (answer, store, outcome) = match (answer, finished) {
            (Some(answer), _) => match tokio::time::timeout_at(cutoff, &mut guest).await {
                Ok((store, outcome)) => (answer, store, outcome),
                Err(_) => {
                    tracing::warn!(plugin = %plugin.installation.plugin_id, request = %request_id, "the component answered but did not return before its deadline");
                    return answer.map_err(|_| timed_out(&plugin, &request_id, started));
                }
            },
            (None, Some((store, Err(error)))) => return Err(classify(&plugin, &store, &stderr, started, &request_id, error)),
            (None, Some((store, Ok(())))) => {
                log_dropped(&plugin, &store, &request_id);
                drop(store);
                match tokio::time::timeout_at(cutoff, &mut reading).await {
                    Ok(answer) => return finish(&plugin, &request_id, &stderr, answer),
                    Err(_) => return Err(timed_out(&plugin, &request_id, started)),
                }
            }
            (None, None) => return Err(host_failure("neither the answer nor the guest ended".to_string())),
        };
        if let Err(error) = outcome {
            if answer.is_ok() {
                tracing::warn!(plugin = %plugin.installation.plugin_id, request = %request_id, "the component failed after its response was complete: {error:#}");
                return answer.map_err(|_| timed_out(&plugin, &request_id, started));
            }
            return Err(classify(&plugin, &store, &stderr, started, &request_id, error));
        }
        log_dropped(&plugin, &store, &request_id);
        finish(&plugin, &request_id, &stderr, answer)
    }
}

/// The response, or why a component that returned normally did not give one.
fn finish(
    plugin: &LoadedPlugin,
    request_id: &str,
    stderr: &MemoryOutputPipe,
    answer: Result<PluginResponse, Unanswered>,
) -> Result<PluginResponse, InvokeError> {
    let limits = plugin.installation.limits;
    match answer {
        Ok(response) => Ok(response),
        Err(Unanswered::TooLarge) => {
            let error_id = error_id();
            tracing::warn!(error_id, plugin = %plugin.installation.plugin_id, request = %request_id, "response body over the memory limit");
            Err(InvokeError::MemoryLimit { error_id, memory_mib: limits.memory_mib })
        }
        Err(Unanswered::NoResponse(code)) => {
            let error_id = error_id();
            let captured = String::from_utf8_lossy(&stderr.contents()).into_owned();
            let why = code.map_or_else(|| "returned without setting a response".to_string(), |code| format!("answered the error {code:?}"));
            tracing::error!(error_id, plugin = %plugin.installation.plugin_id, request = %request_id, "the wasi:http component {why}; stderr: {captured}");
            Err(InvokeError::Trap { error_id })
        }
        Err(Unanswered::Broken(reason)) => {
            let error_id = error_id();
            tracing::error!(error_id, plugin = %plugin.installation.plugin_id, request = %request_id, "the response body broke off: {reason}");
            Err(InvokeError::Trap { error_id })
        }
    }
}

/// The response head the guest set, then its whole body (at most `max_body` bytes).
async fn read_answer(
    receiver: tokio::sync::oneshot::Receiver<Result<http::Response<HyperOutgoingBody>, ErrorCode>>,
    max_body: usize,
) -> Result<PluginResponse, Unanswered> {
    let response = match receiver.await {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => return Err(Unanswered::NoResponse(Some(code))),
        Err(_) => return Err(Unanswered::NoResponse(None)),
    };
    let (parts, body) = response.into_parts();
    let body = match Limited::new(body, max_body).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(Unanswered::TooLarge),
        Err(e) => return Err(Unanswered::Broken(e.to_string())),
    };
    let headers = parts.headers.iter().filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))).collect();
    Ok(PluginResponse { status: parts.status.as_u16(), headers, body: body.to_vec() })
}

/// The request as a wasi:http component sees it: the path below the plugin's prefix, the
/// headers the host passes on (with `x-linli-tenant` and `x-linli-request-id`), the body.
fn hyper_request(request: PluginRequest) -> Result<http::Request<Full<Bytes>>, http::Error> {
    let authority = request
        .headers
        .iter()
        .find(|(name, _)| name == "host")
        .and_then(|(_, value)| http::uri::Authority::try_from(value.as_str()).ok())
        .map_or_else(|| "localhost".to_string(), |authority| authority.to_string());
    let path_and_query = if request.query.is_empty() { request.path } else { format!("{}?{}", request.path, request.query) };
    let mut builder = http::Request::builder().method(request.method.as_str()).uri(format!("http://{authority}{path_and_query}"));
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(Full::new(Bytes::from(request.body)))
}

fn timed_out(plugin: &LoadedPlugin, request_id: &str, started: Instant) -> InvokeError {
    let error_id = error_id();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    tracing::warn!(error_id, plugin = %plugin.installation.plugin_id, request = request_id, elapsed_ms, "deadline reached");
    InvokeError::Timeout { error_id, deadline_ms: plugin.installation.limits.deadline_ms }
}
