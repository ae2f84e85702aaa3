//! Plugins in TypeScript, JavaScript and Python, made the way a vendor makes them
//! (`linli plugin new --lang …`, `linli plugin build`; scripts/build-polyglot), install and
//! serve like Rust ones: the SDKs' routers, JSON errors and collections, the host's refusal of
//! a capability that was not granted. A JavaScript component in the standard wasi:http shape
//! serves its routes and reaches, with `fetch`, the origin the county granted and no other.
use anyhow::Context;
use linli_tests::origin::{query_value, set_http_hosts, Origin};
use linli_tests::*;
use serde_json::json;

async fn templates_serve_in_every_language(host: TestHost) -> anyhow::Result<()> {
    let vendor = Vendor::new("my-company")?;
    host.trust(&vendor).await?;
    let work = tempfile::tempdir()?;
    for name in ["notes-ts", "notes-js", "notes-python"] {
        // Packed, signed and uploaded as a vendor does it: with the CLI.
        let dir = polyglot_dir(name);
        let package = work.path().join(format!("{name}.lpkg"));
        let (dir_arg, package_arg, key_arg) = (dir.to_string_lossy(), package.to_string_lossy().to_string(), vendor.key().to_string_lossy().to_string());
        linli(&["plugin", "pack", &dir_arg, "--out", &package_arg])?;
        linli(&["plugin", "sign", &package_arg, "--key", &key_arg])?;
        let (server, token) = (host.url.clone(), host.admin_token.clone());
        let uploaded =
            tokio::task::spawn_blocking(move || linli(&["admin", "--server", &server, "--token", &token, "upload", &package_arg, "--county", DEMO_COUNTY]))
                .await??;
        assert!(uploaded.contains(&format!("\"{name}\"")), "{name}: {uploaded}");
        host.install(name, "0.1.0", "xingfu", &["data"], json!({})).await?.expect_status(201).context(name)?;
        host.install(name, "0.1.0", "heping", &[], json!({})).await?.expect_status(201).context(name)?;

        let url = format!("{}/t/xingfu/p/{name}/notes", host.url);
        let added = Reply::from(host.client.post(&url).json(&json!({ "author": "王阿姨", "text": "周六上午停水" })).send().await?).await?;
        let added = added.expect_status(201).context(name)?.json();
        let id = added["id"].as_str().context("the new note's id")?.to_string();
        let notes = host.plugin("GET", "xingfu", &format!("{name}/notes")).await?.expect_status(200).context(name)?.json();
        assert_eq!(notes, json!([{ "id": id, "author": "王阿姨", "text": "周六上午停水" }]), "{name}");

        // The SDK's errors, as the Rust SDK words them.
        let empty = Reply::from(host.client.post(&url).json(&json!({ "text": "  " })).send().await?).await?;
        assert_eq!((empty.status, empty.error_code().as_str()), (400, "invalid-argument"), "{name}: {}", empty.text);
        let not_json = Reply::from(host.client.post(&url).body("{").send().await?).await?;
        assert_eq!(not_json.status, 400, "{name}: {}", not_json.text);
        let missing = host.plugin("GET", "xingfu", &format!("{name}/nothing-here")).await?;
        assert_eq!((missing.status, missing.error_code().as_str()), (404, "not-found"), "{name}: {}", missing.text);
        let wrong_method = host.plugin("DELETE", "xingfu", &format!("{name}/notes")).await?;
        assert_eq!(wrong_method.status, 405, "{name}: {}", wrong_method.text);
        // Installed without `data`: the host refuses, the SDK answers the host's code.
        let refused = host.plugin("GET", "heping", &format!("{name}/notes")).await?;
        assert_eq!((refused.status, refused.error_code().as_str()), (403, "permission-denied"), "{name}: {}", refused.text);
    }
    host.stop().await;
    Ok(())
}
on_both_databases!(templates, templates_serve_in_every_language);

async fn javascript_wasi_http_component(host: TestHost) -> anyhow::Result<()> {
    let granted = Origin::answering("hello from the vendor").await?;
    let other = Origin::answering("you should not see this").await?;
    let vendor = Vendor::new("linli-tests")?;
    host.trust(&vendor).await?;
    let dir = polyglot_dir("fetch-js");
    let package = vendor.package_from(&dir, &dir.join("dist/plugin.wasm"), set_http_hosts(&[&granted]))?;
    host.upload(package).await?.expect_status(201)?;
    let grant = format!("http-host:{}", granted.url);
    host.install("fetch-js", "0.1.0", "xingfu", &["http", &grant], json!({})).await?.expect_status(201)?;

    let hello = host.plugin("GET", "xingfu", "fetch-js/hello").await?.expect_status(200)?;
    assert_eq!(hello.text, "hello from javascript");
    let echo =
        Reply::from(host.client.post(format!("{}/t/xingfu/p/fetch-js/echo?x=1", host.url)).header("x-linli-tenant", "heping").body("邻里").send().await?)
            .await?;
    let echo = echo.expect_status(200)?.json();
    assert_eq!(echo, json!({ "method": "POST", "path": "/echo", "query": "?x=1", "tenant": "xingfu", "body": "邻里" }));

    let fetch = |url: String| {
        let path = format!("fetch-js/fetch?url={}", query_value(&url));
        let host = &host;
        async move { host.plugin("GET", "xingfu", &path).await }
    };
    let reached = fetch(format!("{}/v1", granted.url)).await?.expect_status(200)?.json();
    assert_eq!(reached, json!({ "status": 200, "body": "hello from the vendor" }));
    let denied = fetch(format!("{}/v1", other.url)).await?;
    assert_eq!(denied.status, 502, "{}", denied.text);
    assert!(!denied.text.contains("you should not see this"), "{}", denied.text);
    host.stop().await;
    Ok(())
}
on_both_databases!(javascript_wasi_http, javascript_wasi_http_component);

/// `linli plugin test` runs a plugin's stories on a throwaway host: the templates' stories pass
/// in every language, the reference plugins' (in Rust, property in TypeScript, council in
/// Python), and a story that expects what the plugin does not
/// do fails, saying which step and why.
#[test]
fn story_files_pass_and_a_wrong_story_fails() -> anyhow::Result<()> {
    // The reference plugins' stories run against the components scripts/build-plugins built,
    // each beside its manifest and stories in a folder of its own.
    let work = tempfile::tempdir()?;
    let mut dirs = vec![
        polyglot_dir("notes-ts"),
        polyglot_dir("notes-js"),
        polyglot_dir("notes-python"),
        polyglot_dir("property"),
        polyglot_dir("council"),
        plugin_dir("hello"),
    ];
    for name in ["legal-aid", "time-bank", "parking", "elderly-care"] {
        let (source, dir) = (plugin_dir(name), work.path().join(name));
        std::fs::create_dir_all(dir.join("dist"))?;
        std::fs::copy(source.join("linli.toml"), dir.join("linli.toml"))?;
        std::fs::copy(plugin_wasm(name), dir.join("dist/plugin.wasm"))?;
        copy_folder(&source.join("stories"), &dir.join("stories"))?;
        dirs.push(dir);
    }
    for dir in dirs {
        let out = linli(&["plugin", "test", dir.to_str().context("path")?, "--no-build"])?;
        let passed = out.lines().find_map(|l| l.strip_suffix(" stories passed, 0 failed")).and_then(|n| n.parse::<u32>().ok());
        assert!(passed.is_some_and(|n| n >= 2), "{}: {out}", dir.display());
    }

    let source = polyglot_dir("notes-ts");
    let wrong = work.path().join("wrong");
    std::fs::create_dir_all(wrong.join("dist"))?;
    std::fs::create_dir_all(wrong.join("stories"))?;
    std::fs::copy(source.join("linli.toml"), wrong.join("linli.toml"))?;
    std::fs::copy(source.join("dist/plugin.wasm"), wrong.join("dist/plugin.wasm"))?;
    std::fs::write(
        wrong.join("stories/wrong.toml"),
        "[[story]]\nname = \"expects a note that was never written\"\n  [[story.step]]\n  as = \"resident\"\n  request = \"GET /notes\"\n  expect = { json = [{ text = \"不存在\" }] }\n",
    )?;
    let out = std::process::Command::new(linli_bin()).args(["plugin", "test", "--no-build"]).arg(&wrong).output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "a failing story must fail the command: {text}");
    assert!(text.contains("FAIL  expects a note that was never written") && text.contains("$: 0 items, expected 1"), "{text}");
    Ok(())
}

fn copy_folder(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

/// `linli plugin dev` serves the plugin on a throwaway host and, when a source changes,
/// rebuilds it and upgrades the installation (its data kept); the new code answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_loop_rebuilds_and_upgrades_on_change() -> anyhow::Result<()> {
    use std::io::BufRead;
    let work = tempfile::tempdir()?;
    let dir = work.path().join("notes-js");
    let source = polyglot_dir("notes-js");
    for file in ["linli.toml", "package.json", "src/index.js"] {
        std::fs::create_dir_all(dir.join(file).parent().context("parent")?)?;
        std::fs::copy(source.join(file), dir.join(file))?;
    }
    let mut child = std::process::Command::new(linli_bin())
        .args(["plugin", "dev", "--listen", "127.0.0.1:0"])
        .arg(&dir)
        .env("LINLI_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let (lines, seen) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str| -> anyhow::Result<String> {
        loop {
            let line = seen.recv_timeout(std::time::Duration::from_secs(240)).with_context(|| format!("no `{needle}` from linli plugin dev"))?;
            if line.contains(needle) {
                return Ok(line);
            }
        }
    };
    let outcome = async {
        let routes = wait_for("routes ")?;
        let base = routes.split_whitespace().nth(1).context("the routes URL")?.trim_end_matches("/…").to_string();
        wait_for("watching")?;
        let client = reqwest::Client::new();
        let post = |body: serde_json::Value| client.post(format!("{base}/notes")).json(&body).send();
        assert_eq!(post(json!({ "text": "第一条" })).await?.status(), 201);
        let refused = post(json!({ "text": "" })).await?.text().await?;
        assert!(refused.contains("text must not be empty"), "{refused}");

        let code = std::fs::read_to_string(dir.join("src/index.js"))?.replace("text must not be empty", "请写下留言内容");
        std::fs::write(dir.join("src/index.js"), code)?;
        let upgraded = wait_for("==> upgraded to")?;
        assert!(upgraded.contains("0.1.0-dev.2"), "{upgraded}");
        let refused = post(json!({ "text": "" })).await?.text().await?;
        assert!(refused.contains("请写下留言内容"), "the new build answers: {refused}");
        let notes: serde_json::Value = client.get(format!("{base}/notes")).send().await?.json().await?;
        assert_eq!(notes[0]["text"], "第一条", "the upgrade kept the data: {notes}");
        anyhow::Ok(())
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

/// Every module of the TypeScript and Python SDKs (type-checked and built by
/// scripts/build-polyglot with every capability in the world) reaches the host: each helper
/// answers what the host has, as a signed-in community worker.
async fn every_sdk_module_reaches_the_host(host: TestHost) -> anyhow::Result<()> {
    let vendor = Vendor::new("linli-tests")?;
    host.trust(&vendor).await?;
    let worker = host
        .person(json!({ "kind": "staff", "phone": "13700000031", "display_name": "赵审查员", "password": "linli-test-2026",
            "roles": [{ "role": "community-worker", "tenant": "xingfu" }] }))
        .await?;
    let resident = host
        .person(json!({ "kind": "resident", "phone": "13800000031", "display_name": "王阿姨", "password": "linli-test-2026", "tenant_id": "xingfu" }))
        .await?;
    let neighbour = host
        .person(json!({ "kind": "resident", "phone": "13800000032", "display_name": "钱大伯", "password": "linli-test-2026", "tenant_id": "xingfu" }))
        .await?;
    let grants = ["data", "identity", "base", "ledger", "devices", "tickets", "notify"];
    let plugins = ["every-capability-ts", "every-capability-py"];
    for name in plugins {
        let dir = polyglot_dir(name);
        host.upload(vendor.package_from(&dir, &dir.join("dist/plugin.wasm"), |_| {})?).await?.expect_status(201).context(name)?;
        host.install(name, "0.1.0", "xingfu", &grants, json!({})).await?.expect_status(201).context(name)?;
    }
    for (name, other) in [(plugins[0], plugins[1]), (plugins[1], plugins[0])] {
        for checks in [1, 2] {
            let answer = worker.get(&format!("/t/xingfu/p/{name}/check")).await?.expect_status(200).context(name)?.json();
            assert_eq!((answer["user"].as_str(), answer["staff"].as_bool()), (Some("赵审查员"), Some(true)), "{name}: {answer}");
            assert_eq!((answer["checks"].as_u64(), answer["version"].as_u64()), (Some(checks), Some(checks)), "{name}: {answer}");
            assert_eq!(answer["currencies"], json!(["points"]), "{name}: {answer}");
            assert_eq!(answer["balance"], 0, "{name}: {answer}");
            assert_eq!(answer["categories"], true, "{name}: {answer}");
            for count in ["places", "residents", "houses", "devices", "alarms", "created"] {
                assert!(answer[count].is_u64(), "{name}: {count} in {answer}");
            }
        }
        // A visitor: the SDK's require-user answers the host's words for it.
        let visitor = host.plugin("GET", "xingfu", &format!("{name}/check")).await?;
        assert_eq!((visitor.status, visitor.error_code().as_str()), (403, "permission-denied"), "{name}: {}", visitor.text);

        // A resident reports through the plugin: the ticket is hers (in her list, hers to
        // rate through this plugin only), its photo is told by its bytes, and nobody else
        // reports or rates as her.
        let route = |rest: &str| format!("/t/xingfu/p/{name}/report{rest}");
        let reported = resident.post(&route(""), json!({ "title": "厨房漏水" })).await?.expect_status(201).context(name)?.json();
        let id = reported["id"].as_str().context("the ticket's id")?.to_string();
        assert_eq!(reported["status"], "open", "{name}: {reported}");
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        let photo = resident.post_bytes(&route(&format!("/{id}/photo")), "image/png", png.clone()).await?.expect_status(201).context(name)?.json();
        assert_eq!(photo["n"], 1, "{name}: {photo}");
        let script = resident.post_bytes(&route(&format!("/{id}/photo")), "image/png", b"<svg onload=alert(1)>".to_vec()).await?;
        assert_eq!((script.status, script.error_code().as_str()), (400, "invalid-argument"), "{name}: {}", script.text);
        let mine = resident.get("/api/tickets").await?.expect_status(200)?.text;
        assert!(mine.contains(&id), "{name}: her list has the ticket: {mine}");
        let by_staff = worker.post(&route(""), json!({ "title": "代报" })).await?;
        assert_eq!((by_staff.status, by_staff.error_code().as_str()), (403, "permission-denied"), "{name}: {}", by_staff.text);
        let early = resident.post(&route(&format!("/{id}/rate")), json!({ "rating": 5 })).await?;
        assert_eq!(early.status, 409, "{name}: not resolved yet: {}", early.text);
        worker.post(&format!("/api/tickets/{id}/resolve"), json!({ "note": "已更换水管" })).await?.expect_status(200).context(name)?;
        let through_another = resident.post(&format!("/t/xingfu/p/{other}/report/{id}/rate"), json!({ "rating": 1 })).await?;
        assert_eq!((through_another.status, through_another.error_code().as_str()), (404, "not-found"), "{name}: {}", through_another.text);
        let not_hers = neighbour.post(&route(&format!("/{id}/rate")), json!({ "rating": 1 })).await?;
        assert_eq!((not_hers.status, not_hers.error_code().as_str()), (403, "permission-denied"), "{name}: {}", not_hers.text);
        let rated = resident.post(&route(&format!("/{id}/rate")), json!({ "rating": 5, "feedback": "很及时" })).await?.expect_status(200).context(name)?.json();
        assert_eq!(rated, json!({ "status": "closed", "rating": 5 }), "{name}");
        let after = resident.post_bytes(&route(&format!("/{id}/photo")), "image/png", png).await?;
        assert_eq!(after.status, 409, "{name}: a closed ticket takes no photo: {}", after.text);

        // The SDK's event handler gets the schedule's ticks; its first delivery of each fails
        // on purpose (an error the handler throws), and the host delivers it again.
        let retried_tick = || async {
            let events = worker.get(&format!("/t/xingfu/p/{name}/events")).await?.expect_status(200)?.json();
            let ticks: Vec<&serde_json::Value> = events.as_array().context("a list")?.iter().filter(|e| e["kind"] == "schedule").collect();
            for tick in &ticks {
                assert_eq!(tick["subject"], "tick", "{name}: {events}");
                assert!(tick["attempts"].as_u64().is_some_and(|n| (1..=2).contains(&n)), "{name}: delivered again after it succeeded: {events}");
            }
            Ok(ticks.iter().any(|t| t["attempts"] == 2))
        };
        lab::wait_until(&format!("{name} handled a tick on its second delivery"), retried_tick).await?;
    }
    host.stop().await;
    Ok(())
}
on_both_databases!(every_sdk_module, every_sdk_module_reaches_the_host);
