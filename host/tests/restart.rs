//! After a restart every connector, config value and secret is back, and the
//! compiled code comes from the on-disk cache instead of being recompiled.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::{TestHost, sandbox};
use switchboard::registry::lifecycle::Activation;
use switchboard::registry::plugins_dir::PluginOutcome;
use switchboard::runtime::compile_cache::CacheOutcome;
use switchboard::store::InstallSource;

#[tokio::test]
async fn a_restarted_host_serves_every_connector_with_its_settings_from_the_cache() {
    let sandbox = sandbox().await;
    let host = TestHost::start().await;
    host.install_bundled(&sandbox).await;
    let host = host.restart().await;
    let names: Vec<_> = host
        .app
        .state
        .registry
        .list()
        .iter()
        .map(|c| c.manifest.name.to_string())
        .collect();
    assert_eq!(names, ["logistics-tracking", "payment-link"]);
    for connector in host.app.state.registry.list() {
        assert_eq!(
            connector.prepared.cache,
            CacheOutcome::Hit,
            "{} was recompiled",
            connector.manifest.name
        );
    }
    let reply = host
        .invoke(
            "logistics-tracking",
            "track",
            r#"{"carrier":"jd","tracking_number":"JD0001234567"}"#,
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "config and secret survived: {}",
        reply.text
    );
    let secrets = host.get("/v1/connectors/payment-link/secrets").await;
    assert_eq!(secrets.json["secrets"][0]["set"], true);
}

#[tokio::test]
async fn a_damaged_compile_cache_is_recompiled_not_trusted() {
    let host = TestHost::start().await;
    host.install("test-plugins", "echo").await;
    for entry in std::fs::read_dir(host.data.path().join("compiled")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cwasm") {
            std::fs::write(&path, b"garbage").unwrap();
        }
    }
    let host = host.restart().await;
    let echo = host.app.state.registry.get("echo").unwrap();
    assert_eq!(echo.prepared.cache, CacheOutcome::Compiled);
    assert_eq!(
        host.invoke("echo", "echo", "[1,2]").await.json,
        serde_json::json!([1, 2])
    );
}

#[tokio::test]
async fn the_plugins_directory_installs_new_versions_and_refuses_other_bytes_under_an_installed_one()
 {
    let host = TestHost::start().await;
    let (manifest, wasm) = common::package("test-plugins", "echo");
    let tuned = format!("{manifest}\n[limits]\ndeadline_ms = 999\n");
    host.install_manifest(&tuned, wasm).await;

    let plugins = common::dist().join("test-plugins");
    let host = host.restart_with_plugins(plugins.clone()).await;
    let outcomes = host
        .app
        .state
        .registry
        .install_plugins_dir(&plugins, &Activation::ActivateIfNewer)
        .await
        .unwrap();
    let refused: Vec<String> = outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            PluginOutcome::Failed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 1, "{outcomes:?}");
    assert!(
        refused[0].contains("echo 0.1.0 is already installed with another package"),
        "{}",
        refused[0]
    );
    let echo = host.app.state.registry.get("echo").unwrap();
    assert_eq!(
        echo.manifest.limits.deadline.as_millis(),
        999,
        "the API's package was kept"
    );
    let view = host.app.state.registry.view("misbehaving").unwrap();
    assert_eq!(view.versions[0].source, InstallSource::PluginsDir);
    let installed_at = view.versions[0].installed_at_ms;

    let host = host.restart_with_plugins(plugins).await;
    let again = host.app.state.registry.view("misbehaving").unwrap();
    assert_eq!(
        again.versions[0].installed_at_ms, installed_at,
        "unchanged packages are not reinstalled"
    );
}
