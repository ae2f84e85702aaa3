//! `linli plugin build` for TypeScript, JavaScript and Python plugins: the world written from
//! linli.toml, the SDK as this linli carries it, then componentize-js or componentize-py from
//! the toolchain cache. Everything generated goes to the plugin's `.linli/` folder.
use super::plugin::{platform_wit_single_file, write_world, WorldExport};
use super::toolchain;
use crate::packages::Manifest;
use anyhow::{bail, Context, Result};
use rust_embed::RustEmbed;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(RustEmbed)]
#[folder = "../sdk/js/"]
#[include = "package.json"]
#[include = "src/*.ts"]
struct JsSdk;

#[derive(RustEmbed)]
#[folder = "../sdk/python/"]
#[include = "linli/*.py"]
struct PythonSdk;

const JS_DRIVER: &str = include_str!("toolchains/js/build.mjs");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Rust,
    TypeScript,
    JavaScript,
    Python,
}

impl Language {
    /// By the files a plugin of each language has: Cargo.toml, package.json (with a
    /// tsconfig.json or a `.ts` entry for TypeScript), pyproject.toml.
    pub fn of(dir: &Path) -> Result<Self> {
        if dir.join("Cargo.toml").exists() {
            return Ok(Self::Rust);
        }
        if dir.join("package.json").exists() {
            let settings = JsSettings::read(dir)?;
            let typescript = dir.join("tsconfig.json").exists() || settings.entry.extension().is_some_and(|e| e == "ts");
            return Ok(if typescript { Self::TypeScript } else { Self::JavaScript });
        }
        if dir.join("pyproject.toml").exists() {
            return Ok(Self::Python);
        }
        bail!(
            "{} has no Cargo.toml, package.json or pyproject.toml: which language is this plugin in? (`linli plugin new --lang rust|ts|js|python` starts one)",
            dir.display()
        )
    }
}

/// The `"linli"` field of package.json.
struct JsSettings {
    entry: PathBuf,
    export: WorldExport,
}

impl JsSettings {
    fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("package.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let package: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
        let settings = &package["linli"];
        let entry = match settings["entry"].as_str() {
            Some(entry) => PathBuf::from(entry),
            None if dir.join("src/index.ts").exists() => PathBuf::from("src/index.ts"),
            None => PathBuf::from("src/index.js"),
        };
        let export = match settings["routes"].as_str() {
            None | Some("linli") => WorldExport::Linli,
            Some("wasi-http") => WorldExport::WasiHttp,
            Some(other) => bail!("package.json: `linli.routes` is `{other}`; use \"linli\" (export `handler`) or \"wasi-http\" (a `fetch` event listener)"),
        };
        Ok(Self { entry, export })
    }
}

/// `[tool.linli]` of pyproject.toml.
struct PythonSettings {
    module: String,
    source: PathBuf,
}

impl PythonSettings {
    fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("pyproject.toml");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let project: toml::Table = text.parse().with_context(|| format!("{} is not TOML", path.display()))?;
        let settings = project.get("tool").and_then(|t| t.get("linli"));
        let module = settings.and_then(|s| s.get("module")).and_then(|m| m.as_str()).unwrap_or("app").to_string();
        let source = settings.and_then(|s| s.get("source")).and_then(|m| m.as_str()).map_or_else(|| PathBuf::from("src"), PathBuf::from);
        Ok(Self { module, source })
    }
}

/// Writes the embedded files of one SDK below `into`, replacing what an older linli left there.
fn write_embedded<E: RustEmbed>(into: &Path) -> Result<()> {
    if into.exists() {
        std::fs::remove_dir_all(into).with_context(|| format!("clearing {}", into.display()))?;
    }
    for name in E::iter() {
        let file = E::get(&name).with_context(|| format!("the SDK file {name}"))?;
        let path = into.join(name.as_ref());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, file.data.as_ref())?;
    }
    Ok(())
}

/// TypeScript and JavaScript: the WIT types, a type check, one bundle, then componentize-js.
pub fn build_javascript(dir: &Path, manifest: &Manifest, out: &Path, language: Language) -> Result<()> {
    let dir = &std::fs::canonicalize(dir)?;
    let settings = JsSettings::read(dir)?;
    // `join` keeps an absolute path as it is.
    let entry = dir.join(&settings.entry);
    if !entry.exists() {
        bail!("the entry module {} does not exist (package.json `linli.entry`)", entry.display());
    }
    let toolchain = toolchain::javascript()?;
    let build = dir.join(".linli");
    std::fs::create_dir_all(&build)?;
    let wit = build.join("wit");
    write_world(&wit, manifest, settings.export)?;
    let modules = build.join("modules");
    write_embedded::<JsSdk>(&modules.join("@linli/sdk"))?;
    std::fs::write(build.join("platform.wit"), platform_wit_single_file())?;
    std::fs::write(build.join("build.mjs"), JS_DRIVER)?;
    // The features of the JS engine that bring WASI imports: `fetch` is outbound HTTP (only
    // with the `http` capability), the fetch event is the wasi:http export.
    let mut disable = vec![];
    if !manifest.requests("http") {
        disable.push("http");
    }
    if settings.export == WorldExport::Linli {
        disable.push("fetch-event");
    }
    let tsconfig = dir.join("tsconfig.json");
    let job = serde_json::json!({
        "toolchain": toolchain,
        "entry": std::fs::canonicalize(&entry)?,
        "bundle": build.join("bundle.js"),
        "sdkModules": modules,
        "witDir": wit,
        "witTypesDir": build.join("wit-types"),
        "platformWit": build.join("platform.wit"),
        "tsconfig": (language == Language::TypeScript && tsconfig.exists()).then(|| std::fs::canonicalize(&tsconfig).ok()).flatten(),
        "disableFeatures": disable,
        "wasiDeps": (settings.export == WorldExport::WasiHttp).then_some(toolchain::JS_ENGINE_WASI_VERSION),
        "out": std::path::absolute(out)?,
    });
    let job_path = build.join("job.json");
    std::fs::write(&job_path, serde_json::to_vec_pretty(&job)?)?;
    let status = Command::new("node").arg(build.join("build.mjs")).arg(&job_path).current_dir(dir).status().context("running node")?;
    if !status.success() {
        bail!("the {} build failed (see above)", if language == Language::TypeScript { "TypeScript" } else { "JavaScript" });
    }
    Ok(())
}

/// Python: componentize-py with the plugin's module, the SDK and the world's bindings.
pub fn build_python(dir: &Path, manifest: &Manifest, out: &Path) -> Result<()> {
    let dir = &std::fs::canonicalize(dir)?;
    let settings = PythonSettings::read(dir)?;
    let source = dir.join(&settings.source);
    if !source.join(format!("{}.py", settings.module)).exists() && !source.join(&settings.module).join("__init__.py").exists() {
        bail!("no module `{}` in {} (pyproject.toml `[tool.linli] module` and `source`)", settings.module, source.display());
    }
    let toolchain = toolchain::python()?;
    let build = dir.join(".linli");
    std::fs::create_dir_all(&build)?;
    let wit = build.join("wit");
    write_world(&wit, manifest, WorldExport::Linli)?;
    let sdk = build.join("python");
    write_embedded::<PythonSdk>(&sdk)?;
    let componentize = toolchain::componentize_py(&toolchain);
    // The generated bindings on disk are for editors and type checkers; the build makes its own.
    let bindings = build.join("bindings");
    if bindings.exists() {
        std::fs::remove_dir_all(&bindings)?;
    }
    let status =
        Command::new(&componentize).arg("-d").arg(&wit).args(["-w", "plugin", "bindings"]).arg(&bindings).status().context("running componentize-py")?;
    if !status.success() {
        bail!("componentize-py could not generate the bindings (see above)");
    }
    eprintln!("==> component (componentize-py, world `plugin` of {}; this takes a while)", wit.display());
    let started = std::time::Instant::now();
    let status = Command::new(&componentize)
        .arg("-d")
        .arg(&wit)
        .args(["-w", "plugin", "componentize", &settings.module, "-p"])
        .arg(&source)
        .arg("-p")
        .arg(&sdk)
        .arg("-o")
        .arg(std::path::absolute(out)?)
        .current_dir(dir)
        // Its own Rust backtraces would bury the Python traceback that says what is wrong.
        .env("RUST_BACKTRACE", "0")
        .status()
        .context("running componentize-py")?;
    if !status.success() {
        bail!("the Python build failed (see above)");
    }
    eprintln!("==> componentized in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("folders");
            std::fs::write(path, text).expect("file");
        }
        dir
    }

    #[test]
    fn tells_the_language_by_the_plugins_files() {
        assert_eq!(Language::of(plugin_with(&[("Cargo.toml", "")]).path()).ok(), Some(Language::Rust));
        assert_eq!(Language::of(plugin_with(&[("package.json", "{}"), ("tsconfig.json", "{}")]).path()).ok(), Some(Language::TypeScript));
        assert_eq!(Language::of(plugin_with(&[("package.json", "{}"), ("src/index.ts", "")]).path()).ok(), Some(Language::TypeScript));
        assert_eq!(Language::of(plugin_with(&[("package.json", "{}")]).path()).ok(), Some(Language::JavaScript));
        assert_eq!(Language::of(plugin_with(&[("pyproject.toml", "")]).path()).ok(), Some(Language::Python));
        let unknown = Language::of(plugin_with(&[("README.md", "")]).path()).expect_err("no language");
        assert!(unknown.to_string().contains("--lang"), "{unknown}");
    }

    #[test]
    fn reads_the_build_settings_with_defaults_and_refuses_unknown_ones() {
        let js = JsSettings::read(plugin_with(&[("package.json", r#"{"linli": {"entry": "app.js", "routes": "wasi-http"}}"#)]).path()).expect("settings");
        assert_eq!((js.entry, js.export), (PathBuf::from("app.js"), WorldExport::WasiHttp));
        let defaults = JsSettings::read(plugin_with(&[("package.json", "{}")]).path()).expect("settings");
        assert_eq!((defaults.entry, defaults.export), (PathBuf::from("src/index.js"), WorldExport::Linli));
        let wrong = JsSettings::read(plugin_with(&[("package.json", r#"{"linli": {"routes": "grpc"}}"#)]).path());
        assert!(wrong.is_err_and(|e| e.to_string().contains("wasi-http")));

        let python = PythonSettings::read(plugin_with(&[("pyproject.toml", "[tool.linli]\nmodule = \"service\"\n")]).path()).expect("settings");
        assert_eq!((python.module.as_str(), python.source), ("service", PathBuf::from("src")));
    }

    #[test]
    fn the_sdks_are_embedded() {
        assert!(JsSdk::get("package.json").is_some() && JsSdk::get("src/index.ts").is_some() && JsSdk::get("src/data.ts").is_some());
        assert!(PythonSdk::get("linli/__init__.py").is_some() && PythonSdk::get("linli/data.py").is_some());
    }
}
