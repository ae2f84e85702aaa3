//! A component as a vendor builds it for Spin or `wasmtime serve`: it exports the standard
//! `wasi:http/incoming-handler` and reads its request and writes its response as streams.
//! It also calls one Linli capability (`data`), which a standard component may import too;
//! built without the default feature `linli` it imports WASI alone and runs on plain
//! `wasmtime serve` as well.
#[cfg(feature = "linli")]
use linli_sdk::data::Collection;
use wasi::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasi::io::streams::StreamError;

wasi::http::proxy::export!(WasiHello);

struct WasiHello;

impl wasi::exports::http::incoming_handler::Guest for WasiHello {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path_and_query = request.path_with_query().unwrap_or_default();
        let (path, query) = path_and_query.split_once('?').unwrap_or((&path_and_query, ""));
        let method = match request.method() {
            Method::Get => "GET".to_string(),
            Method::Post => "POST".to_string(),
            other => format!("{other:?}"),
        };
        match (method.as_str(), path) {
            ("GET", "/hello") => respond(out, 200, "text/plain; charset=utf-8", b"hello"),
            ("GET" | "POST", "/echo") => {
                let header = |name: &str| request.headers().get(name).first().map(|v| String::from_utf8_lossy(v).into_owned());
                let body = read_body(&request);
                let echo = serde_json::json!({
                    "method": method,
                    "path": path,
                    "query": query,
                    "tenant": header("x-linli-tenant"),
                    "request_id": header("x-linli-request-id"),
                    "authorization": header("authorization"),
                    "body": String::from_utf8_lossy(&body),
                });
                respond(out, 200, "application/json", echo.to_string().as_bytes())
            }
            #[cfg(feature = "linli")]
            ("POST", "/visits") => {
                let tenant = request.headers().get("x-linli-tenant").first().map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
                let counted = Collection::<u64>::new("visits").update(&tenant, |count| *count += 1);
                match counted {
                    Ok(visits) => respond(out, 200, "application/json", serde_json::json!({ "visits": visits.value }).to_string().as_bytes()),
                    Err(e) => respond(out, 500, "text/plain", e.message.as_bytes()),
                }
            }
            ("GET", "/big") => {
                // `kib` KiB in 4 KiB writes (the most one blocking write takes): the host
                // reads while this writes.
                let kib: usize = query.strip_prefix("kib=").and_then(|n| n.parse().ok()).unwrap_or(1);
                let response = OutgoingResponse::new(Fields::new());
                let Ok(body) = response.body() else { return };
                ResponseOutparam::set(out, Ok(response));
                let Ok(stream) = body.write() else { return };
                let chunk = [b'x'; 4096];
                let mut left = kib * 1024;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if stream.blocking_write_and_flush(&chunk[..n]).is_err() {
                        return;
                    }
                    left -= n;
                }
                drop(stream);
                let _ = OutgoingBody::finish(body, None);
            }
            ("GET", "/panic") => panic!("the test asked for a panic"),
            // Never answers: the host stops it at the installation's deadline.
            ("GET", "/spin") => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            ("GET", "/silent") => drop(out),
            _ => respond(out, 404, "text/plain", format!("no route for {method} {path}").as_bytes()),
        }
    }
}

fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let mut bytes = Vec::new();
    let Ok(body) = request.consume() else { return bytes };
    let Ok(stream) = body.stream() else { return bytes };
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(_)) => break,
        }
    }
    bytes
}

fn respond(out: ResponseOutparam, status: u16, content_type: &str, bytes: &[u8]) {
    let headers = Fields::new();
    let _ = headers.set("content-type", &[content_type.as_bytes().to_vec()]);
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(body) = response.body() else { return };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = body.write() {
        for chunk in bytes.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
    }
    let _ = OutgoingBody::finish(body, None);
}
