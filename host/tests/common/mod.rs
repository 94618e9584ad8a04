//! Shared set-up for the in-process API tests: a host on a temporary data
//! directory, the real connectors built by `scripts/test`, and the sandbox
//! upstreams on loopback.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use switchboard::app::{App, HostConfig};
use switchboard::registry::lifecycle::{Activation, Actor, Installed, Package};
use switchboard::store::InstallSource;
use switchboard_sandbox::{Sandbox, SandboxConfig};
use tower::ServiceExt;

/// Where `scripts/test` puts the built connectors.
pub fn dist() -> PathBuf {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist");
    assert!(
        ["plugins", "test-plugins", "test-versions"]
            .iter()
            .all(|kind| dist.join(kind).is_dir()),
        "connectors are not built: run scripts/test, which builds them into {}",
        dist.display()
    );
    dist
}

/// The directory of a bundled (`plugins`) or fixture (`test-plugins`,
/// `test-versions`) connector package.
pub fn package_dir(kind: &str, name: &str) -> PathBuf {
    dist().join(kind).join(name)
}

/// The manifest and component of a packaged connector.
pub fn package(kind: &str, name: &str) -> (String, Vec<u8>) {
    let dir = package_dir(kind, name);
    let package = switchboard::registry::plugins_dir::read_package(&dir).unwrap();
    (package.manifest, package.wasm)
}

/// The host-wide admin key every test host is started with.
pub const ADMIN_KEY: &str = "sbk_00000000000000ad_testtesttesttesttesttesttesttesttesttesttes";

/// A host on a fresh data directory, loaded and ready.
pub struct TestHost {
    pub app: App,
    pub router: Router,
    pub data: tempfile::TempDir,
}

impl TestHost {
    pub async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        Self::start_in(data).await
    }

    pub async fn start_in(data: tempfile::TempDir) -> Self {
        let host = Self::open(data, None);
        host.app.load_connectors().await.unwrap();
        host
    }

    /// A host whose connectors are not loaded yet (not ready).
    pub fn open(data: tempfile::TempDir, plugins_dir: Option<PathBuf>) -> Self {
        Self::open_with_instances(data, plugins_dir, 64)
    }

    /// Like [`TestHost::open`] with at most `max_instances` alive at once.
    pub fn open_with_instances(
        data: tempfile::TempDir,
        plugins_dir: Option<PathBuf>,
        max_instances: u32,
    ) -> Self {
        Self::open_with(data, |config| {
            config.engine.max_instances = max_instances;
            config.plugins_dir = plugins_dir;
        })
    }

    /// A host (not loaded yet) whose configuration `configure` adjusts.
    pub fn open_with(data: tempfile::TempDir, configure: impl FnOnce(&mut HostConfig)) -> Self {
        let mut config = HostConfig::new(data.path().to_owned());
        config.engine.max_instances = 64;
        config.admin_key = Some(ADMIN_KEY.to_owned());
        configure(&mut config);
        let app = App::open(config).unwrap();
        let router = app.router();
        Self { app, router, data }
    }

    /// Stops the dispatcher and waits for the audit writer (both may be
    /// writing to the store), then drops the
    /// host, releasing the store; returns its data directory.
    async fn stop(self) -> tempfile::TempDir {
        let Self { app, router, data } = self;
        app.stop_dispatching().await;
        app.state.audit.settle().await;
        drop(router);
        drop(app);
        data
    }

    /// Stops this host and starts a new one on its data with a plugins directory.
    pub async fn restart_with_plugins(self, plugins_dir: PathBuf) -> Self {
        let data = self.stop().await;
        let host = Self::open(data, Some(plugins_dir));
        host.app.load_connectors().await.unwrap();
        host
    }

    /// Stops this host and starts a new one on its data, configured by `configure`.
    pub async fn restart_with(self, configure: impl FnOnce(&mut HostConfig)) -> Self {
        let data = self.stop().await;
        let host = Self::open_with(data, configure);
        host.app.load_connectors().await.unwrap();
        host
    }

    /// Stops this host (releasing the store) and starts a new one on its data.
    pub async fn restart(self) -> Self {
        let data = self.stop().await;
        Self::start_in(data).await
    }

    /// Installs and activates a packaged connector through the registry.
    pub async fn install(&self, kind: &str, name: &str) {
        let (manifest, wasm) = package(kind, name);
        self.install_manifest(&manifest, wasm).await;
    }

    /// Installs and activates a component under `manifest` through the registry.
    pub async fn install_manifest(&self, manifest: &str, wasm: Vec<u8>) -> Installed {
        let package = Package {
            manifest: manifest.to_owned(),
            wasm,
            signature: None,
        };
        self.app
            .state
            .registry
            .install(
                package,
                InstallSource::Api,
                Activation::Activate,
                Actor::Api,
            )
            .await
            .unwrap()
    }

    /// Sends `request` as the admin unless it names its own credential.
    pub async fn send(&self, mut request: Request<Body>) -> Reply {
        if !request.headers().contains_key("authorization") {
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {ADMIN_KEY}").parse().unwrap(),
            );
        }
        self.send_raw(request).await
    }

    /// Sends `request` exactly as built, credential or not.
    pub async fn send_raw(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            json,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post_json(&self, uri: &str, body: &str) -> Reply {
        self.send(
            Request::post(uri)
                .header("content-type", "application/json")
                .body(Body::from(body.to_owned()))
                .unwrap(),
        )
        .await
    }

    pub async fn put_json(&self, uri: &str, body: &str) -> Reply {
        self.send(
            Request::put(uri)
                .header("content-type", "application/json")
                .body(Body::from(body.to_owned()))
                .unwrap(),
        )
        .await
    }

    /// Installs a packaged connector over the API, staged (not activated).
    pub async fn stage(&self, kind: &str, name: &str) -> Reply {
        let (manifest, wasm) = package(kind, name);
        let reply = self
            .send(multipart_upload(
                "/v1/connectors?activate=false",
                &manifest,
                &wasm,
                None,
            ))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply
    }

    pub async fn invoke(&self, connector: &str, op: &str, body: &str) -> Reply {
        self.post_json(&format!("/v1/connectors/{connector}/operations/{op}"), body)
            .await
    }

    pub async fn put_setting(&self, connector: &str, kind: &str, key: &str, value: &str) -> Reply {
        let body = serde_json::json!({ "value": value }).to_string();
        self.send(
            Request::put(format!("/v1/connectors/{connector}/{kind}/{key}"))
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// Installs both bundled connectors pointed at `sandbox`, with their keys.
    pub async fn install_bundled(&self, sandbox: &Sandbox) {
        self.install("plugins", "logistics-tracking").await;
        self.install("plugins", "payment-link").await;
        for (name, url, key) in [
            (
                "logistics-tracking",
                sandbox.logistics_url(),
                switchboard_sandbox::LOGISTICS_API_KEY,
            ),
            (
                "payment-link",
                sandbox.payment_url(),
                switchboard_sandbox::PAYMENT_API_KEY,
            ),
        ] {
            assert_eq!(
                self.put_setting(name, "config", "base_url", &url)
                    .await
                    .status,
                StatusCode::NO_CONTENT
            );
            assert_eq!(
                self.put_setting(name, "secrets", "api_key", key)
                    .await
                    .status,
                StatusCode::NO_CONTENT
            );
        }
    }
}

/// A multipart upload of `manifest` and `component`.
pub fn multipart_install(manifest: &str, component: &[u8]) -> Request<Body> {
    multipart_upload("/v1/connectors", manifest, component, None)
}

/// A multipart upload to `uri` with an optional `signature` part.
pub fn multipart_upload(
    uri: &str,
    manifest: &str,
    component: &[u8],
    signature: Option<&str>,
) -> Request<Body> {
    let boundary = "switchboard-test-boundary";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n{manifest}\r\n").as_bytes());
    if let Some(signature) = signature {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"signature\"\r\n\r\n{signature}\r\n").as_bytes());
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"component\"; filename=\"c.wasm\"\r\nContent-Type: application/wasm\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(component);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Request::post(uri)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap()
}

pub async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig::ephemeral()).await.unwrap()
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub json: Value,
    pub text: String,
}

impl Reply {
    /// The error code, asserting the envelope is complete.
    pub fn code(&self) -> &str {
        let error = &self.json["error"];
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "no message in {}",
            self.text
        );
        assert!(
            error["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "no request id in {}",
            self.text
        );
        error["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {}", self.text))
    }

    pub fn message(&self) -> &str {
        self.json["error"]["message"].as_str().unwrap_or_default()
    }
}
