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

/// Where every test host of the suite writes its log, and `secrets.txt`
/// the secret values the tests set through the API: `scripts/test` greps
/// the logs for those values once every test has run.
pub fn host_logs() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("host-logs");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A log file no other test host of this run writes.
fn new_log_file() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let test = std::env::current_exe().unwrap();
    let test = test.file_stem().unwrap().to_string_lossy();
    host_logs().join(format!("{test}-{}-{n}.log", std::process::id()))
}

/// Notes a secret value set through the API, for the suite's log check.
fn note_secret(value: &str) {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(host_logs().join("secrets.txt"))
        .unwrap();
    file.write_all(format!("{value}\n").as_bytes()).unwrap();
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
        Self::start_with_env(data, plugins, extra, &[]).await
    }

    /// Like [`Host::start_with`] with environment variables set for the host.
    pub async fn start_with_env(
        data: &Path,
        plugins: Option<PathBuf>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Host {
        let started = Instant::now();
        let log = new_log_file();
        let mut command = Command::new(binary());
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .arg("--data-dir")
            .arg(data)
            .env("SWITCHBOARD_ADMIN_KEY", ADMIN_KEY)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
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
            panic!("the host exited before it was ready; see {}", log.display());
        };
        tokio::time::timeout(Duration::from_secs(120), wait)
            .await
            .expect("host ready within 2 minutes");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Host {
            child,
            url: url.expect("the host printed its address"),
            ready_after: started.elapsed(),
            log,
        }
    }

    /// Sends `path` as the admin.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call_as(Some(ADMIN_KEY), method, path, body).await
    }

    pub async fn invoke(&self, connector: &str, op: &str, input: Value) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/connectors/{connector}/operations/{op}"),
            Some(input),
        )
        .await
    }

    /// Sets a config value or secret through the API; secrets are noted
    /// for the suite's log check.
    pub async fn set(&self, connector: &str, kind: &str, key: &str, value: &str) {
        if kind == "secrets" {
            note_secret(value);
        }
        let (status, body) = self
            .call(
                reqwest::Method::PUT,
                &format!("/v1/connectors/{connector}/{kind}/{key}"),
                Some(json!({ "value": value })),
            )
            .await;
        assert_eq!(status, 204, "{body}");
    }

    /// Sends `path` with `key` as the credential (none when `None`).
    pub async fn call_as(
        &self,
        key: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut request = client.request(method, format!("{}{path}", self.url));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The text of `path`, fetched as the admin.
    pub async fn text(&self, path: &str) -> String {
        client()
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    pub async fn crash(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// Polls `check` until it finds something, for at most 30 seconds.
pub async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
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
