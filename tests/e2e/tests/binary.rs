//! End-to-end: the real `switchboard` binary, the real connectors built by
//! `scripts/test`, and the sandbox providers, all on loopback.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Host, binary, copy_package, dist};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn the_binary_serves_the_bundled_connectors_and_a_crash_loses_nothing() {
    let sandbox =
        switchboard_sandbox::Sandbox::start(switchboard_sandbox::SandboxConfig::ephemeral())
            .await
            .unwrap();
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let host = Host::start(&data, Some(dist("plugins"))).await;
    eprintln!(
        "first start (compiling every bundled connector): {:?}",
        host.ready_after
    );

    host.set(
        "logistics-tracking",
        "config",
        "base_url",
        &sandbox.logistics_url(),
    )
    .await;
    host.set(
        "logistics-tracking",
        "secrets",
        "api_key",
        switchboard_sandbox::LOGISTICS_API_KEY,
    )
    .await;
    host.set("payment-link", "config", "base_url", &sandbox.payment_url())
        .await;
    host.set(
        "payment-link",
        "secrets",
        "api_key",
        switchboard_sandbox::PAYMENT_API_KEY,
    )
    .await;
    let (status, parcel) = host
        .invoke(
            "logistics-tracking",
            "track",
            json!({"carrier": "yto", "tracking_number": "YT1234567890"}),
        )
        .await;
    assert_eq!(status, 200, "{parcel}");
    let (status, link) = host
        .invoke(
            "payment-link",
            "create-link",
            json!({"order_id": "E2E-1", "amount": 500, "currency": "USD"}),
        )
        .await;
    assert_eq!(status, 200, "{link}");
    let log = host.log_text();
    for secret in [
        switchboard_sandbox::LOGISTICS_API_KEY,
        switchboard_sandbox::PAYMENT_API_KEY,
    ] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
    host.crash().await;

    let restarted = Host::start(&data, None).await;
    eprintln!(
        "restart with every bundled connector installed: {:?}",
        restarted.ready_after
    );
    let (status, list) = restarted
        .call(reqwest::Method::GET, "/v1/connectors", None)
        .await;
    assert_eq!(status, 200);
    let bundled = std::fs::read_dir(dist("plugins")).unwrap().count();
    assert_eq!(
        list["connectors"].as_array().unwrap().len(),
        bundled,
        "{list}"
    );
    let (status, again) = restarted
        .invoke(
            "logistics-tracking",
            "track",
            json!({"carrier": "yto", "tracking_number": "YT1234567890"}),
        )
        .await;
    assert_eq!(
        (status, &again),
        (200, &parcel),
        "config and secret survived the crash"
    );
    let (status, read_back) = restarted
        .invoke("payment-link", "get-status", json!({"order_id": "E2E-1"}))
        .await;
    assert_eq!(status, 200, "kv survived the crash: {read_back}");
    assert_eq!(read_back["link_id"], link["link_id"]);
}

#[tokio::test]
async fn a_looping_connector_times_out_while_another_keeps_answering_through_the_binary() {
    let temp = tempfile::tempdir().unwrap();
    let host = Host::start(&temp.path().join("data"), Some(dist("test-plugins"))).await;
    let spinning = async {
        let calls = (0..4).map(|_| host.invoke("misbehaving", "spin", json!({})));
        futures::future::join_all(calls).await
    };
    let echoing = async {
        for i in 0..20 {
            let (status, body) = host.invoke("echo", "echo", json!({ "i": i })).await;
            assert_eq!((status, body), (200, json!({ "i": i })));
        }
    };
    let (spun, ()) = tokio::join!(spinning, echoing);
    for (status, body) in spun {
        assert_eq!(status, 504);
        assert_eq!(body["error"]["code"], "deadline_exceeded");
    }
}

#[tokio::test]
async fn the_sandbox_command_serves_every_fake_provider_and_the_receiver() {
    let providers = switchboard_sandbox::Provider::ALL;
    let mut command = Command::new(binary());
    command.args(["sandbox", "--subscriber-addr", "127.0.0.1:0"]);
    for provider in providers {
        command.arg(format!("--provider={}=127.0.0.1:0", provider.name()));
    }
    let mut child = command
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut urls = std::collections::HashMap::new();
    for provider in providers {
        let line = lines.next_line().await.unwrap().unwrap();
        assert!(
            line.starts_with(&format!(
                "sandbox {} provider on http://127.0.0.1:",
                provider.name()
            )),
            "{line}"
        );
        urls.insert(provider, line.rsplit(' ').next().unwrap().to_owned());
    }
    let receiver = lines.next_line().await.unwrap().unwrap();
    let receiver = receiver.rsplit(' ').next().unwrap().to_owned();
    let logistics = &urls[&switchboard_sandbox::Provider::Logistics];
    let payment = &urls[&switchboard_sandbox::Provider::Payment];
    let client = reqwest::Client::new();
    let tracked = client
        .get(format!("{logistics}/v1/tracking/ems/EM1234567890"))
        .bearer_auth(switchboard_sandbox::LOGISTICS_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(tracked.status(), 200);
    let unauthorized = client
        .get(format!("{payment}/v1/payment_links/plink_x"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let delivered = client
        .post(format!("{receiver}/v1/receive/crm"))
        .header("webhook-id", "evt_1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(delivered.status(), 200);
    let received: Value = client
        .get(format!("{receiver}/__sandbox/received"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(received["items"][0]["id"], "evt_1", "{received}");
    assert_eq!(
        received["items"][0]["body"], "{}",
        "bodies are shown as text"
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn guest_stdout_and_stderr_reach_the_host_log_tagged_with_the_connector() {
    let temp = tempfile::tempdir().unwrap();
    let host = Host::start(&temp.path().join("data"), Some(dist("test-plugins"))).await;
    let (status, body) = host.invoke("misbehaving", "stdout", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let log = host.log_text();
    let line = |needle: &str| log.lines().find(|l| l.contains(needle)).map(str::to_owned);
    let stdout = line("misbehaving: a line on stdout").expect("the stdout line is in the log");
    assert!(
        stdout.contains(r#"connector="misbehaving""#) && stdout.contains(r#"source="stdout""#),
        "{stdout}"
    );
    let stderr = line("misbehaving: a line on stderr").expect("the stderr line is in the log");
    assert!(
        stderr.contains("WARN") && stderr.contains(r#"source="stderr""#),
        "{stderr}"
    );
}

/// Runs `switchboard <args>`; returns whether it succeeded, stdout and stderr.
async fn run(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(binary())
        .args(args)
        .env("SWITCHBOARD_KEY", common::ADMIN_KEY)
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `switchboard ctl --url <host> <args>`, which must succeed; its JSON answer.
async fn ctl(host: &Host, args: &[&str]) -> Value {
    let mut all = vec!["ctl", "--url", &host.url];
    all.extend_from_slice(args);
    let (ok, stdout, stderr) = run(&all).await;
    assert!(ok, "ctl {args:?} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or(Value::Null)
}

#[tokio::test]
async fn signed_packages_hot_load_into_a_canary_and_ctl_promotes_and_rolls_back() {
    let temp = tempfile::tempdir().unwrap();
    let key = temp.path().join("signing.key");
    let key = key.to_str().unwrap();
    let (ok, public, stderr) = run(&["keygen", "--secret-key-file", key]).await;
    assert!(ok, "{stderr}");
    let public = public.trim().to_owned();
    let plugins = temp.path().join("plugins");
    let first = plugins.join("echo");
    copy_package(&dist("test-plugins").join("echo"), &first);
    let (ok, _, stderr) = run(&["sign", "--secret-key-file", key, first.to_str().unwrap()]).await;
    assert!(ok, "{stderr}");

    let host = Host::start_with(
        &temp.path().join("data"),
        Some(plugins.clone()),
        &[
            "--trusted-key",
            &public,
            "--hot-load",
            "canary",
            "--hot-load-canary-percent",
            "25",
        ],
    )
    .await;
    let view = ctl(&host, &["versions", "echo"]).await;
    assert_eq!(view["active"], "0.1.0", "{view}");
    assert!(view["versions"][0]["signed_by"].is_string());

    let unsigned = temp.path().join("unsigned");
    copy_package(&dist("test-versions").join("echo-0.2.0"), &unsigned);
    let mut all = vec!["install", "--url", &host.url, unsigned.to_str().unwrap()];
    all.push("--stage");
    let (ok, _, stderr) = run(&all).await;
    assert!(!ok && stderr.contains("signature_required"), "{stderr}");

    let (ok, _, stderr) =
        run(&["sign", "--secret-key-file", key, unsigned.to_str().unwrap()]).await;
    assert!(ok, "{stderr}");
    std::fs::rename(&unsigned, plugins.join("echo-next")).unwrap();
    let started = Instant::now();
    let view = loop {
        let view = ctl(&host, &["versions", "echo"]).await;
        if view["canary"]["version"] == "0.2.0" {
            break view;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not hot-loaded: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(view["canary"]["weight_percent"], 25.0);

    let view = ctl(
        &host,
        &[
            "canary", "echo", "0.2.0", "--weight", "0", "--agent", "7001",
        ],
    )
    .await;
    assert_eq!(view["canary"]["agents"], json!(["7001"]));
    let client = common::client();
    let served_to = |agent: &'static str| {
        let request = client
            .post(format!(
                "{}/v1/connectors/echo/operations/version",
                host.url
            ))
            .header("x-agent", agent)
            .json(&json!({}));
        async move {
            let response = request.send().await.unwrap();
            let header = response.headers()["x-connector-version"]
                .to_str()
                .unwrap()
                .to_owned();
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["version"], header.as_str());
            header
        }
    };
    assert_eq!(served_to("7001").await, "0.2.0");
    assert_eq!(served_to("7002").await, "0.1.0");

    let view = ctl(&host, &["promote", "echo"]).await;
    assert_eq!(view["active"], "0.2.0");
    assert!(view["canary"].is_null(), "{view}");
    assert_eq!(served_to("7002").await, "0.2.0");
    let view = ctl(&host, &["rollback", "echo"]).await;
    assert_eq!(view["active"], "0.1.0");
    assert_eq!(served_to("7001").await, "0.1.0");

    let audit = ctl(&host, &["audit", "--connector", "echo"]).await;
    let actions: Vec<&str> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for action in [
        "version.installed",
        "deployment.changed",
        "canary.started",
        "canary.promoted",
        "version.rolled_back",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
}

/// `X-Signature` for the `relay` test connector: hex HMAC-SHA256 of the body.
fn relay_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

#[tokio::test]
async fn every_acknowledged_webhook_is_delivered_after_a_sigkill_mid_stream() {
    let receiver = switchboard_sandbox::Subscriber::start(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let plugins = temp.path().join("plugins");
    copy_package(&dist("test-plugins").join("relay"), &plugins.join("relay"));
    let retries = ["--delivery-retries", "100ms,200ms,400ms,800ms,1s,1s,1s,1s"];
    let host = Host::start_with(&data, Some(plugins.clone()), &retries).await;
    host.set("relay", "secrets", "hook_secret", "crash-secret")
        .await;
    let (status, created) = host
        .call(
            reqwest::Method::POST,
            "/v1/subscriptions",
            Some(json!({"name": "crm", "url": format!("{}/v1/receive/crm", receiver.url()), "kinds": ["call.*"]})),
        )
        .await;
    assert_eq!(status, 201, "{created}");

    // A provider sending one signed webhook every 4 ms, remembering what got a 2xx.
    let url = format!("{}/v1/hooks/relay/signed", host.url);
    let sender = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut acknowledged = Vec::new();
        let started = Instant::now();
        let mut ticker = tokio::time::interval(Duration::from_millis(4));
        for n in 0.. {
            ticker.tick().await;
            if started.elapsed() > Duration::from_millis(2500) {
                break;
            }
            let id = format!("call-{n}-answered");
            let body = serde_json::to_vec(&json!({"events": [
                {"id": id, "kind": "call.answered", "subject": format!("call-{}", n % 7), "data": {"n": n}}
            ]}))
            .unwrap();
            let sent = client
                .post(&url)
                .header("x-signature", relay_signature("crash-secret", &body))
                .body(body)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if sent.is_ok_and(|r| r.status().is_success()) {
                acknowledged.push(id);
            }
        }
        acknowledged
    });
    tokio::time::sleep(Duration::from_millis(1200)).await;
    host.crash().await;
    let acknowledged = sender.await.unwrap();
    assert!(
        acknowledged.len() > 50,
        "only {} webhooks were acknowledged before the crash",
        acknowledged.len()
    );

    let restarted = Host::start_with(&data, None, &retries).await;
    let delivered_ids = |received: &[switchboard_sandbox::Received]| {
        received
            .iter()
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .filter_map(|body| body["id"].as_str().map(str::to_owned))
            .collect::<std::collections::HashSet<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let delivered = delivered_ids(&receiver.received());
        let missing: Vec<&String> = acknowledged
            .iter()
            .filter(|id| !delivered.contains(*id))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged events never reached the subscriber, e.g. {:?}",
            missing.len(),
            acknowledged.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, dead) = restarted.call(reqwest::Method::GET, "/v1/dlq", None).await;
    assert_eq!(status, 200);
    assert_eq!(dead["items"], json!([]), "nothing went to the DLQ");
    eprintln!(
        "{} webhooks acknowledged before the SIGKILL, all delivered after the restart ({} requests in all, duplicates included)",
        acknowledged.len(),
        receiver.received().len()
    );
}

#[tokio::test]
async fn validate_explains_what_is_wrong_with_a_package_word_for_word() {
    let echo = dist("test-plugins").join("echo");
    let (wasm, manifest) = (echo.join("echo.wasm"), echo.join("connector.toml"));
    let text = std::fs::read_to_string(&manifest).unwrap();
    let temp = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = temp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let validate = async |wasm: &str, manifest: &str| run(&["validate", wasm, manifest]).await;

    let (ok, stdout, stderr) = validate(wasm.to_str().unwrap(), manifest.to_str().unwrap()).await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "echo 0.1.0 is a valid connector package\n");
    assert_eq!(stderr, "", "a one-shot check prints no log");

    // A component header and nothing else: it exports none of the world's functions.
    let empty = write("empty.wasm", b"\0asm\x0d\0\x01\0");
    let (ok, _, stderr) = validate(&empty, manifest.to_str().unwrap()).await;
    assert!(!ok);
    assert_eq!(
        stderr,
        "switchboard: invalid package (world_mismatch): the component does not implement the \
         world switchboard:connector/connector@0.1.1: it does not export `describe`, `invoke`, \
         `handle-webhook` and `on-event`\n"
    );

    let (first, rest) = text.split_once('\n').unwrap();
    let unknown = write(
        "unknown.toml",
        format!("{first}\nflavour = \"vanilla\"\n{rest}").as_bytes(),
    );
    let (ok, _, stderr) = validate(wasm.to_str().unwrap(), &unknown).await;
    assert!(!ok);
    assert_eq!(
        stderr,
        "switchboard: invalid package (invalid_manifest): invalid connector.toml: line 2, column \
         1: unknown field `flavour`, expected one of `name`, `version`, `description`, \
         `capabilities`, `config_defaults`, `limits`, `pipeline`, `hooks`, `events`\n"
    );

    let other_version = write(
        "mismatch.toml",
        text.replace("version = \"0.1.0\"", "version = \"0.1.1\"")
            .as_bytes(),
    );
    let (ok, _, stderr) = validate(wasm.to_str().unwrap(), &other_version).await;
    assert!(!ok);
    assert_eq!(
        stderr,
        "switchboard: invalid package (describe_mismatch): describe() reports version `0.1.0` \
         but connector.toml says `0.1.1`\n"
    );
}
