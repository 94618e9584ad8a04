//! Where packages come from: signatures checked against trusted keys, and
//! the plugins directory watched for new versions.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{TestHost, multipart_upload, package, package_dir};
use serde_json::Value;
use switchboard::registry::lifecycle::Activation;
use switchboard::registry::signature::{self, TrustedKeys};
use switchboard::runtime::compile_cache::sha256_hex;

#[tokio::test]
async fn with_trusted_keys_only_packages_signed_by_one_of_them_install() {
    let (secret, public) = signature::generate_keypair();
    let (stranger, _) = signature::generate_keypair();
    let trusted = TrustedKeys::parse(std::slice::from_ref(&public)).unwrap();
    let key_id = trusted.key_ids()[0].clone();
    let host = TestHost::open_with(tempfile::tempdir().unwrap(), |config| {
        config.lifecycle.trusted_keys = trusted;
    });
    host.app.load_connectors().await.unwrap();
    let (manifest, wasm) = package("test-plugins", "echo");
    let hash = sha256_hex(&wasm);
    let sign = |key: &str, manifest: &str| {
        signature::sign_package(&signature::parse_secret_key(key).unwrap(), manifest, &hash)
    };
    let upload = |signature: Option<String>, manifest: String| {
        multipart_upload("/v1/connectors", &manifest, &wasm, signature.as_deref())
    };
    let refused = [
        (
            upload(None, manifest.clone()),
            StatusCode::FORBIDDEN,
            "signature_required",
        ),
        (
            upload(Some("ed25519:AAAA".into()), manifest.clone()),
            StatusCode::BAD_REQUEST,
            "signature_malformed",
        ),
        (
            upload(Some(sign(&stranger, &manifest)), manifest.clone()),
            StatusCode::FORBIDDEN,
            "signature_invalid",
        ),
        (
            upload(
                Some(sign(&secret, &manifest)),
                format!("{manifest}\n# changed after signing\n"),
            ),
            StatusCode::FORBIDDEN,
            "signature_invalid",
        ),
    ];
    for (request, status, code) in refused {
        let reply = host.send(request).await;
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{}",
            reply.text
        );
    }
    assert_eq!(
        host.get("/v1/connectors").await.json["connectors"],
        serde_json::json!([])
    );

    let rotated = format!(
        "{}\n{}\n",
        sign(&stranger, &manifest),
        sign(&secret, &manifest)
    );
    let reply = host.send(upload(Some(rotated), manifest.clone())).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.json["deployment"]["versions"][0]["signed_by"], key_id);
}

fn copy_package(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// A loaded host watching a plugins directory that holds echo 0.1.0; as in
/// `serve`, watching starts before the first scan.
async fn watching_host(plugins: &Path, hot_load: Activation) -> TestHost {
    copy_package(&package_dir("test-plugins", "echo"), &plugins.join("echo"));
    let plugins = plugins.to_owned();
    let host = TestHost::open_with(tempfile::tempdir().unwrap(), |config| {
        config.plugins_dir = Some(plugins);
        config.watch_quiet = Duration::from_millis(100);
        config.hot_load = hot_load;
    });
    let watcher = host.app.watch_plugins_dir().unwrap();
    assert!(watcher.is_some(), "the directory is watched");
    host.app.load_connectors().await.unwrap();
    host
}

/// Polls the echo deployment until `done` holds, for at most 20 s.
async fn wait_for(host: &TestHost, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let view = host.get("/v1/connectors/echo/versions").await.json;
        if done(&view) {
            return view;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the plugins directory was not picked up: {view}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_version_dropped_into_the_watched_directory_is_not_installed_half_written_but_once_whole()
{
    let plugins = tempfile::tempdir().unwrap();
    let host = watching_host(plugins.path(), Activation::ActivateIfNewer).await;
    let source = package_dir("test-versions", "echo-0.2.0");
    let target = plugins.path().join("echo-next");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::copy(source.join("connector.toml"), target.join("connector.toml")).unwrap();
    let wasm = std::fs::read(source.join("echo.wasm")).unwrap();
    let half = wasm.len() / 2;
    let mut file = std::fs::File::create(target.join("echo.wasm")).unwrap();
    file.write_all(&wasm[..half]).unwrap();
    file.flush().unwrap();

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let view = host.get("/v1/connectors/echo/versions").await.json;
    assert_eq!(
        view["versions"].as_array().unwrap().len(),
        1,
        "a half-written package is not installed: {view}"
    );
    assert_eq!(
        host.invoke("echo", "echo", "[1]").await.status,
        StatusCode::OK,
        "and the host keeps serving"
    );

    file.write_all(&wasm[half..]).unwrap();
    drop(file);
    let view = wait_for(&host, |view| view["active"] == "0.2.0").await;
    assert_eq!(view["previous"], "0.1.0");
    assert_eq!(view["versions"][1]["source"], "plugins_dir");
    let audit = host
        .get("/v1/audit?connector=echo&kind=admin&limit=1000")
        .await
        .json;
    let installs = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "version.installed" && r["actor"] == "plugins-dir")
        .count();
    assert_eq!(installs, 2, "{audit}");
}

#[tokio::test]
async fn the_hot_load_policy_can_canary_a_new_version_instead_of_activating_it() {
    let plugins = tempfile::tempdir().unwrap();
    let host = watching_host(plugins.path(), Activation::Canary(2_500)).await;
    copy_package(
        &package_dir("test-versions", "echo-0.2.0"),
        &plugins.path().join("echo-next"),
    );
    let view = wait_for(&host, |view| view["canary"]["version"] == "0.2.0").await;
    assert_eq!(view["active"], "0.1.0");
    assert_eq!(view["canary"]["weight_percent"], 25.0);
}
