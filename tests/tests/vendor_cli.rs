//! A vendor's first five minutes, through the real `linli` binary: a key, a new plugin from
//! the template, built for wasm32-wasip2, packed, signed, verified, and served by a host.
use linli_tests::*;
use serde_json::json;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_plugin_from_the_template_builds_signs_and_serves() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let dir = work.path().join("notes");
    let dir_arg = dir.to_str().unwrap_or_default();
    linli(&["plugin", "new", "notes", "--dir", dir_arg])?;
    for file in ["Cargo.toml", "linli.toml", "src/lib.rs", "ui/index.html", ".cargo/config.toml"] {
        assert!(dir.join(file).exists(), "the template has {file}");
    }
    assert!(linli(&["plugin", "new", "notes", "--dir", dir_arg]).unwrap_err().to_string().contains("not empty"));
    assert!(linli(&["plugin", "new", "Bad Name"]).unwrap_err().to_string().contains("not a valid plugin id"));

    // Built with its own target directory, kept under target/ so reruns are quick.
    let build = Command::new(linli_bin()).args(["plugin", "build", dir_arg]).env("CARGO_TARGET_DIR", target_dir().join("vendor-cli-test")).output()?;
    assert!(build.status.success(), "plugin build failed: {}", String::from_utf8_lossy(&build.stderr));
    let wasm = dir.join("dist/plugin.wasm");
    assert_eq!(linli_host::runtime::wasm_kind(&std::fs::read(&wasm)?), linli_host::runtime::WasmKind::Component);

    let vendor = Vendor::new("my-company")?;
    linli(&["plugin", "pack", dir_arg])?;
    let package = dir.join("dist/notes-0.1.0.lpkg");
    let package_arg = package.to_str().unwrap_or_default();
    assert!(linli(&["plugin", "verify", package_arg]).unwrap_err().to_string().contains("not signed"));
    linli(&["plugin", "sign", package_arg, "--key", vendor.key().to_str().unwrap_or_default()])?;
    let public = vendor.dir.path().join("my-company.pub");
    let verified = linli(&["plugin", "verify", package_arg, "--public-key", public.to_str().unwrap_or_default()])?;
    assert!(verified.contains("signature: valid"), "{verified}");
    assert!(verified.contains("requests data"), "{verified}");
    let stranger = Vendor::new("stranger")?;
    let wrong = stranger.dir.path().join("stranger.pub");
    assert!(linli(&["plugin", "verify", package_arg, "--public-key", wrong.to_str().unwrap_or_default()]).is_err());

    // Packing a core module is refused with a hint.
    let core = work.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0")?;
    let refused =
        linli(&["plugin", "pack", dir_arg, "--wasm", core.to_str().unwrap_or_default(), "--out", work.path().join("x.lpkg").to_str().unwrap_or_default()]);
    assert!(refused.unwrap_err().to_string().contains("not a WebAssembly component"));

    // The county installs it; residents use it.
    let host = TestHost::start(Backend::Sqlite).await?.expect("SQLite is always available");
    host.trust(&vendor).await?;
    host.upload(std::fs::read(&package)?).await?.expect_status(201)?;
    host.install("notes", "0.1.0", "xingfu", &["data"], json!({})).await?.expect_status(201)?;
    let created = host.client.post(format!("{}/t/xingfu/p/notes/notes", host.url)).json(&json!({ "author": "王阿姨", "text": "周六上午义诊" })).send().await?;
    assert_eq!(created.status(), 201);
    let empty = host.client.post(format!("{}/t/xingfu/p/notes/notes", host.url)).json(&json!({ "author": "x", "text": " " })).send().await?;
    assert_eq!(empty.status(), 400);
    let notes = host.plugin("GET", "xingfu", "notes/notes").await?.expect_status(200)?.json();
    assert_eq!(notes[0]["text"], "周六上午义诊");
    host.stop().await;
    Ok(())
}

#[test]
fn keys_gen_refuses_to_overwrite() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let prefix = dir.path().join("k");
    let prefix = prefix.to_str().unwrap_or_default();
    let out = linli(&["keys", "gen", "--out", prefix])?;
    assert!(out.contains("key id:"));
    assert!(linli(&["keys", "gen", "--out", prefix]).unwrap_err().to_string().contains("--force"));
    linli(&["keys", "gen", "--out", prefix, "--force"])?;
    Ok(())
}

/// `linli plugin world` writes a world that imports exactly what the manifest requests, with
/// the platform's WIT beside it: what componentize-js and componentize-py build against, so
/// their components pass the upload's import check. Read back with wit-parser, as those tools
/// read it.
#[test]
fn the_world_of_a_plugin_imports_what_its_manifest_requests() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let dir = work.path();
    std::fs::write(
        dir.join("linli.toml"),
        "id = \"notes\"\nname = \"便民记事\"\nversion = \"0.1.0\"\nvendor = \"my-company\"\n\
         [[capabilities]]\nname = \"data\"\nreason = \"keeps the notes\"\n\
         [[capabilities]]\nname = \"identity\"\nreason = \"greets the resident\"\n",
    )?;
    let said = linli(&["plugin", "world", dir.to_str().unwrap_or_default()])?;
    assert!(said.contains("world `plugin`"), "{said}");
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_dir(dir.join("wit"))?;
    let world = resolve.select_world(&[package], Some("plugin"))?;
    let names = |items: &wit_parser::IndexMap<wit_parser::WorldKey, wit_parser::WorldItem>| -> Vec<String> {
        items
            .iter()
            .filter_map(|(key, _)| match key {
                wit_parser::WorldKey::Interface(id) => resolve.id_of(*id),
                wit_parser::WorldKey::Name(name) => Some(name.clone()),
            })
            .map(|name| name.split('@').next().unwrap_or_default().to_string())
            .collect()
    };
    let imports = names(&resolve.worlds[world].imports);
    for wanted in ["linli:platform/log", "linli:platform/data", "linli:platform/identity"] {
        assert!(imports.iter().any(|i| i == wanted), "{wanted} is not imported: {imports:?}");
    }
    for unwanted in ["base", "ledger", "devices", "tickets", "notify"] {
        assert!(!imports.iter().any(|i| i == &format!("linli:platform/{unwanted}")), "{unwanted} is imported: {imports:?}");
    }
    assert_eq!(names(&resolve.worlds[world].exports), ["linli:platform/handler"]);
    Ok(())
}
