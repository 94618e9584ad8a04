//! Shared by the end-to-end tests: the real `switchboard` binary and the
//! connectors `scripts/test` built.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub fn binary() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let profile_dir = deps.parent().and_then(Path::parent).unwrap();
    let bin = profile_dir.join("switchboard");
    assert!(
        bin.is_file(),
        "{} is missing: run scripts/test, which builds it",
        bin.display()
    );
    bin
}

pub fn dist(kind: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../dist")
        .join(kind);
    assert!(
        dir.is_dir(),
        "{} is missing: run scripts/test, which builds the connectors",
        dir.display()
    );
    dir
}

/// The host-wide admin key every test host is started with.
pub const ADMIN_KEY: &str = "sbk_00000000000000ad_testtesttesttesttesttesttesttesttesttesttes";

/// An HTTP client that sends the admin key on every request.
pub fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {ADMIN_KEY}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// A running `switchboard` process; killed (SIGKILL, like a crash) on drop.
pub struct Host {
    pub child: Child,
    pub url: String,
    pub ready_after: Duration,
    pub log: PathBuf,
}

impl Host {
    pub async fn start(data: &Path, plugins: Option<PathBuf>) -> Host {
        Self::start_with(data, plugins, &[]).await
    }

    pub async fn start_with(data: &Path, plugins: Option<PathBuf>, extra: &[&str]) -> Host {
        let started = Instant::now();
        let mut command = Command::new(binary());
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .arg("--data-dir")
            .arg(data)
            .env("SWITCHBOARD_ADMIN_KEY", ADMIN_KEY)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(data.with_extension("log")).unwrap())
            .kill_on_drop(true);
        if let Some(plugins) = plugins {
            command.arg("--plugins-dir").arg(plugins);
        }
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut url = None;
        let wait = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.strip_prefix("switchboard listening on ") {
                    url = Some(rest.trim().to_owned());
                }
                if line.starts_with("switchboard ready") {
                    return;
                }
            }
            panic!(
                "the host exited before it was ready; see {}",
                data.with_extension("log").display()
            );
        };
        tokio::time::timeout(Duration::from_secs(120), wait)
            .await
            .expect("host ready within 2 minutes");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Host {
            child,
            url: url.expect("the host printed its address"),
            ready_after: started.elapsed(),
            log: data.with_extension("log"),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = client().request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn invoke(&self, connector: &str, op: &str, input: Value) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/connectors/{connector}/operations/{op}"),
            Some(input),
        )
        .await
    }

    pub async fn set(&self, connector: &str, kind: &str, key: &str, value: &str) {
        let (status, body) = self
            .call(
                reqwest::Method::PUT,
                &format!("/v1/connectors/{connector}/{kind}/{key}"),
                Some(json!({ "value": value })),
            )
            .await;
        assert_eq!(status, 204, "{body}");
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    pub async fn crash(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// Copies the package directory `from` (flat: manifest, component, signature) to `to`.
pub fn copy_package(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
