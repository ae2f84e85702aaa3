//! `linli plugin dev`: the plugin on a throwaway local host, rebuilt and upgraded whenever its
//! sources change, with the URLs and people to try it as, and the host's log (the plugin's
//! own lines among it) on the terminal.
use super::devhost::{self, DevHost};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Folders that builds write or tools own: a change there is not a change of the sources.
const IGNORED: &[&str] = &["dist", ".linli", "target", "node_modules", "__pycache__", ".git", ".venv"];

/// Every source file with its modification time and size, in path order.
fn snapshot(dir: &Path) -> Vec<(PathBuf, SystemTime, u64)> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                if !IGNORED.iter().any(|ignored| name == *ignored) {
                    folders.push(path);
                }
            } else {
                files.push((path, meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len()));
            }
        }
    }
    files.sort();
    files
}

/// `0.1.0` → `0.1.0-dev.N`: each rebuild is a newer version the installation upgrades to.
fn dev_version(base: &semver::Version, build: u64) -> Result<semver::Version> {
    let mut version = base.clone();
    version.pre = semver::Prerelease::new(&format!("dev.{build}"))?;
    version.build = semver::BuildMetadata::EMPTY;
    Ok(version)
}

pub fn dev(dir: &Path, listen: &str) -> Result<()> {
    super::plugin::build(dir)?;
    let base = super::plugin::package_of(dir, None, None)?.manifest.version;
    let package = super::plugin::package_of(dir, None, Some(dev_version(&base, 1)?))?;
    let dir = dir.to_path_buf();
    let listen = listen.to_string();
    super::block_on(async move {
        let mut host = DevHost::start(package, &listen).await?;
        let url = host.url();
        let id = host.manifest.id.clone();
        println!("\n==> {id} is running on a throwaway host (data in {}; gone when you stop)", host.data_dir().display());
        println!("    resident app   {url}/app/   (sign in as one of the people below)");
        println!("    console        {url}/console/");
        println!("    routes         {url}/t/xingfu/p/{id}/…   (installed for {}, so any community of it)", devhost::COUNTY);
        println!("    people, password {}:", devhost::PASSWORD);
        for person in devhost::people()? {
            println!("      {:<17} {}  {}", person.handle, person.phone(), person.about);
        }
        println!("==> watching {} for changes (Ctrl-C stops)", dir.display());
        let mut seen = snapshot(&dir);
        let mut build = 1;
        let stop = tokio::signal::ctrl_c();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            let now = snapshot(&dir);
            if now == seen {
                continue;
            }
            // Let an editor finish saving several files.
            tokio::time::sleep(Duration::from_millis(300)).await;
            seen = snapshot(&dir);
            build += 1;
            println!("==> a change: rebuilding");
            let rebuilt = {
                let dir = dir.clone();
                let version = dev_version(&base, build)?;
                tokio::task::spawn_blocking(move || super::plugin::build(&dir).and_then(|_| super::plugin::package_of(&dir, None, Some(version)))).await?
            };
            match rebuilt {
                Ok(package) => {
                    let version = package.manifest.version.to_string();
                    match host.upgrade(package).await {
                        Ok(_) => println!("==> upgraded to {version}; reload the page"),
                        Err(error) => println!("==> the host refused the new build (the old one keeps serving): {error:#}"),
                    }
                }
                Err(error) => println!("==> the build failed (the old one keeps serving): {error:#}"),
            }
        }
        host.stop().await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_versions_grow_with_each_build() {
        let base = semver::Version::parse("0.3.1").expect("version");
        let (first, second, tenth) = (dev_version(&base, 1).expect("v"), dev_version(&base, 2).expect("v"), dev_version(&base, 10).expect("v"));
        assert_eq!(first.to_string(), "0.3.1-dev.1");
        assert!(first < second && second < tenth);
    }

    #[test]
    fn build_output_is_not_a_change() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir_all(dir.path().join("src")).expect("src");
        std::fs::write(dir.path().join("src/index.ts"), "a").expect("file");
        let before = snapshot(dir.path());
        for ignored in ["dist", ".linli", "node_modules"] {
            std::fs::create_dir_all(dir.path().join(ignored)).expect("dir");
            std::fs::write(dir.path().join(ignored).join("x"), "b").expect("file");
        }
        assert_eq!(snapshot(dir.path()), before);
        std::fs::write(dir.path().join("src/index.ts"), "ab").expect("file");
        assert_ne!(snapshot(dir.path()), before);
    }
}
