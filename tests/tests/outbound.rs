//! Outbound HTTP (`http` capability) as an attacker would try it: a plugin built with the
//! standard wasi:http client reaches the origin the county granted, and nothing else — not an
//! origin its manifest does not list, not one it lists but the county did not tick, not
//! anything once `http` is not granted, and a component that calls out without asking for
//! `http` is refused at upload. Responses are bounded in size and time, and counted per
//! origin in the metrics.
use linli_tests::origin::{query_value, set_http_hosts, Origin};
use linli_tests::*;
use serde_json::json;

async fn fetch(host: &TestHost, tenant: &str, url: &str) -> anyhow::Result<Reply> {
    host.plugin("GET", tenant, &format!("test-courier/fetch?url={}", query_value(url))).await
}

async fn only_granted_origins_are_reached(host: TestHost) -> anyhow::Result<()> {
    let granted = Origin::serve(b"hello from the vendor".to_vec(), false).await?;
    let unlisted = Origin::serve(b"you should not see this".to_vec(), false).await?;
    let unticked = Origin::serve(b"nor this".to_vec(), false).await?;
    let huge = Origin::serve(vec![b'x'; 9 << 20], false).await?;
    let silent = Origin::serve(Vec::new(), true).await?;
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    let package = vendor.package("courier", set_http_hosts(&[&granted, &unticked, &huge, &silent]))?;
    host.upload(package).await?.expect_status(201)?;
    let with_host = |o: &Origin| format!("http-host:{}", o.url);
    let grants = ["http".to_string(), with_host(&granted), with_host(&huge), with_host(&silent)];
    let grants: Vec<&str> = grants.iter().map(String::as_str).collect();
    host.install("test-courier", "0.1.0", "xingfu", &grants, json!({ "deadline_ms": 1500 })).await?.expect_status(201)?;
    // Installed elsewhere without `http`: it keeps the hosts' grants out too.
    let refused = host.install("test-courier", "0.1.0", "heping", &[&with_host(&granted)], json!({})).await?;
    assert_eq!(refused.status, 422, "a host without `http` itself: {}", refused.text);
    host.install("test-courier", "0.1.0", "heping", &[], json!({})).await?.expect_status(201)?;

    // The granted origin answers, through the standard client.
    let reached = fetch(&host, "xingfu", &format!("{}/v1/greeting", granted.url)).await?.expect_status(200)?.json();
    assert_eq!((reached["status"].as_u64(), reached["body"].as_str()), (Some(200), Some("hello from the vendor")), "{reached}");
    assert_eq!(granted.count(), 1);

    // Not listed, listed but not ticked, not granted at all: refused before anything is sent.
    for (tenant, origin) in [("xingfu", &unlisted), ("xingfu", &unticked), ("heping", &granted)] {
        let denied = fetch(&host, tenant, &format!("{}/", origin.url)).await?;
        assert_eq!((denied.status, denied.json()["error"].as_str()), (502, Some("HTTP-request-denied")), "{tenant} → {}: {}", origin.url, denied.text);
    }
    assert_eq!((unlisted.count(), unticked.count(), granted.count()), (0, 0, 1), "a refused request reached its origin");
    // The same host on another scheme or port is another origin.
    let https = fetch(&host, "xingfu", &granted.url.replace("http://", "https://")).await?;
    assert_eq!(https.json()["error"], "HTTP-request-denied", "{}", https.text);

    // A response past the size limit is cut off with wasi:http's own error.
    let big = fetch(&host, "xingfu", &format!("{}/export", huge.url)).await?;
    assert_eq!(big.json()["error"], "HTTP-response-body-size", "{}", big.text);
    // An origin that never answers holds the plugin no longer than its deadline.
    let stuck = fetch(&host, "xingfu", &format!("{}/slow", silent.url)).await?;
    assert!(stuck.status == 504 || stuck.json()["error"] == "connection-timeout", "{}: {}", stuck.status, stuck.text);

    // Counted per origin; refused origins under one label.
    let metrics = host.get("/metrics").await?.text;
    let count = |origin: &str, outcome: &str| {
        let labels = [format!("origin=\"{origin}\""), format!("outcome=\"{outcome}\""), "plugin=\"test-courier\"".to_string()];
        metrics
            .lines()
            .find(|l| l.starts_with("linli_plugin_http_requests_total{") && labels.iter().all(|label| l.contains(label.as_str())))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    assert_eq!(count(&granted.url, "sent"), Some(1), "{metrics}");
    assert_eq!(count("other", "denied"), Some(3), "refused for the installation granted `http`: {metrics}");

    // A component that calls out while its manifest does not ask for `http` is refused.
    let sneaky = vendor.package("courier", |m| {
        m.insert("id".into(), toml::Value::String("test-sneaky-courier".into()));
        m.remove("capabilities");
    })?;
    let upload = host.upload(sneaky).await?;
    assert_eq!(upload.status, 422, "{}", upload.text);
    assert!(upload.error_message().contains("does not request the `http` capability"), "{}", upload.text);
    host.stop().await;
    Ok(())
}
on_both_databases!(outbound_http, only_granted_origins_are_reached);
