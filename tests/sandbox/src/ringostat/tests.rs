//! Ringostat driven over HTTP: a test plays calls and a receiver takes the webhooks.

use serde_json::{Value, json};

use crate::test_support::{client, get_json, post_json, put_json, read_json, start};
use crate::{FaultConfig, Provider, Received, Sandbox, Subscriber};

/// A sandbox and a receiver, with Ringostat's webhook pointed at the receiver and `secret`
/// as the URL key.
async fn wired(secret: Option<&str>) -> anyhow::Result<(Sandbox, Subscriber, String)> {
    let sandbox = start().await?;
    let receiver = Subscriber::start(([127, 0, 0, 1], 0).into()).await?;
    let base = sandbox.url(Provider::Ringostat);
    let target =
        json!({"url": format!("{}/v1/receive/ringostat", receiver.url()), "secret": secret});
    let (status, body) =
        put_json(&format!("{base}/__sandbox/webhook"), &target.to_string()).await?;
    assert_eq!(status, 200, "{body}");
    Ok((sandbox, receiver, base))
}

async fn play(base: &str, call: &Value) -> anyhow::Result<(u16, Value)> {
    post_json(
        &format!("{base}/__sandbox/ringostat/calls"),
        None,
        &call.to_string(),
    )
    .await
}

fn bodies(received: &[Received]) -> anyhow::Result<Vec<Value>> {
    received
        .iter()
        .map(|r| Ok(serde_json::from_slice(&r.body)?))
        .collect()
}

fn events(bodies: &[Value]) -> Vec<&str> {
    bodies
        .iter()
        .map(|b| b["event"].as_str().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn the_five_moments_arrive_in_order_with_the_key_in_the_url() -> anyhow::Result<()> {
    let (sandbox, receiver, base) = wired(Some("s3cret")).await?;
    let call = json!({
        "caller": "+380501234567", "number": "+380441112233",
        "extensions": ["anna", "petro"], "answered_by": 1, "talk_s": 42, "rating": 4,
        "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring"
    });
    let (status, played) = play(&base, &call).await?;
    assert_eq!(status, 200, "{played}");
    let call_id = played["call_id"].as_str().unwrap_or_default().to_owned();
    let deliveries = played["deliveries"].as_array().cloned().unwrap_or_default();
    let summary: Vec<(Value, Value, Value)> = deliveries
        .iter()
        .map(|d| (d["moment"].clone(), d["step"].clone(), d["status"].clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (json!("call_initiated"), Value::Null, json!(200)),
            (json!("forwarding_step"), json!(1), json!(200)),
            (json!("forwarding_step"), json!(2), json!(200)),
            (json!("call_answered"), Value::Null, json!(200)),
            (json!("call_completed"), Value::Null, json!(200)),
            (json!("rating_done"), Value::Null, json!(200)),
        ]
    );
    assert_eq!(
        deliveries[0]["url"],
        format!("{}/v1/receive/ringostat", receiver.url())
    );

    let received = receiver.received();
    assert!(received.iter().all(|r| r.method == "POST"
        && r.uri == "/v1/receive/ringostat?key=s3cret"
        && r.headers.get("content-type").map(String::as_str) == Some("application/json")));
    let bodies = bodies(&received)?;
    assert_eq!(
        events(&bodies),
        [
            "call_initiated",
            "forwarding_step",
            "forwarding_step",
            "call_answered",
            "call_completed",
            "rating_done"
        ]
    );
    for body in &bodies {
        assert_eq!(body["uniqueid"], call_id.as_str());
        assert_eq!(body["caller"], "+380501234567");
        assert_eq!(body["dst"], "+380441112233");
        assert_eq!(body["call_type"], "in");
        assert_eq!(body["utm_campaign"], "spring");
        assert_eq!(body["calldate"].as_str().map(str::len), Some(19));
    }
    assert_eq!(
        (&bodies[1]["step"], &bodies[1]["employee"]),
        (&json!(1), &json!("anna"))
    );
    assert_eq!(
        (&bodies[3]["step"], &bodies[3]["employee"]),
        (&json!(2), &json!("petro"))
    );
    let completed = &bodies[4];
    assert_eq!(completed["disposition"], "ANSWERED");
    assert_eq!(completed["billsec"], 42);
    assert_eq!(completed["duration"], 72);
    let recording = completed["recording"].as_str().unwrap_or_default();
    assert_eq!(recording, format!("{base}/recordings/{call_id}.mp3"));
    assert_eq!(
        (&bodies[5]["rating"], &bodies[5]["employee"]),
        (&json!(4), &json!("petro"))
    );

    let response = client()?.get(recording).send().await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"audio/mpeg"[..])
    );
    receiver.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_missed_call_has_no_answered_moment_and_no_recording() -> anyhow::Result<()> {
    let (sandbox, receiver, base) = wired(Some("k")).await?;
    let call = json!({"caller": "+380501234567", "number": "+380441112233",
                      "extensions": ["anna", "petro", "olena"]});
    let (status, played) = play(&base, &call).await?;
    assert_eq!(status, 200, "{played}");
    let bodies = bodies(&receiver.received())?;
    assert_eq!(
        events(&bodies),
        [
            "call_initiated",
            "forwarding_step",
            "forwarding_step",
            "forwarding_step",
            "call_completed"
        ]
    );
    let completed = &bodies[4];
    assert_eq!(completed["disposition"], "NO ANSWER");
    assert_eq!(
        (&completed["billsec"], &completed["duration"]),
        (&json!(0), &json!(45))
    );
    assert!(completed.get("recording").is_none() && completed.get("employee").is_none());
    assert!(bodies.iter().all(|b| b.get("utm_source").is_none()));

    let call_id = played["call_id"].as_str().unwrap_or_default();
    let (status, error) = get_json(&format!("{base}/recordings/{call_id}.mp3"), None).await?;
    assert_eq!(
        (status, error["error"]["type"].as_str()),
        (404, Some("not_found"))
    );
    receiver.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn webhooks_can_come_as_a_form_or_in_the_query_string() -> anyhow::Result<()> {
    let (sandbox, receiver, base) = wired(Some("k 1")).await?;
    let mut call = json!({"caller": "+380501234567", "number": "+380441112233",
                          "extensions": ["anna"], "encoding": "form", "busy": true});
    play(&base, &call).await?;
    call["encoding"] = json!("query");
    play(&base, &call).await?;
    let received = receiver.received();
    assert_eq!(received.len(), 6);
    let (form, query) = received.split_at(3);
    assert!(form.iter().all(|r| r.method == "POST"
        && r.uri == "/v1/receive/ringostat?key=k+1"
        && r.headers.get("content-type").map(String::as_str)
            == Some("application/x-www-form-urlencoded")));
    let completed = String::from_utf8_lossy(&form[2].body).into_owned();
    assert!(
        completed.starts_with("event=call_completed&uniqueid="),
        "{completed}"
    );
    assert!(
        completed.contains("&caller=%2B380501234567&"),
        "{completed}"
    );
    assert!(completed.contains("&disposition=BUSY&"), "{completed}");
    assert!(query.iter().all(|r| r.method == "GET" && r.body.is_empty()));
    assert!(
        query[1]
            .uri
            .starts_with("/v1/receive/ringostat?key=k+1&event=forwarding_step&")
    );
    assert!(
        query[1].uri.contains("&step=1&employee=anna"),
        "{}",
        query[1].uri
    );
    receiver.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_failing_receiver_still_gets_every_moment_and_the_history_hides_the_key()
-> anyhow::Result<()> {
    let (sandbox, receiver, base) = wired(Some("s3cret")).await?;
    receiver.faults().set(FaultConfig {
        failure_rate: 1.0,
        failure_status: 500,
        ..FaultConfig::default()
    });
    let call = json!({"caller": "+1", "number": "+2", "extensions": ["a"], "answered_by": 0});
    let (status, played) = play(&base, &call).await?;
    assert_eq!(status, 200, "{played}");
    let statuses: Vec<&Value> = played["deliveries"]
        .as_array()
        .map(|d| d.iter().map(|d| &d["status"]).collect())
        .unwrap_or_default();
    assert_eq!(statuses.len(), 4);
    assert!(statuses.iter().all(|s| **s == json!(500)), "{played}");
    assert_eq!(receiver.requests(), 4);
    let (_, sent) = get_json(&format!("{base}/__sandbox/webhook/sent"), None).await?;
    let text = sent.to_string();
    assert!(
        !text.contains("s3cret") && sent.as_array().map(Vec::len) == Some(4),
        "{text}"
    );
    receiver.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn without_a_webhook_url_a_call_is_played_but_nothing_is_sent() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.url(Provider::Ringostat);
    let call = json!({"caller": "+1", "number": "+2", "extensions": ["a"], "answered_by": 0});
    let (status, first) = play(&base, &call).await?;
    let (_, second) = play(&base, &call).await?;
    assert_eq!((status, &first["deliveries"]), (200, &json!([])));
    assert_ne!(first["call_id"], second["call_id"]);
    let id = first["call_id"].as_str().unwrap_or_default();
    let (seconds, sequence) = id.split_once('.').unwrap_or_default();
    assert!(
        seconds.parse::<u64>().is_ok() && sequence.parse::<u64>().is_ok(),
        "{id}"
    );
    let response = client()?
        .get(format!("{base}/recordings/{id}.mp3"))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn bad_call_requests_are_400_invalid_request() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.url(Provider::Ringostat);
    let (status, body) = play(
        &base,
        &json!({"caller": "+1", "number": "+2", "extensions": ["a"], "answered_by": 3}),
    )
    .await?;
    assert_eq!(
        (status, &body["error"]["type"], &body["error"]["param"]),
        (400, &json!("invalid_request"), &json!("answered_by"))
    );
    for raw in [
        "not json",
        r#"{"caller": "+1", "number": "+2"}"#,
        r#"{"caller": "+1", "number": "+2", "extensions": ["a"], "colour": "red"}"#,
        r#"{"caller": "+1", "number": "+2", "extensions": ["a"], "encoding": "xml"}"#,
    ] {
        let response = client()?
            .post(format!("{base}/__sandbox/ringostat/calls"))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await?;
        let (status, body) = read_json(response).await?;
        assert_eq!(
            (status, body["error"]["type"].as_str()),
            (400, Some("invalid_request")),
            "{raw}"
        );
    }
    let (status, body) = put_json(
        &format!("{base}/__sandbox/webhook"),
        r#"{"url": "ftp://x"}"#,
    )
    .await?;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("url"))
    );
    sandbox.shutdown().await;
    Ok(())
}
