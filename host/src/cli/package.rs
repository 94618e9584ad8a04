//! `switchboard build` and `switchboard validate`: from a connector crate to a
//! package directory, and the checks an install makes, without a host.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use switchboard::app::{App, HostConfig};
use switchboard::registry::lifecycle::{Activation, Actor, LifecycleError, Package};
use switchboard::registry::plugins_dir::{MANIFEST_FILE, SIGNATURE_FILE};
use switchboard::store::InstallSource;

use super::scaffold::is_connector_crate;

/// The target connectors are built for.
const WASM_TARGET: &str = "wasm32-wasip2";

/// Builds the connector crate in `dir` for wasm32-wasip2 (installing the
/// target when missing), lays the package out in `out` (`<dir>/dist` by
/// default, dropping a signature of an earlier build) and validates it.
pub async fn build(dir: &Path, out: Option<PathBuf>) -> anyhow::Result<()> {
    if !is_connector_crate(dir) {
        bail!(
            "{} is not a connector crate: it needs a Cargo.toml and a {MANIFEST_FILE} (`switchboard new <name>` makes one)",
            dir.display()
        );
    }
    ensure_wasm_target()?;
    let started = Instant::now();
    let wasm = cargo_build(dir)?;
    let out = out.unwrap_or_else(|| dir.join("dist"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for entry in std::fs::read_dir(&out).with_context(|| format!("listing {}", out.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "wasm") {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    // A signature over the previous build no longer verifies; sign again.
    let stale_signature = out.join(SIGNATURE_FILE);
    if stale_signature.exists() {
        std::fs::remove_file(&stale_signature)
            .with_context(|| format!("removing {}", stale_signature.display()))?;
        eprintln!("removed {SIGNATURE_FILE}: it signed the previous build; sign this one again");
    }
    let file_name = wasm.file_name().context("the artifact has no file name")?;
    let placed = out.join(file_name);
    std::fs::copy(&wasm, &placed).with_context(|| format!("copying {}", wasm.display()))?;
    std::fs::copy(dir.join(MANIFEST_FILE), out.join(MANIFEST_FILE))
        .with_context(|| format!("copying {MANIFEST_FILE}"))?;
    let size = std::fs::metadata(&placed)?.len();
    eprintln!(
        "built {} ({} KiB) in {:.1} s",
        placed.strip_prefix(".").unwrap_or(&placed).display(),
        size.div_ceil(1024),
        started.elapsed().as_secs_f64()
    );
    validate(&placed, &out.join(MANIFEST_FILE)).await
}

/// Installs `wasm_target` with rustup unless it is there.
fn ensure_wasm_target() -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup (switchboard build needs a rustup toolchain)")?;
    let listed = String::from_utf8_lossy(&installed.stdout);
    if listed.lines().any(|line| line.trim() == WASM_TARGET) {
        return Ok(());
    }
    eprintln!("installing the {WASM_TARGET} target");
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .context("running rustup target add")?;
    if !status.success() {
        bail!("rustup could not install the {WASM_TARGET} target ({status})");
    }
    Ok(())
}

/// Runs `cargo build --release` for the wasm target in `dir`, its progress and
/// diagnostics on stderr, and returns the component it produced.
fn cargo_build(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut child = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "--target", WASM_TARGET])
        .args(["--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .stdout(Stdio::piped())
        .spawn()
        .context("running cargo")?;
    let stdout = child.stdout.take().context("cargo's output")?;
    let mut component = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let message: serde_json::Value = match serde_json::from_str(&line?) {
            Ok(message) => message,
            Err(_) => continue,
        };
        let is_cdylib = message["reason"] == "compiler-artifact"
            && message["target"]["crate_types"]
                .as_array()
                .is_some_and(|types| types.iter().any(|kind| kind == "cdylib"));
        if is_cdylib {
            component = message["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|name| name.as_str())
                .find(|name| name.ends_with(".wasm"))
                .map(PathBuf::from);
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!("cargo build failed ({status}); its errors are above");
    }
    component.context("cargo built no .wasm: is the crate's [lib] crate-type [\"cdylib\"]?")
}

/// Installs the package into a throwaway host on a scratch directory, so it
/// meets exactly the checks an install meets, and reports the first that fails
/// with its API error code.
pub async fn validate(wasm: &Path, manifest: &Path) -> anyhow::Result<()> {
    let package = Package {
        manifest: std::fs::read_to_string(manifest)
            .with_context(|| format!("reading {}", manifest.display()))?,
        wasm: std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?,
        signature: None,
    };
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    let mut config = HostConfig::new(scratch.path().to_owned());
    config.engine.max_instances = 4;
    let app = App::open(config)?;
    let installed = app
        .state
        .registry
        .install(package, InstallSource::Api, Activation::Stage, Actor::Api)
        .await;
    match installed {
        Ok(installed) => {
            println!(
                "{} {} is a valid connector package",
                installed.name, installed.version
            );
            Ok(())
        }
        Err(LifecycleError::Install(err)) => {
            bail!("invalid package ({}): {err}", err.code())
        }
        Err(err) => bail!("invalid package: {err}"),
    }
}
