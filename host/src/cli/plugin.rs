//! `linli plugin new | build | pack | sign | world | verify`.
use super::polyglot::{self, Language};
use crate::packages::manifest::MANIFEST_FILE;
use crate::packages::signing::{self, SignatureFile};
use crate::packages::{Manifest, Package};
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    #[value(alias = "typescript")]
    Ts,
    #[value(alias = "javascript")]
    Js,
    #[value(alias = "py")]
    Python,
}

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Start a plugin from the SDK template.
    New {
        /// Plugin id: lower-case letters, digits and `-`.
        name: String,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The language to write it in.
        #[arg(long, value_enum, default_value = "rust")]
        lang: Lang,
        /// Path to the Linli Rust SDK (default: the SDK next to this linli's sources). The
        /// TypeScript/JavaScript and Python SDKs come with linli itself.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Compile the plugin to a component into dist/ (Rust: cargo for wasm32-wasip2;
    /// TypeScript/JavaScript: esbuild and componentize-js; Python: componentize-py; the tools
    /// are installed into a cache on first use) and check it against linli.toml.
    Build {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Bundle linli.toml, the component and ui/ into dist/ID-VERSION.lpkg.
    Pack {
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The component to pack (default: dist/ + the manifest's `component`).
        #[arg(long)]
        wasm: Option<PathBuf>,
        /// Output file (default: dist/ID-VERSION.lpkg).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Sign a package with a vendor key (in place unless --out).
    Sign {
        package: PathBuf,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write the WIT world the manifest asks for (wit/world.wit, world `plugin`) and the
    /// platform's WIT beside it (wit/deps/linli-platform/), for tools that import every
    /// interface of the world they build against (componentize-js, componentize-py).
    World {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Build the plugin, start a throwaway host with it (the demo county and its people, the
    /// plugin installed with everything it requests) and run its stories (stories/*.toml).
    Test {
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Test the component already in dist/ instead of building it first.
        #[arg(long)]
        no_build: bool,
    },
    /// Run the plugin on a throwaway local host, rebuild and upgrade it when its sources
    /// change, and print the URLs, the people to sign in as and the host's log.
    Dev {
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Address of the dev host.
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: String,
    },
    /// Check a package's hashes and, with --public-key, its signature.
    Verify {
        package: PathBuf,
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
}

pub fn run(command: PluginCommand) -> Result<()> {
    match command {
        PluginCommand::New { name, dir, lang, sdk } => new(&name, dir, lang, sdk),
        PluginCommand::Build { dir } => build(&dir).map(|_| ()),
        PluginCommand::Pack { dir, wasm, out } => pack(&dir, wasm, out).map(|_| ()),
        PluginCommand::Sign { package, key, out } => sign(&package, &key, out),
        PluginCommand::World { dir } => world(&dir),
        PluginCommand::Test { dir, no_build } => super::stories::test(&dir, !no_build),
        PluginCommand::Dev { dir, listen } => super::devloop::dev(&dir, &listen),
        PluginCommand::Verify { package, public_key } => verify(&package, public_key),
    }
}

/// The platform's WIT, as this linli was built with it.
const PLATFORM_WIT: &[(&str, &str)] = &[
    ("types.wit", include_str!("../../../wit/types.wit")),
    ("http.wit", include_str!("../../../wit/http.wit")),
    ("log.wit", include_str!("../../../wit/log.wit")),
    ("data.wit", include_str!("../../../wit/data.wit")),
    ("identity.wit", include_str!("../../../wit/identity.wit")),
    ("base.wit", include_str!("../../../wit/base.wit")),
    ("ledger.wit", include_str!("../../../wit/ledger.wit")),
    ("devices.wit", include_str!("../../../wit/devices.wit")),
    ("tickets.wit", include_str!("../../../wit/tickets.wit")),
    ("notify.wit", include_str!("../../../wit/notify.wit")),
    ("events.wit", include_str!("../../../wit/events.wit")),
    ("world.wit", include_str!("../../../wit/world.wit")),
];

/// The platform's WIT package version, from its world file.
fn platform_version() -> &'static str {
    PLATFORM_WIT
        .iter()
        .find(|(name, _)| *name == "world.wit")
        .and_then(|(_, text)| text.lines().find_map(|l| l.trim().strip_prefix("package linli:platform@")))
        .map_or("0.1.0", |v| v.trim_end_matches(';'))
}

/// How a plugin's component serves its routes, which decides what its world exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorldExport {
    /// `linli:platform/handler` (the SDKs' routers).
    Linli,
    /// The standard `wasi:http/incoming-handler`, as componentize-js's fetch event
    /// implements it (at the WASI version of its engine).
    WasiHttp,
}

/// The world of a plugin that imports exactly what `manifest` requests.
fn world_of(manifest: &Manifest, export: WorldExport) -> String {
    let version = platform_version();
    let mut lines = match export {
        WorldExport::Linli => vec![format!("    include linli:platform/routes@{version};")],
        WorldExport::WasiHttp => vec![
            format!("    import linli:platform/log@{version};"),
            format!("    export wasi:http/incoming-handler@{};", super::toolchain::JS_ENGINE_WASI_VERSION),
        ],
    };
    for capability in &manifest.capabilities {
        // `log` is in `routes`; `http` is WASI's, which the tools bring themselves.
        if !matches!(capability.name.as_str(), "log" | "http") {
            lines.push(format!("    include linli:platform/with-{}@{version};", capability.name));
        }
    }
    if !manifest.events.subscribe.is_empty() || !manifest.events.schedules.is_empty() {
        lines.push(format!("    include linli:platform/with-events@{version};"));
    }
    format!(
        "// Written by `linli plugin world` from linli.toml: import exactly what the manifest\n// requests. Run it again after changing [[capabilities]] or [events].\npackage linli-plugin:{id};\n\nworld plugin {{\n{lines}\n}}\n",
        id = manifest.id,
        lines = lines.join("\n")
    )
}

/// The files of a plugin's WIT folder: its world and the platform's WIT under deps/.
fn world_files(manifest: &Manifest, export: WorldExport) -> Vec<(PathBuf, String)> {
    let mut files = vec![(PathBuf::from("world.wit"), world_of(manifest, export))];
    for (name, text) in PLATFORM_WIT {
        files.push((Path::new("deps/linli-platform").join(name), (*text).to_string()));
    }
    files
}

/// Writes the plugin's world and the platform's WIT into the folder `wit`.
pub fn write_world(wit: &Path, manifest: &Manifest, export: WorldExport) -> Result<()> {
    for (path, text) in world_files(manifest, export) {
        let path = wit.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text)?;
    }
    Ok(())
}

/// The platform's WIT as one file (one `package` line), for tools that read a single source.
pub fn platform_wit_single_file() -> String {
    let mut out = format!("package linli:platform@{};\n", platform_version());
    for (_, text) in PLATFORM_WIT {
        out.extend(text.lines().filter(|l| !l.trim_start().starts_with("package ")).map(|l| format!("{l}\n")));
    }
    out
}

fn world(dir: &Path) -> Result<()> {
    let manifest = read_manifest(dir)?;
    let wit = dir.join("wit");
    write_world(&wit, &manifest, WorldExport::Linli)?;
    println!("wrote {} (world `plugin`) and the platform's WIT in {}", wit.join("world.wit").display(), wit.join("deps/linli-platform").display());
    Ok(())
}

const TEMPLATE_CARGO: &str = include_str!("template/Cargo.toml.tmpl");
const TEMPLATE_MANIFEST: &str = include_str!("template/linli.toml.tmpl");
const TEMPLATE_LIB: &str = include_str!("template/lib.rs.tmpl");
const TEMPLATE_UI: &str = include_str!("template/index.html.tmpl");
const TEMPLATE_CARGO_CONFIG: &str = include_str!("template/cargo-config.toml.tmpl");

pub const TEMPLATE_STORIES: &str = include_str!("template/stories.toml");
const TEMPLATE_TS_INDEX: &str = include_str!("template/ts/index.ts.tmpl");
const TEMPLATE_TS_PACKAGE: &str = include_str!("template/ts/package.json.tmpl");
const TEMPLATE_TS_CONFIG: &str = include_str!("template/ts/tsconfig.json");
const TEMPLATE_JS_INDEX: &str = include_str!("template/js/index.js.tmpl");
const TEMPLATE_PY_APP: &str = include_str!("template/python/app.py.tmpl");
const TEMPLATE_PY_PROJECT: &str = include_str!("template/python/pyproject.toml.tmpl");

fn new(name: &str, dir: Option<PathBuf>, lang: Lang, sdk: Option<PathBuf>) -> Result<()> {
    if !crate::packages::manifest::is_valid_id(name) {
        bail!("`{name}` is not a valid plugin id: use 2–48 of a-z, 0-9 and -, starting with a letter");
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    // The engines of JavaScript and Python start with more of their memory in use.
    let memory = if lang == Lang::Rust { "64" } else { "128" };
    // Starting a JavaScript or Python engine costs far more than the request (bench P9).
    let reuse = if lang == Lang::Rust { "1" } else { "100" };
    let crate_name = name.replace('-', "_");
    let fill = |t: &str| t.replace("{{name}}", name).replace("{{crate}}", &crate_name).replace("{{memory}}", memory).replace("{{reuse}}", reuse);
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::create_dir_all(dir.join("ui"))?;
    std::fs::write(dir.join(MANIFEST_FILE), fill(TEMPLATE_MANIFEST))?;
    std::fs::write(dir.join("ui/index.html"), fill(TEMPLATE_UI))?;
    std::fs::create_dir_all(dir.join("stories"))?;
    std::fs::write(dir.join("stories/notes.toml"), TEMPLATE_STORIES)?;
    match lang {
        Lang::Rust => {
            let sdk = match sdk {
                Some(p) => p,
                None => {
                    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
                    if !bundled.join("Cargo.toml").exists() {
                        bail!("cannot find the Linli SDK; pass --sdk PATH/TO/linli/sdk");
                    }
                    bundled
                }
            };
            let sdk = std::fs::canonicalize(&sdk).with_context(|| format!("the SDK at {}", sdk.display()))?;
            let fill = |t: &str| fill(t).replace("{{sdk}}", &sdk.display().to_string());
            std::fs::create_dir_all(dir.join(".cargo"))?;
            std::fs::write(dir.join(".cargo/config.toml"), TEMPLATE_CARGO_CONFIG)?;
            std::fs::write(dir.join("Cargo.toml"), fill(TEMPLATE_CARGO))?;
            std::fs::write(dir.join("src/lib.rs"), fill(TEMPLATE_LIB))?;
            std::fs::write(dir.join(".gitignore"), "/target\n/dist\n")?;
        }
        Lang::Ts | Lang::Js => {
            let entry = if lang == Lang::Ts { "src/index.ts" } else { "src/index.js" };
            std::fs::write(dir.join("package.json"), fill(TEMPLATE_TS_PACKAGE).replace("{{entry}}", entry))?;
            if lang == Lang::Ts {
                std::fs::write(dir.join("tsconfig.json"), TEMPLATE_TS_CONFIG)?;
                std::fs::write(dir.join("src/index.ts"), fill(TEMPLATE_TS_INDEX))?;
            } else {
                std::fs::write(dir.join("src/index.js"), fill(TEMPLATE_JS_INDEX))?;
            }
            std::fs::write(dir.join(".gitignore"), "/node_modules\n/dist\n/.linli\n")?;
        }
        Lang::Python => {
            std::fs::write(dir.join("pyproject.toml"), fill(TEMPLATE_PY_PROJECT))?;
            std::fs::write(dir.join("src/app.py"), fill(TEMPLATE_PY_APP))?;
            std::fs::write(dir.join(".gitignore"), "/dist\n/.linli\n__pycache__/\n")?;
        }
    }
    println!("created {} — next: cd {0} && linli plugin test (its stories), then linli plugin build && linli plugin pack", dir.display());
    Ok(())
}

fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Manifest::parse(&text)?)
}

fn wasm_target_installed() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == "wasm32-wasip2"))
        // Without rustup we cannot tell; let cargo report it.
        .unwrap_or(true)
}

/// Builds the component of the plugin in `dir`, in its language, into dist/ and checks that it
/// imports only what linli.toml requests. Returns its path.
pub fn build(dir: &Path) -> Result<PathBuf> {
    let manifest = read_manifest(dir)?;
    let language = Language::of(dir)?;
    let out = dir.join("dist").join(&manifest.component);
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match language {
        Language::Rust => build_rust(dir, &out)?,
        Language::TypeScript | Language::JavaScript => polyglot::build_javascript(dir, &manifest, &out, language)?,
        Language::Python => polyglot::build_python(dir, &manifest, &out)?,
    }
    let wasm = std::fs::read(&out).with_context(|| format!("reading {}", out.display()))?;
    let imports = crate::runtime::component_imports(&wasm)?;
    crate::runtime::check_import_names(&imports, &manifest).map_err(|e| anyhow::anyhow!("{e}; the host would refuse this component"))?;
    println!("built {} ({} KiB; imports checked against linli.toml)", out.display(), wasm.len() / 1024);
    Ok(out)
}

fn build_rust(dir: &Path, out: &Path) -> Result<()> {
    if !wasm_target_installed() {
        bail!("the wasm32-wasip2 target is not installed; run `rustup target add wasm32-wasip2`");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--message-format=json-render-diagnostics"])
        // In the plugin's directory, so that its .cargo/config.toml (the guest stack size)
        // applies: cargo looks for it from the working directory up.
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("running cargo")?;
    let stdout = child.stdout.take().context("cargo's output")?;
    let mut artifact = None;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line?) else { continue };
        if message["reason"] == "compiler-artifact" && message["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "cdylib")) {
            let wasm = message["filenames"].as_array().into_iter().flatten().filter_map(|f| f.as_str()).find(|f| f.ends_with(".wasm"));
            if let Some(wasm) = wasm {
                artifact = Some(PathBuf::from(wasm));
            }
        }
    }
    if !child.wait()?.success() {
        bail!("cargo build failed (see above)");
    }
    let artifact = artifact.context("cargo built no .wasm; is the crate a cdylib (`[lib] crate-type = [\"cdylib\"]`)?")?;
    std::fs::copy(&artifact, out).with_context(|| format!("copying {} to {}", artifact.display(), out.display()))?;
    Ok(())
}

fn collect_ui(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_ui(root, &path, files)?;
        } else {
            let relative = path.strip_prefix(root)?.to_string_lossy().replace('\\', "/");
            files.insert(relative, std::fs::read(&path)?);
        }
    }
    Ok(())
}

/// The package of the plugin in `dir`: linli.toml, the component (default: dist/ + the
/// manifest's `component`) and ui/; with `version`, that version instead of the manifest's
/// (the dev loop's `0.1.0-dev.N`).
pub fn package_of(dir: &Path, wasm: Option<PathBuf>, version: Option<semver::Version>) -> Result<Package> {
    let mut manifest = read_manifest(dir)?;
    let wasm = wasm.unwrap_or_else(|| dir.join("dist").join(&manifest.component));
    let component = std::fs::read(&wasm).with_context(|| format!("reading the component {} (run `linli plugin build` first)", wasm.display()))?;
    if crate::runtime::wasm_kind(&component) != crate::runtime::WasmKind::Component {
        bail!("{} is not a WebAssembly component; build with `linli plugin build` (target wasm32-wasip2)", wasm.display());
    }
    let mut files = BTreeMap::from([(manifest.component.clone(), component)]);
    if dir.join("ui").is_dir() {
        collect_ui(dir, &dir.join("ui"), &mut files)?;
    }
    if let Some(version) = version {
        manifest.version = version;
    }
    Ok(Package::build(manifest, files)?)
}

/// Returns the path of the package.
pub fn pack(dir: &Path, wasm: Option<PathBuf>, out: Option<PathBuf>) -> Result<PathBuf> {
    let package = package_of(dir, wasm, None)?;
    let manifest = &package.manifest;
    let out = out.unwrap_or_else(|| dir.join("dist").join(format!("{}-{}.lpkg", manifest.id, manifest.version)));
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out, package.write()?).with_context(|| format!("writing {}", out.display()))?;
    println!("packed {} ({} files, unsigned; next: linli plugin sign {0} --key YOUR.key)", out.display(), package.files.len() + 1);
    Ok(out)
}

fn sign(package_path: &Path, key_path: &Path, out: Option<PathBuf>) -> Result<()> {
    let bytes = std::fs::read(package_path).with_context(|| format!("reading {}", package_path.display()))?;
    let mut package = Package::read(&bytes)?;
    package.verify_contents()?;
    let pem = std::fs::read_to_string(key_path).with_context(|| format!("reading {}", key_path.display()))?;
    let key = signing::decode_secret(&pem)?;
    package.signature = Some(SignatureFile::sign(&key, package.manifest_text.as_bytes()));
    let out = out.unwrap_or_else(|| package_path.to_path_buf());
    std::fs::write(&out, package.write()?).with_context(|| format!("writing {}", out.display()))?;
    println!("signed {} with key {}", out.display(), signing::key_id(&key.verifying_key()));
    Ok(())
}

fn verify(package_path: &Path, public_key: Option<PathBuf>) -> Result<()> {
    let bytes = std::fs::read(package_path).with_context(|| format!("reading {}", package_path.display()))?;
    let package = Package::read(&bytes)?;
    package.verify_contents()?;
    crate::capabilities::validate_manifest(&package.manifest)?;
    let m = &package.manifest;
    println!("{} {} by {}: {} files, hashes match", m.id, m.version, m.vendor, package.files.len());
    for cap in &m.capabilities {
        println!("  requests {:<10} because: {}", cap.name, cap.reason);
    }
    match (&package.signature, public_key) {
        (None, _) => bail!("the package is not signed"),
        (Some(sig), Some(path)) => {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            sig.verify(&signing::decode_public(&text)?, package.manifest_text.as_bytes())?;
            println!("signature: valid, key {}", sig.key_id);
        }
        (Some(sig), None) => println!("signed by key {} (pass --public-key to check the signature)", sig.key_id),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every capability a manifest may request through `linli:platform` has its narrow world,
    /// and every platform file is embedded for `linli plugin world`.
    #[test]
    fn every_platform_capability_has_a_world_to_include() {
        let world = PLATFORM_WIT.iter().find(|(name, _)| *name == "world.wit").map(|(_, text)| *text).unwrap_or_default();
        for capability in crate::capabilities::KNOWN.iter().filter(|c| c.interface.starts_with("linli:platform/") && !c.always_granted) {
            assert!(world.contains(&format!("world with-{} {{", capability.name)), "no world with-{}", capability.name);
        }
        let embedded: Vec<&str> = PLATFORM_WIT.iter().map(|(name, _)| *name).collect();
        let on_disk = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit")).expect("wit/").flatten();
        for file in on_disk.filter_map(|e| e.file_name().into_string().ok()).filter(|n| n.ends_with(".wit")) {
            assert!(embedded.contains(&file.as_str()), "wit/{file} is not embedded in `linli plugin world`");
        }
    }

    #[test]
    fn a_plugins_world_includes_what_its_manifest_requests() {
        let manifest = Manifest::parse(
            "id = \"notes\"\nname = \"便民记事\"\nversion = \"0.1.0\"\nvendor = \"v\"\n[[capabilities]]\nname = \"data\"\nreason = \"r\"\n[[capabilities]]\nname = \"http\"\nreason = \"r\"\nhosts = [\"https://api.vendor.cn\"]\n[events]\nsubscribe = [\"alarm.raised\"]\n",
        )
        .expect("a manifest");
        let world = world_of(&manifest, WorldExport::Linli);
        assert!(world.contains("package linli-plugin:notes;"), "{world}");
        for include in ["routes", "with-data", "with-events"] {
            assert!(world.contains(&format!("include linli:platform/{include}@{};", platform_version())), "{include}: {world}");
        }
        assert!(!world.contains("with-http") && !world.contains("with-identity"), "{world}");
        // A standard wasi:http component exports incoming-handler instead of the routes.
        let standard = world_of(&manifest, WorldExport::WasiHttp);
        assert!(!standard.contains("routes") && standard.contains("import linli:platform/log@") && standard.contains("with-data"), "{standard}");
        assert!(standard.contains("export wasi:http/incoming-handler@0.2."), "{standard}");
    }

    #[test]
    fn the_single_file_platform_wit_has_one_package_line() {
        let text = platform_wit_single_file();
        assert_eq!(text.lines().filter(|l| l.starts_with("package ")).count(), 1);
        assert!(text.contains("interface data {") && text.contains("world plugin {"));
    }
}
