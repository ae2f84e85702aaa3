//! A component built as for Spin or `wasmtime serve` — it exports the standard
//! `wasi:http/incoming-handler` — installs and serves its routes like a Linli handler: the
//! same tenant and request-id headers (forged ones stripped), its request and response bodies
//! as streams within the installation's limits, the Linli capabilities it was granted and no
//! others, and its failures reported as a Linli plugin's are.
use anyhow::Context;
use linli_tests::*;
use serde_json::json;

async fn standard_components_serve_routes(host: TestHost) -> anyhow::Result<()> {
    let vendor = Vendor::new("linli-tests")?;
    host.trust(&vendor).await?;
    host.upload(vendor.package("wasi-hello", |_| {})?).await?.expect_status(201)?;
    host.install("wasi-hello", "0.1.0", "xingfu", &["data"], json!({})).await?.expect_status(201)?;
    host.install("wasi-hello", "0.1.0", "heping", &[], json!({})).await?.expect_status(201)?;

    let hello = host.plugin("GET", "xingfu", "wasi-hello/hello").await?.expect_status(200).context("GET /hello")?;
    assert_eq!(hello.text, "hello");

    // The path below the prefix, the query, the body; the host's headers, not the caller's.
    let echo = host
        .client
        .post(format!("{}/t/xingfu/p/wasi-hello/echo?a=1&b=%E9%82%BB", host.url))
        .header("x-linli-tenant", "heping")
        .header("x-linli-request-id", "forged")
        .body("你好，标准组件")
        .send()
        .await?;
    let echo = Reply::from(echo).await?.expect_status(200).context("POST /echo")?.json();
    assert_eq!((echo["method"].as_str(), echo["path"].as_str(), echo["query"].as_str()), (Some("POST"), Some("/echo"), Some("a=1&b=%E9%82%BB")), "{echo}");
    assert_eq!(echo["tenant"], "xingfu", "the tenant header is the host's: {echo}");
    assert!(echo["request_id"].as_str().is_some_and(|id| id != "forged" && !id.is_empty()), "{echo}");
    assert_eq!(echo["body"], "你好，标准组件");

    // A granted capability works; where it was not granted, it is refused.
    for expected in [1, 2] {
        let visits = host.plugin("POST", "xingfu", "wasi-hello/visits").await?.expect_status(200).context("POST /visits")?.json();
        assert_eq!(visits["visits"], expected, "{visits}");
    }
    let refused = host.plugin("POST", "heping", "wasi-hello/visits").await?;
    assert_eq!(refused.status, 500, "{}", refused.text);
    assert!(refused.text.contains("not granted") || refused.text.contains("permission"), "{}", refused.text);

    // A streamed body well past one write comes back whole; one past the memory limit is refused.
    let big = host.plugin("GET", "xingfu", "wasi-hello/big?kib=1024").await?.expect_status(200).context("GET /big")?;
    assert_eq!(big.text.len(), 1 << 20);
    let too_big = host.plugin("GET", "xingfu", "wasi-hello/big?kib=20480").await?;
    assert_eq!((too_big.status, too_big.error_code().as_str()), (500, "memory-limit"), "{}", too_big.text);

    // A panic, and a handler that returns without answering, are the plugin's failures.
    for route in ["panic", "silent"] {
        let failed = host.plugin("GET", "xingfu", &format!("wasi-hello/{route}")).await?;
        assert_eq!((failed.status, failed.error_code().as_str()), (500, "plugin-trap"), "{route}: {}", failed.text);
    }
    // A guest that never answers is stopped at the deadline (1 s in its linli.toml).
    let spun = host.plugin("GET", "xingfu", "wasi-hello/spin").await?;
    assert_eq!((spun.status, spun.error_code().as_str()), (504, "deadline-exceeded"), "{}", spun.text);
    // And the installation still serves.
    host.plugin("GET", "xingfu", "wasi-hello/hello").await?.expect_status(200)?;
    host.stop().await;
    Ok(())
}
on_both_databases!(standard_http, standard_components_serve_routes);
