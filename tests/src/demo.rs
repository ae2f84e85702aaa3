//! The demo's set-up file (demo/setup.toml) made self-contained in a directory, with every
//! reference plugin packaged and signed by a test vendor instead of the demo's key.
use crate::{polyglot_dir, workspace_root, Vendor};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// The reference plugins in Rust the demo installs: crate name and package file name.
pub const REFERENCE_PLUGINS: [&str; 5] = ["hello", "legal-aid", "time-bank", "elderly-care", "parking"];

/// The reference plugins in TypeScript and Python the demo installs (built by
/// scripts/build-polyglot into target/polyglot/).
pub const POLYGLOT_REFERENCE_PLUGINS: [&str; 2] = ["property", "council"];

/// Write `setup.toml`, the tenant tree, the base-data files and the signed packages into
/// `dir`; returns the path of `setup.toml`.
pub fn demo_setup(vendor: &Vendor, dir: &Path) -> Result<PathBuf> {
    let demo = workspace_root().join("demo");
    let mut text = std::fs::read_to_string(demo.join("setup.toml"))?;
    text = text.replace("../.linli-demo/keys/linli.pub", "linli.pub");
    std::fs::write(dir.join("linli.pub"), vendor.public_key())?;
    for plugin in REFERENCE_PLUGINS.into_iter().chain(POLYGLOT_REFERENCE_PLUGINS) {
        let file = format!("{plugin}.lpkg");
        let package = if POLYGLOT_REFERENCE_PLUGINS.contains(&plugin) {
            let built = polyglot_dir(plugin);
            vendor.package_from(&built, &built.join("dist/plugin.wasm"), |_| {})?
        } else {
            vendor.package(plugin, |_| {})?
        };
        std::fs::write(dir.join(&file), package)?;
        text = text.replace(&format!("../plugins/{plugin}/dist/{plugin}-0.1.0.lpkg"), &file);
    }
    std::fs::copy(demo.join("tenants.toml"), dir.join("tenants.toml"))?;
    std::fs::create_dir_all(dir.join("base"))?;
    for csv in ["demo-accounts.csv", "demo-volunteers.csv"] {
        std::fs::copy(demo.join("base").join(csv), dir.join("base").join(csv))?;
    }
    let setup = dir.join("setup.toml");
    std::fs::write(&setup, text)?;
    Ok(setup)
}
