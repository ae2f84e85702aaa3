//! The build tools for JavaScript/TypeScript and Python plugins, installed on first use into
//! a cache shared by every plugin (pinned versions: an npm lock file, hashed Python wheels),
//! so a vendor needs only Node.js or Python, and `linli`.
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

const JS_PACKAGE: &str = include_str!("toolchains/js/package.json");
const JS_LOCK: &str = include_str!("toolchains/js/package-lock.json");
const PYTHON_REQUIREMENTS: &str = include_str!("toolchains/python-requirements.txt");

/// The WASI 0.2 release componentize-js 0.23's engine implements: a world that exports
/// `wasi:http/incoming-handler` must name this version. Its WIT comes from the toolchain
/// (jco's built-in WASI packages), renamed to this release; WASI 0.2 releases share one API.
pub const JS_ENGINE_WASI_VERSION: &str = "0.2.10";

/// Written last: a folder without it is an install that did not finish.
const COMPLETE: &str = ".complete";

/// Where toolchains are kept: `$LINLI_TOOLCHAINS`, else the user's cache folder.
pub fn cache_root() -> Result<PathBuf> {
    match std::env::var_os("LINLI_TOOLCHAINS") {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => Ok(user_cache()?.join("toolchains")),
    }
}

/// Where the throwaway hosts of `linli plugin test` and `plugin dev` keep compiled
/// components, so a second run does not compile an unchanged component again.
pub fn compiled_components() -> Result<PathBuf> {
    Ok(user_cache()?.join("compiled"))
}

fn user_cache() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("linli"));
    }
    let home = std::env::var_os("HOME").context("neither LINLI_TOOLCHAINS nor HOME is set: say where to keep the build tools")?;
    Ok(PathBuf::from(home).join(".cache/linli"))
}

/// A short, stable name for a set of pins: changing a pin installs a new toolchain beside the old.
fn fingerprint(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..6])
}

/// The folder of one toolchain, installed by `install` unless it is complete. Concurrent
/// builds wait for each other's install (a lock file beside the folder).
fn ensure(name: &str, describe: &str, install: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
    let root = cache_root()?;
    let dir = root.join(name);
    if dir.join(COMPLETE).exists() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let lock = File::create(root.join(format!("{name}.lock"))).context("the toolchain lock")?;
    lock.lock().context("waiting for another build's install")?;
    if dir.join(COMPLETE).exists() {
        return Ok(dir);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing the unfinished install in {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    eprintln!("==> installing {describe} into {} (once; later builds reuse it)", dir.display());
    let started = std::time::Instant::now();
    if let Err(error) = install(&dir) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(error);
    }
    std::fs::write(dir.join(COMPLETE), "")?;
    eprintln!("==> installed in {} s", started.elapsed().as_secs());
    Ok(dir)
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    let status = command.status().with_context(|| format!("{what}: could not start {:?}", command.get_program()))?;
    if !status.success() {
        bail!("{what} failed ({status}); see its output above");
    }
    Ok(())
}

/// The major version of the `node` on PATH, or a clear error without one.
pub fn node_major() -> Result<u32> {
    let out = Command::new("node").arg("--version").output().context("Node.js is needed for JavaScript and TypeScript plugins: install Node.js 18 or newer")?;
    let version = String::from_utf8_lossy(&out.stdout);
    version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .with_context(|| format!("cannot read Node.js's version from `{version}`"))
}

/// componentize-js, esbuild and TypeScript, from the npm registry with `npm ci`.
pub fn javascript() -> Result<PathBuf> {
    let major = node_major()?;
    if major < 18 {
        bail!("Node.js {major} is too old for componentize-js: install Node.js 18 or newer");
    }
    let name = format!("js-{}", fingerprint(&[JS_PACKAGE, JS_LOCK]));
    ensure(&name, "the JavaScript toolchain (componentize-js 0.23.0, esbuild, TypeScript; about 400 MB)", |dir| {
        std::fs::write(dir.join("package.json"), JS_PACKAGE)?;
        std::fs::write(dir.join("package-lock.json"), JS_LOCK)?;
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(dir), "npm ci")
    })
}

/// componentize-py in its own virtual environment, from PyPI with hash checking.
pub fn python() -> Result<PathBuf> {
    let name = format!("python-{}", fingerprint(&[PYTHON_REQUIREMENTS]));
    let dir = ensure(&name, "the Python toolchain (componentize-py 0.25.1; about 70 MB)", |dir| {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run(Command::new(&python).args(["-m", "venv"]).arg(dir.join("venv")), "creating a Python virtual environment (python3 -m venv)")?;
        std::fs::write(dir.join("requirements.txt"), PYTHON_REQUIREMENTS)?;
        run(
            Command::new(dir.join("venv/bin/pip")).args(["install", "--quiet", "--require-hashes", "--no-deps", "-r"]).arg(dir.join("requirements.txt")),
            "pip install componentize-py",
        )
    })?;
    Ok(dir)
}

/// The componentize-py command of the Python toolchain.
pub fn componentize_py(toolchain: &Path) -> PathBuf {
    toolchain.join("venv/bin/componentize-py")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_js_lock_pins_what_the_package_names() {
        let lock: serde_json::Value = serde_json::from_str(JS_LOCK).expect("lock is JSON");
        let package: serde_json::Value = serde_json::from_str(JS_PACKAGE).expect("package is JSON");
        for (name, version) in package["dependencies"].as_object().expect("dependencies") {
            let locked = &lock["packages"][format!("node_modules/{name}")]["version"];
            assert_eq!(locked, version, "{name} in package-lock.json");
            assert!(!version.as_str().unwrap_or_default().starts_with(['^', '~']), "{name} is not pinned");
        }
    }

    #[test]
    fn python_requirements_are_hash_pinned() {
        assert!(PYTHON_REQUIREMENTS.contains("componentize-py==0.25.1"));
        assert!(PYTHON_REQUIREMENTS.matches("--hash=sha256:").count() >= 4);
    }
}
