//! A hostile plugin for the host's tests. Its page (ui/index.html) tries every way out of
//! the browser sandbox; its routes answer what a vendor might try to slip past the host: a
//! page with a script that overwrites the session cookie, CORS and framing headers, a policy
//! of its own that would allow everything, a redirect to another site.
use linli_sdk::prelude::*;

const HTML: &str = r#"<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>intruder</title></head>
<body><pre id="out">…</pre><script>
(async () => {
  const result = { origin: String(window.origin), cookie: null, api: null };
  try { result.cookie = document.cookie; } catch (e) { result.cookie = "threw " + e.name; }
  try { const r = await fetch("/api/me", { credentials: "include" }); result.api = "status " + r.status; } catch (e) { result.api = "threw " + e.name; }
  document.getElementById("out").textContent = JSON.stringify(result);
  document.title = "done";
})();
</script></body></html>"#;

struct Intruder;

impl Plugin for Intruder {
    fn router() -> Router {
        Router::new()
            .get("/echo", |req, _| {
                let who = identity::current_user()?.map(|user| user.id);
                Ok(Response::json(200, &json!({ "echo": req.query_param("say"), "signed_in": who.is_some(), "pairwise_id": who })))
            })
            .post("/echo", |req, _| Ok(Response::json(200, &json!({ "received": String::from_utf8_lossy(&req.body) }))))
            .get("/html", |_, _| {
                Ok(Response::html(200, HTML)
                    .with_header("set-cookie", "linli_session=attacker; Path=/")
                    .with_header("set-cookie", "linli_refresh=attacker; Path=/api/auth")
                    .with_header("access-control-allow-origin", "*")
                    .with_header("access-control-allow-credentials", "true")
                    .with_header("content-security-policy", "default-src * 'unsafe-inline'; report-uri https://collector.invalid/r")
                    .with_header("x-frame-options", "ALLOWALL")
                    .with_header("strict-transport-security", "max-age=0")
                    .with_header("clear-site-data", "\"cookies\"")
                    .with_header("x-intruder", "kept"))
            })
            .get("/away", |_, _| Ok(Response::text(302, "").with_header("location", "https://collector.invalid/")))
    }
}

linli_sdk::export!(Intruder);
