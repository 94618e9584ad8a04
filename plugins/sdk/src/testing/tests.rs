use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::{Deserialize, JsonSchema, Operation, config, events, kv, log};

const MANIFEST: &str = r#"
name = "probe"
version = "0.1.0"

[capabilities]
allowed_hosts = ["127.0.0.1"]
config = ["base_url", "region"]
secrets = ["api_key"]

[config_defaults]
base_url = "http://127.0.0.1:9"
"#;

/// A connector that exercises every capability.
struct Probe;

impl Connector for Probe {
    const NAME: &'static str = "probe";
    const VERSION: &'static str = "0.1.0";
    const DESCRIPTION: &'static str = "Exercises the test host.";

    fn operations() -> Vec<Operation> {
        vec![
            Operation::new("settings", "Reads config and secrets.", settings),
            Operation::new("fetch", "GETs a path of base_url.", fetch),
            Operation::new("remember", "Stores a value once.", remember),
            Operation::new("announce", "Emits an event and logs.", announce),
        ]
    }
}

#[derive(Deserialize, JsonSchema)]
struct Path {
    path: String,
}

fn settings(_ctx: &Context, _input: Value) -> Result<Value, Error> {
    Ok(json!({
        "base_url": config::get("base_url"),
        "region": config::get("region"),
        "undeclared": config::get("undeclared"),
        "api_key_set": config::secret("api_key").is_some(),
    }))
}

fn fetch(_ctx: &Context, input: Path) -> Result<Value, Error> {
    let base_url = config::require("base_url")?;
    let response = http::get(format!("{base_url}{}", input.path))
        .bearer(&config::require_secret("api_key")?)
        .send()?;
    if !response.is_success() {
        return Err(Error::upstream_status(response.status, &response.body));
    }
    response.json()
}

fn remember(ctx: &Context, input: Value) -> Result<Value, Error> {
    let stored = kv::set_if_absent("value", input.to_string().as_bytes(), None)?;
    let value: Option<Value> = kv::get_json("value")?;
    Ok(json!({ "stored": stored, "value": value, "tenant": ctx.tenant }))
}

fn announce(ctx: &Context, input: Value) -> Result<Value, Error> {
    log::info(format!("announcing for {}", ctx.request_id));
    let id = events::emit("probe.announced", Some("subject-1"), &input)?;
    Ok(json!({ "id": id }))
}

/// Serves one HTTP/1.1 request on loopback with `status` and `body`, and
/// returns the URL and a handle yielding the request head it read.
fn serve_once(status: u16, body: &'static str) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let mut stream = reader.into_inner();
        let reply = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(reply.as_bytes()).expect("write");
        let _ = stream.read(&mut [0; 1]);
        head
    });
    (url, handle)
}

#[test]
fn a_manifest_host_shows_declared_keys_with_defaults_and_hides_the_rest() {
    let host = TestHost::from_manifest(MANIFEST)
        .expect("manifest")
        .with_config("region", "cn")
        .with_config("undeclared", "hidden")
        .with_secret("api_key", "sk_1");
    let out = host
        .invoke::<Probe>("settings", &json!({}))
        .expect("settings");
    assert_eq!(
        out,
        json!({"base_url": "http://127.0.0.1:9", "region": "cn", "undeclared": null, "api_key_set": true})
    );
}

#[test]
fn recorded_responses_answer_in_order_and_requests_are_kept_as_sent() {
    let url = "http://127.0.0.1:9/v1/thing";
    let host = TestHost::from_manifest(MANIFEST)
        .expect("manifest")
        .with_secret("api_key", "sk_1")
        .respond("GET", url, http::Response::new(200).body(r#"{"n": 1}"#))
        .respond("GET", url, http::Response::new(503).body("busy"));
    let input = json!({"path": "/v1/thing"});
    assert_eq!(host.invoke::<Probe>("fetch", &input), Ok(json!({"n": 1})));
    let error = host.invoke::<Probe>("fetch", &input).expect_err("503");
    assert_eq!(
        (error.code.as_str(), error.retryable),
        ("upstream_unavailable", true)
    );
    let error = host
        .invoke::<Probe>("fetch", &input)
        .expect_err("none left");
    assert_eq!(error.code, "http_failed");
    assert!(
        error.message.contains("no recorded response for GET"),
        "{error}"
    );
    let requests = host.requests();
    assert_eq!(requests.len(), 2, "only answered requests are exchanges");
    assert_eq!(
        requests[0].header_value("authorization"),
        Some("Bearer sk_1")
    );
}

#[test]
fn a_url_outside_allowed_hosts_is_refused_like_the_host_does() {
    let host = TestHost::from_manifest(MANIFEST)
        .expect("manifest")
        .with_config("base_url", "http://10.0.0.1:80")
        .with_secret("api_key", "sk_1");
    let error = host
        .invoke::<Probe>("fetch", &json!({"path": "/"}))
        .expect_err("refused");
    assert_eq!(error.code, "host_not_allowed");
    assert_eq!(
        error.message,
        "`10.0.0.1:80` is not in this connector's allowed_hosts"
    );
}

#[test]
fn a_missing_secret_is_the_sdk_error_not_a_panic() {
    let host = TestHost::from_manifest(MANIFEST).expect("manifest");
    let error = host
        .invoke::<Probe>("fetch", &json!({"path": "/"}))
        .expect_err("no secret");
    assert_eq!(error.code, "secret_missing");
}

#[test]
fn kv_lives_across_calls_of_one_host_and_not_across_hosts() {
    let host = TestHost::new();
    let first = host.invoke::<Probe>("remember", &json!(1)).expect("first");
    let second = host.invoke::<Probe>("remember", &json!(2)).expect("second");
    assert_eq!(
        first,
        json!({"stored": true, "value": 1, "tenant": "default"})
    );
    assert_eq!(
        second,
        json!({"stored": false, "value": 1, "tenant": "default"})
    );
    assert_eq!(host.kv_get("value"), Some(b"1".to_vec()));
    let other = TestHost::new().with_kv("value", b"7", Some(Duration::ZERO));
    let out = other
        .invoke::<Probe>("remember", &json!(3))
        .expect("expired value");
    assert_eq!(out["stored"], true, "an expired value counts as absent");
}

#[test]
fn events_and_log_lines_are_kept_for_the_test_to_inspect() {
    let host = TestHost::new();
    let out = host
        .invoke::<Probe>("announce", &json!({"n": 1}))
        .expect("announce");
    assert_eq!(out, json!({"id": "evt-1"}));
    assert_eq!(
        host.events(),
        vec![EmittedEvent {
            id: "evt-1".into(),
            kind: "probe.announced".into(),
            subject: Some("subject-1".into()),
            data: json!({"n": 1}),
        }]
    );
    assert_eq!(
        host.logs(),
        vec![(Level::Info, "announcing for test-1".into())]
    );
}

#[test]
fn a_live_host_reaches_a_loopback_upstream_and_recordings_replay_without_secrets() {
    let (url, server) = serve_once(200, r#"{"live": true}"#);
    let host = TestHost::from_manifest(MANIFEST)
        .expect("manifest")
        .with_config("base_url", &url)
        .with_secret("api_key", "sk_live_secret")
        .live();
    let out = host.invoke::<Probe>("fetch", &json!({"path": "/v1/x"}));
    assert_eq!(out, Ok(json!({"live": true})));
    let head = server.join().expect("server");
    assert!(head.starts_with("GET /v1/x HTTP/1.1"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer sk_live_secret")
    );

    let dir = std::env::temp_dir().join(format!("switchboard-sdk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let recording = dir.join("fetch.json");
    host.save_exchanges(&recording).expect("save");
    let saved = std::fs::read_to_string(&recording).expect("read");
    assert!(!saved.contains("sk_live_secret"), "{saved}");
    assert!(saved.contains("Bearer <secret:api_key>"), "{saved}");

    let offline = TestHost::from_manifest(MANIFEST)
        .expect("manifest")
        .with_config("base_url", &url)
        .with_secret("api_key", "sk_other")
        .replay_file(&recording)
        .expect("replay");
    let out = offline.invoke::<Probe>("fetch", &json!({"path": "/v1/x"}));
    assert_eq!(out, Ok(json!({"live": true})));
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_broken_recording_names_the_file_and_the_exchange() {
    let dir = std::env::temp_dir().join(format!("switchboard-sdk-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let recording = dir.join("bad.json");
    std::fs::write(
        &recording,
        r#"[{"request": {"url": "http://x/"}, "response": {"status": 200}}]"#,
    )
    .expect("write");
    let error = TestHost::new()
        .replay_file(&recording)
        .err()
        .expect("refused");
    assert_eq!(error.code, "recording_invalid");
    assert!(
        error
            .message
            .ends_with("exchange 0: the request has no method"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn connector_code_called_outside_a_test_host_gets_host_unavailable() {
    let error = kv::get("k").expect_err("no host");
    assert_eq!(error.code, "host_unavailable");
}
