//! The Clink provider driven over HTTP, as the connector and a person at the control
//! routes would.

use md5::{Digest, Md5};
use reqwest::Url;
use serde_json::{Value, json};

use crate::test_support::{get_json, post_json, put_json, start};
use crate::{CLINK_AGENT_PASSWORD, CLINK_ENTERPRISE_ID, Provider, Sandbox, Subscriber};

fn pwd() -> String {
    hex::encode(Md5::digest(CLINK_AGENT_PASSWORD.as_bytes()))
}

fn clink(sandbox: &Sandbox) -> String {
    sandbox.url(Provider::Clink)
}

/// `PreviewOutcall` for agent `cno` calling `number`, with `extra` parameters; `extra`
/// may override the credentials.
async fn outcall(
    base: &str,
    cno: &str,
    number: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<Value> {
    let pwd = pwd();
    let mut params = vec![
        ("enterpriseId", CLINK_ENTERPRISE_ID),
        ("cno", cno),
        ("pwd", pwd.as_str()),
        ("customerNumber", number),
    ];
    params.retain(|(name, _)| !extra.iter().any(|(other, _)| other == name));
    params.extend_from_slice(extra);
    let url = Url::parse_with_params(&format!("{base}/interface/PreviewOutcall"), &params)?;
    let (status, body) = get_json(url.as_str(), None).await?;
    assert_eq!(status, 200, "Clink answers every request with 200: {body}");
    Ok(body)
}

async fn agent_status(base: &str, params: &[(&str, &str)]) -> anyhow::Result<Value> {
    let url = Url::parse_with_params(&format!("{base}/interface/AgentStatus"), params)?;
    let (status, body) = get_json(url.as_str(), None).await?;
    assert_eq!(status, 200, "{body}");
    Ok(body)
}

async fn state_of(base: &str, cno: &str) -> anyhow::Result<Value> {
    let pwd = pwd();
    let body = agent_status(
        base,
        &[
            ("enterpriseId", CLINK_ENTERPRISE_ID),
            ("cno", cno),
            ("pwd", &pwd),
        ],
    )
    .await?;
    Ok(body["state"].clone())
}

async fn calls(base: &str) -> anyhow::Result<Vec<Value>> {
    let (_, calls) = get_json(&format!("{base}/__sandbox/clink/calls"), None).await?;
    Ok(calls.as_array().cloned().unwrap_or_default())
}

#[tokio::test]
async fn an_asynchronous_call_is_accepted_without_a_unique_id_and_makes_the_agent_busy()
-> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = clink(&sandbox);
    assert_eq!(state_of(&base, "2000").await?, "idle");
    let reply = outcall(&base, "2000", "13800138000", &[("userField", "ticket=17")]).await?;
    assert_eq!(reply, json!({"res": 0}));
    assert_eq!(state_of(&base, "2000").await?, "busy");

    let calls = calls(&base).await?;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["cno"], "2000");
    assert_eq!(calls[0]["customerNumber"], "13800138000");
    assert_eq!(calls[0]["userField"], "ticket=17");
    assert_eq!(calls[0]["clidLeftNumber"], Value::Null);
    assert_eq!(calls[0]["sync"], 0);
    assert_eq!(calls[0]["state"], "in_progress");
    assert!(
        calls[0]["uniqueId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_synchronous_call_answers_with_the_unique_id_of_the_call() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = clink(&sandbox);
    let extra = [("sync", "1"), ("clidLeftNumber", "02150001234")];
    let reply = outcall(&base, "2001", "01058001234", &extra).await?;
    assert_eq!(reply["res"], 0);
    let calls = calls(&base).await?;
    assert_eq!(reply["uniqueId"], calls[0]["uniqueId"]);
    assert_eq!(calls[0]["sync"], 1);
    assert_eq!(calls[0]["clidLeftNumber"], "02150001234");
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn missing_or_malformed_parameters_are_res_2() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = clink(&sandbox);
    assert_eq!(outcall(&base, "2000", "", &[]).await?, json!({"res": 2}));
    assert_eq!(
        outcall(&base, "", "13800138000", &[]).await?,
        json!({"res": 2})
    );
    assert_eq!(
        outcall(&base, "2000", "13800138000", &[("sync", "yes")]).await?,
        json!({"res": 2})
    );
    let (status, body) = get_json(&format!("{base}/interface/PreviewOutcall"), None).await?;
    assert_eq!((status, body), (200, json!({"res": 2})));
    let (status, body) =
        get_json(&format!("{base}/interface/PreviewOutcall?cno=%FF"), None).await?;
    assert_eq!((status, body), (200, json!({"res": 2})));
    assert!(calls(&base).await?.is_empty());
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_wrong_password_enterprise_or_agent_is_res_3_and_the_pwd_is_hex_in_any_case()
-> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = clink(&sandbox);
    let plain = [("pwd", CLINK_AGENT_PASSWORD)];
    let other_enterprise = [("enterpriseId", "7000002")];
    for extra in [&plain[..], &other_enterprise[..]] {
        assert_eq!(
            outcall(&base, "2000", "13800138000", extra).await?,
            json!({"res": 3})
        );
    }
    assert_eq!(
        outcall(&base, "2010", "13800138000", &[]).await?,
        json!({"res": 3})
    );
    let upper = pwd().to_uppercase();
    let reply = outcall(&base, "2000", "13800138000", &[("pwd", &upper)]).await?;
    assert_eq!(reply, json!({"res": 0}));
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_account_settings_drive_res_4_5_and_6() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = clink(&sandbox);
    let enterprise = format!("{base}/__sandbox/clink/enterprise");
    for (setting, res) in [
        (json!({"disabled": true}), 4),
        (json!({"disabled": false, "balance_exhausted": true}), 5),
        (
            json!({"balance_exhausted": false, "outcall_enabled": false}),
            6,
        ),
    ] {
        assert_eq!(put_json(&enterprise, &setting.to_string()).await?.0, 200);
        let reply = outcall(&base, "2000", "13800138000", &[]).await?;
        assert_eq!(reply, json!({"res": res}), "{setting}");
    }
    let (status, account) = put_json(&enterprise, r#"{"outcall_enabled": true}"#).await?;
    assert_eq!(status, 200);
    assert_eq!(
        account,
        json!({"disabled": false, "balance_exhausted": false, "outcall_enabled": true})
    );
    assert_eq!(outcall(&base, "2000", "13800138000", &[]).await?["res"], 0);
    let (status, body) = put_json(&enterprise, r#"{"frozen": true}"#).await?;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (400, Some("invalid_request"))
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_number_clink_cannot_dial_is_res_7() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = clink(&sandbox);
    for number in ["12345", "1380013800x", "+8613800138000"] {
        assert_eq!(
            outcall(&base, "2000", number, &[]).await?,
            json!({"res": 7}),
            "{number}"
        );
    }
    assert_eq!(state_of(&base, "2000").await?, "idle");
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_agent_in_a_call_busy_or_offline_is_res_8_and_one_in_wrapup_is_not() -> anyhow::Result<()>
{
    let sandbox = start().await?;
    let base = clink(&sandbox);
    assert_eq!(outcall(&base, "2000", "13800138000", &[]).await?["res"], 0);
    assert_eq!(
        outcall(&base, "2000", "13900139000", &[]).await?,
        json!({"res": 8})
    );
    for (state, res) in [("busy", 8), ("offline", 8), ("wrapup", 0)] {
        let agent = format!("{base}/__sandbox/clink/agents/2001");
        let (status, body) = put_json(&agent, &json!({"state": state}).to_string()).await?;
        assert_eq!((status, &body["state"]), (200, &json!(state)));
        let reply = outcall(&base, "2001", "13800138000", &[]).await?;
        assert_eq!(reply["res"], res, "{state}");
    }
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_agent_who_does_not_pick_up_is_res_1_and_no_call() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = clink(&sandbox);
    let agent = format!("{base}/__sandbox/clink/agents/2002");
    let (status, body) = put_json(&agent, r#"{"answers": false}"#).await?;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"cno": "2002", "state": "idle", "answers": false})
    );
    for sync in ["0", "1"] {
        let reply = outcall(&base, "2002", "13800138000", &[("sync", sync)]).await?;
        assert_eq!(reply, json!({"res": 1}), "sync={sync}");
    }
    assert!(calls(&base).await?.is_empty());
    assert_eq!(state_of(&base, "2002").await?, "idle");
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn agent_status_answers_the_state_or_res_2_3_and_4() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = clink(&sandbox);
    let pwd = pwd();
    let good = [
        ("enterpriseId", CLINK_ENTERPRISE_ID),
        ("cno", "2003"),
        ("pwd", pwd.as_str()),
    ];
    assert_eq!(
        agent_status(&base, &good).await?,
        json!({"res": 0, "cno": "2003", "state": "idle"})
    );
    assert_eq!(agent_status(&base, &good[..2]).await?, json!({"res": 2}));
    let wrong = [
        ("enterpriseId", CLINK_ENTERPRISE_ID),
        ("cno", "2003"),
        ("pwd", "0000"),
    ];
    assert_eq!(agent_status(&base, &wrong).await?, json!({"res": 3}));
    let enterprise = format!("{base}/__sandbox/clink/enterprise");
    put_json(&enterprise, r#"{"disabled": true}"#).await?;
    assert_eq!(agent_status(&base, &good).await?, json!({"res": 4}));
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn hanging_up_puts_the_agent_in_wrapup_and_pushes_to_exactly_the_configured_url()
-> anyhow::Result<()> {
    let sandbox = start().await?;
    let receiver = Subscriber::start(([127, 0, 0, 1], 0).into()).await?;
    let base = clink(&sandbox);
    let push_url = format!("{}/v1/receive/clink?token=s3cret", receiver.url());
    let target = json!({"url": push_url});
    assert_eq!(
        put_json(&format!("{base}/__sandbox/webhook"), &target.to_string())
            .await?
            .0,
        200
    );
    let reply = outcall(
        &base,
        "2004",
        "13800138000",
        &[("sync", "1"), ("userField", "t=1")],
    )
    .await?;
    let unique_id = reply["uniqueId"].as_str().unwrap_or_default().to_owned();

    let hangup = format!("{base}/__sandbox/clink/calls/{unique_id}/hangup");
    let (status, outcome) = post_json(&hangup, None, r#"{"hangupSide": "customer"}"#).await?;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["call"]["state"], "ended");
    assert_eq!(outcome["delivery"]["status"], 200);
    assert_eq!(outcome["delivery"]["url"], push_url);
    assert_eq!(state_of(&base, "2004").await?, "wrapup");

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, "POST");
    assert_eq!(received[0].uri, "/v1/receive/clink?token=s3cret");
    let push: Value = serde_json::from_slice(&received[0].body)?;
    assert_eq!(push["cno"], "2004");
    assert_eq!(push["uniqueId"], unique_id);
    assert_eq!(push["customerNumber"], "13800138000");
    assert_eq!(push["userField"], "t=1");
    assert_eq!(push["status"], "answered");
    assert_eq!(push["hangupSide"], "customer");
    let (start_time, end_time) = (push["startTime"].as_u64(), push["endTime"].as_u64());
    assert!(start_time.is_some() && end_time >= start_time, "{push}");

    let (status, again) = post_json(&hangup, None, "").await?;
    assert_eq!(
        (status, again["error"]["type"].as_str()),
        (409, Some("call_ended"))
    );
    assert_eq!(receiver.received().len(), 1);
    receiver.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_asynchronous_call_ends_with_a_push_too_and_without_a_url_nothing_is_sent()
-> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = clink(&sandbox);
    outcall(&base, "2005", "13800138000", &[]).await?;
    let unique_id = calls(&base).await?[0]["uniqueId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let hangup = format!("{base}/__sandbox/clink/calls/{unique_id}/hangup");
    let (status, outcome) = post_json(&hangup, None, r#"{"status": "no_answer"}"#).await?;
    assert_eq!(status, 200);
    assert_eq!(outcome["delivery"], Value::Null);
    assert_eq!(outcome["call"]["status"], "no_answer");
    assert_eq!(outcome["call"]["hangupSide"], "agent");
    assert_eq!(calls(&base).await?[0]["state"], "ended");
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn control_routes_refuse_unknown_agents_calls_and_values() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = clink(&sandbox);
    let (status, body) = put_json(&format!("{base}/__sandbox/clink/agents/9999"), "{}").await?;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (404, Some("not_found"))
    );
    let agent = format!("{base}/__sandbox/clink/agents/2000");
    let (status, body) = put_json(&agent, r#"{"state": "napping"}"#).await?;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (400, Some("invalid_request"))
    );
    let hangup = format!("{base}/__sandbox/clink/calls/nope/hangup");
    let (status, body) = post_json(&hangup, None, "").await?;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (404, Some("not_found"))
    );
    let (status, agents) = get_json(&format!("{base}/__sandbox/clink/agents"), None).await?;
    assert_eq!(status, 200);
    assert_eq!(agents.as_array().map(Vec::len), Some(10));
    assert_eq!(
        sandbox.requests(Provider::Clink),
        0,
        "control routes are not counted"
    );
    sandbox.shutdown().await;
    Ok(())
}
