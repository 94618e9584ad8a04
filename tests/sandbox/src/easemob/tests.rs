//! The Easemob provider driven over HTTP, as the connector and the agents' side would.

use reqwest::Method;
use serde_json::{Value, json};

use crate::test_support::{client, get_json, put_json, read_json, start};
use crate::{EASEMOB_CLIENT_ID, EASEMOB_SECRET_ID, EASEMOB_TENANT_ID, Sandbox};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";

/// Status and body of a call to `url`, with `Kefu-Token` if given.
async fn call(
    method: Method,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> anyhow::Result<(u16, Value)> {
    let mut request = client()?.request(method, url).json(body);
    if let Some(token) = token {
        request = request.header("Kefu-Token", token);
    }
    read_json(request.send().await?).await
}

fn api(sandbox: &Sandbox, tenant: &str, path: &str) -> String {
    format!(
        "{}/api/platform/tenants/{tenant}/{path}",
        sandbox.url(crate::Provider::Easemob)
    )
}

fn control(sandbox: &Sandbox, path: &str) -> String {
    format!(
        "{}/__sandbox/easemob/{path}",
        sandbox.url(crate::Provider::Easemob)
    )
}

fn credentials() -> Value {
    json!({"clientId": EASEMOB_CLIENT_ID, "secretId": EASEMOB_SECRET_ID})
}

async fn token(sandbox: &Sandbox) -> anyhow::Result<String> {
    let url = api(sandbox, EASEMOB_TENANT_ID, "accessToken");
    let (status, body) = call(Method::POST, &url, None, &credentials()).await?;
    anyhow::ensure!(status == 200, "token request answered {status}: {body}");
    Ok(body["entity"]["accessToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

fn fail(code: &str, description: &str) -> Value {
    json!({"status": "FAIL", "errorCode": code, "errorDescription": description})
}

fn invalid_param() -> Value {
    fail(
        "API_001",
        "param is invalid,please check your param is correct!",
    )
}

fn bind_failed() -> Value {
    fail("API_120", "business bind operation failed")
}

async fn bind(
    sandbox: &Sandbox,
    token: &str,
    flag: &str,
    visitor: &str,
    agent: &str,
) -> anyhow::Result<(u16, Value)> {
    let body = json!({"businessFlag": flag, "visitUserName": visitor, "agentUserName": agent});
    call(
        Method::POST,
        &api(sandbox, EASEMOB_TENANT_ID, "busniessbind"),
        Some(token),
        &body,
    )
    .await
}

async fn unbind(sandbox: &Sandbox, token: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
    call(
        Method::DELETE,
        &api(sandbox, EASEMOB_TENANT_ID, "busniessbind"),
        Some(token),
        body,
    )
    .await
}

/// The `entity` of a routed session; fails unless the reply is a 200 OK.
async fn route(sandbox: &Sandbox, token: &str, body: &Value) -> anyhow::Result<Value> {
    let url = api(sandbox, EASEMOB_TENANT_ID, "sessions");
    let (status, reply) = call(Method::POST, &url, Some(token), body).await?;
    anyhow::ensure!(
        status == 200 && reply["status"] == "OK",
        "{status}: {reply}"
    );
    Ok(reply["entity"].clone())
}

fn visit(visitor: &str, flag: Option<&str>) -> Value {
    json!({"visitorUserName": visitor, "ext": {"weichat": {"businessFlag": flag}}})
}

async fn set_agent(sandbox: &Sandbox, agent: &str, change: &Value) -> anyhow::Result<Value> {
    let (status, body) = put_json(
        &control(sandbox, &format!("agents/{agent}")),
        &change.to_string(),
    )
    .await?;
    anyhow::ensure!(status == 200, "{status}: {body}");
    Ok(body)
}

fn assigned(entity: &Value) -> (Option<&str>, Option<&str>, Option<&str>) {
    (
        entity["agentUserName"].as_str(),
        entity["skillGroup"].as_str(),
        entity["dispatch"].as_str(),
    )
}

#[tokio::test]
async fn the_tenants_client_and_secret_get_a_32_hex_token_valid_7200_seconds() -> anyhow::Result<()>
{
    let sandbox = start().await?;
    let url = api(&sandbox, EASEMOB_TENANT_ID, "accessToken");
    let mut with_tenant = credentials();
    with_tenant["tenantId"] = json!(20080);
    for body in [credentials(), with_tenant] {
        let (status, reply) = call(Method::POST, &url, None, &body).await?;
        assert_eq!((status, &reply["status"]), (200, &json!("OK")), "{reply}");
        assert_eq!(reply["entity"]["expireTime"], 7200);
        let token = reply["entity"]["accessToken"].as_str().unwrap_or_default();
        assert_eq!(token.len(), 32, "{reply}");
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{reply}");
    }
    let (_, stats) = get_json(&control(&sandbox, "stats"), None).await?;
    assert_eq!(
        (&stats["token_requests"], &stats["tokens_issued"]),
        (&json!(2), &json!(2))
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn another_tenant_is_api_003_wrong_credentials_api_004_and_a_bad_body_api_001()
-> anyhow::Result<()> {
    let sandbox = start().await?;
    let unknown_tenant = fail("API_003", "tenantId is invalid");
    let (status, reply) = call(
        Method::POST,
        &api(&sandbox, "1", "accessToken"),
        None,
        &credentials(),
    )
    .await?;
    assert_eq!((status, reply), (400, unknown_tenant.clone()));

    let url = api(&sandbox, EASEMOB_TENANT_ID, "accessToken");
    let mut other_tenant = credentials();
    other_tenant["tenantId"] = json!("1");
    assert_eq!(
        call(Method::POST, &url, None, &other_tenant).await?,
        (400, unknown_tenant)
    );

    let bad_credentials = fail("API_004", "clientId or secretId is invalid");
    for field in ["clientId", "secretId"] {
        let mut wrong = credentials();
        wrong[field] = json!("00000000-0000-0000-0000-000000000000");
        assert_eq!(
            call(Method::POST, &url, None, &wrong).await?,
            (401, bad_credentials.clone())
        );
    }
    let missing = json!({"clientId": EASEMOB_CLIENT_ID});
    assert_eq!(
        call(Method::POST, &url, None, &missing).await?,
        (400, invalid_param())
    );

    let (_, stats) = get_json(&control(&sandbox, "stats"), None).await?;
    assert_eq!(
        (&stats["token_requests"], &stats["tokens_issued"]),
        (&json!(5), &json!(0))
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn calls_without_a_live_kefu_token_are_401_api_002_and_a_new_token_works_again()
-> anyhow::Result<()> {
    let sandbox = start().await?;
    let url = api(&sandbox, EASEMOB_TENANT_ID, "sessions");
    let body = visit("v-1", None);
    let invalid_token = fail("API_002", "accessToken is invalid or expired");
    assert_eq!(
        call(Method::POST, &url, None, &body).await?,
        (401, invalid_token.clone())
    );
    assert_eq!(
        call(
            Method::POST,
            &url,
            Some("4313913457bfd684eccbbb7405ba074f"),
            &body
        )
        .await?,
        (401, invalid_token.clone())
    );
    let typo = client()?
        .post(&url)
        .header("Kefu-Toke", token(&sandbox).await?)
        .json(&body)
        .send()
        .await?;
    assert_eq!(read_json(typo).await?, (401, invalid_token.clone()));

    let old = token(&sandbox).await?;
    assert_eq!(call(Method::POST, &url, Some(&old), &body).await?.0, 200);
    let (status, expired) =
        crate::test_support::post_json(&control(&sandbox, "tokens/expire"), None, "").await?;
    assert_eq!((status, &expired["expired"]), (200, &json!(2)));
    assert_eq!(
        call(Method::POST, &url, Some(&old), &body).await?,
        (401, invalid_token)
    );
    let fresh = token(&sandbox).await?;
    assert_eq!(call(Method::POST, &url, Some(&fresh), &body).await?.0, 200);

    let (_, stats) = get_json(&control(&sandbox, "stats"), None).await?;
    assert_eq!(
        (&stats["token_rejections"], &stats["active_tokens"]),
        (&json!(4), &json!(1))
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_call_for_another_tenant_is_api_003_even_with_a_token() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let token = token(&sandbox).await?;
    let body = json!({"businessFlag": "F", "visitUserName": "V", "agentUserName": ALICE});
    let (status, reply) = call(
        Method::POST,
        &api(&sandbox, "1", "busniessbind"),
        Some(&token),
        &body,
    )
    .await?;
    assert_eq!((status, &reply["errorCode"]), (400, &json!("API_003")));
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_binding_is_created_once_listed_and_removed_once() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let token = token(&sandbox).await?;
    assert_eq!(
        bind(&sandbox, &token, "lead", "v-1", ALICE).await?,
        (200, json!({"status": "OK"}))
    );
    let (_, listed) = get_json(&control(&sandbox, "bindings"), None).await?;
    assert_eq!(
        listed,
        json!([{"businessFlag": "lead", "visitUserName": "v-1", "agentUserName": ALICE}])
    );
    assert_eq!(
        bind(&sandbox, &token, "lead", "v-1", ALICE).await?,
        (400, bind_failed())
    );
    assert_eq!(
        bind(&sandbox, &token, "lead", "v-1", BOB).await?,
        (400, bind_failed())
    );
    assert_eq!(
        bind(&sandbox, &token, "lead", "v-2", "nobody@example.com").await?,
        (400, bind_failed())
    );
    assert_eq!(
        bind(&sandbox, &token, "lead,vip", "v-2", BOB).await?,
        (400, invalid_param())
    );
    assert_eq!(
        bind(&sandbox, &token, "lead", " ", BOB).await?,
        (400, invalid_param())
    );
    assert_eq!(bind(&sandbox, &token, "vip", "v-1", BOB).await?.0, 200);

    let pair = json!({"businessFlag": "lead", "visitUserName": "v-1"});
    assert_eq!(
        unbind(&sandbox, &token, &pair).await?,
        (200, json!({"status": "OK"}))
    );
    assert_eq!(unbind(&sandbox, &token, &pair).await?, (400, bind_failed()));
    assert_eq!(
        unbind(&sandbox, &token, &json!({"businessFlag": "lead"})).await?,
        (400, invalid_param())
    );
    let (_, stats) = get_json(&control(&sandbox, "stats"), None).await?;
    assert_eq!(stats["bindings"], 1);
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_bound_visitor_goes_to_their_idle_agent_and_the_session_counts_against_their_max()
-> anyhow::Result<()> {
    let sandbox = start().await?;
    let token = token(&sandbox).await?;
    bind(&sandbox, &token, "lead", "v-1", BOB).await?;
    let entity = route(&sandbox, &token, &visit("v-1", Some("lead"))).await?;
    assert_eq!(
        assigned(&entity),
        (Some(BOB), Some("sales"), Some("binding"))
    );
    let session_id = entity["sessionId"].as_str().unwrap_or_default();
    assert_eq!(session_id.len(), 36, "{entity}");

    let (_, agents) = get_json(&control(&sandbox, "agents"), None).await?;
    let bob = agents
        .as_array()
        .into_iter()
        .flatten()
        .find(|agent| agent["agent"] == BOB);
    assert_eq!(bob.map(|bob| &bob["sessions"]), Some(&json!(1)));
    let (_, sessions) = get_json(&control(&sandbox, "sessions"), None).await?;
    assert_eq!(sessions[0]["sessionId"], session_id);
    assert_eq!(sessions[0]["visitorUserName"], "v-1");

    set_agent(&sandbox, BOB, &json!({"max_sessions": 2})).await?;
    let second = route(&sandbox, &token, &visit("v-1", Some("lead"))).await?;
    assert_eq!(
        assigned(&second),
        (Some(BOB), Some("sales"), Some("binding"))
    );
    let third = route(&sandbox, &token, &visit("v-1", Some("lead"))).await?;
    assert_eq!(
        assigned(&third),
        (Some(ALICE), Some("sales"), Some("overflow"))
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_busy_offline_or_full_bound_agent_overflows_to_the_least_loaded_in_their_group()
-> anyhow::Result<()> {
    let sandbox = start().await?;
    let token = token(&sandbox).await?;
    bind(&sandbox, &token, "lead", "v-1", ALICE).await?;
    for change in [
        json!({"status": "busy"}),
        json!({"status": "away"}),
        json!({"status": "hidden"}),
        json!({"status": "offline"}),
        json!({"status": "online", "max_sessions": 2, "sessions": 2}),
    ] {
        set_agent(&sandbox, ALICE, &change).await?;
        set_agent(&sandbox, BOB, &json!({"sessions": 0})).await?;
        let entity = route(&sandbox, &token, &visit("v-1", Some("lead"))).await?;
        assert_eq!(
            assigned(&entity),
            (Some(BOB), Some("sales"), Some("overflow")),
            "{change}"
        );
    }
    set_agent(&sandbox, BOB, &json!({"sessions": 3})).await?;
    let queued = route(&sandbox, &token, &visit("v-1", Some("lead"))).await?;
    assert_eq!(assigned(&queued), (None, Some("sales"), Some("overflow")));
    assert!(queued["agentUserName"].is_null(), "{queued}");
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn overflow_follows_the_routing_rule_then_the_asked_skill_group() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let token = token(&sandbox).await?;
    bind(&sandbox, &token, "lead", "v-1", ALICE).await?;
    set_agent(&sandbox, ALICE, &json!({"status": "busy"})).await?;
    let (status, rules) = put_json(
        &control(&sandbox, "routing-rules"),
        r#"{"after-sales":"support"}"#,
    )
    .await?;
    assert_eq!((status, rules), (200, json!({"after-sales": "support"})));

    let by_rule = json!({"visitorUserName": "v-1", "skillGroup": "sales",
        "ext": {"weichat": {"businessFlag": "lead", "routingRuleFlag": "after-sales"}}});
    let entity = route(&sandbox, &token, &by_rule).await?;
    assert_eq!(
        assigned(&entity),
        (Some(CAROL), Some("support"), Some("overflow"))
    );

    let unmapped = json!({"visitorUserName": "v-1", "skillGroup": "vip",
        "ext": {"weichat": {"businessFlag": "lead", "routingRuleFlag": "unknown"}}});
    let entity = route(&sandbox, &token, &unmapped).await?;
    assert_eq!(assigned(&entity), (None, Some("vip"), Some("overflow")));
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn without_a_flag_or_a_binding_sessions_are_routed_normally() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let token = token(&sandbox).await?;
    bind(&sandbox, &token, "lead", "v-1", BOB).await?;
    let no_flag = json!({"visitorUserName": "v-1", "skillGroup": "sales"});
    assert_eq!(
        assigned(&route(&sandbox, &token, &no_flag).await?),
        (Some(ALICE), Some("sales"), Some("routing"))
    );
    let other_visitor = visit("v-2", Some("lead"));
    assert_eq!(
        assigned(&route(&sandbox, &token, &other_visitor).await?),
        (Some(BOB), Some("sales"), Some("routing"))
    );
    let support = json!({"visitorUserName": "v-3", "skillGroup": "support"});
    assert_eq!(
        assigned(&route(&sandbox, &token, &support).await?),
        (Some(CAROL), Some("support"), Some("routing"))
    );
    let url = api(&sandbox, EASEMOB_TENANT_ID, "sessions");
    let two_flags = visit("v-1", Some("lead,vip"));
    assert_eq!(
        call(Method::POST, &url, Some(&token), &two_flags).await?,
        (400, invalid_param())
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn control_routes_refuse_bad_changes_and_reset_restores_the_seed() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let token = token(&sandbox).await?;
    let (status, body) = put_json(
        &control(&sandbox, "agents/dave@example.com"),
        r#"{"status":"busy"}"#,
    )
    .await?;
    assert_eq!(
        (status, &body["error"]["param"]),
        (400, &json!("skill_group"))
    );
    let (status, _) = put_json(
        &control(&sandbox, &format!("agents/{ALICE}")),
        r#"{"status":"lunch"}"#,
    )
    .await?;
    assert_eq!(status, 400);
    let (status, _) = put_json(&control(&sandbox, "routing-rules"), r#"{"a,b":"sales"}"#).await?;
    assert_eq!(status, 400);
    let dave = set_agent(&sandbox, "dave@example.com", &json!({"skill_group": "vip"})).await?;
    assert_eq!(
        dave,
        json!({"agent": "dave@example.com", "status": "online", "max_sessions": 3,
            "skill_group": "vip", "sessions": 0})
    );
    bind(&sandbox, &token, "lead", "v-1", "dave@example.com").await?;

    let (status, _) = crate::test_support::post_json(&control(&sandbox, "reset"), None, "").await?;
    assert_eq!(status, 200);
    let (_, agents) = get_json(&control(&sandbox, "agents"), None).await?;
    let names: Vec<&str> = agents
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["agent"].as_str())
        .collect();
    assert_eq!(names, [ALICE, BOB, CAROL]);
    let (_, stats) = get_json(&control(&sandbox, "stats"), None).await?;
    assert_eq!(
        stats,
        json!({"token_requests": 0, "tokens_issued": 0, "active_tokens": 0,
            "token_rejections": 0, "bindings": 0, "sessions": 0})
    );
    let url = api(&sandbox, EASEMOB_TENANT_ID, "sessions");
    assert_eq!(
        call(Method::POST, &url, Some(&token), &visit("v-1", None))
            .await?
            .0,
        401
    );
    sandbox.shutdown().await;
    Ok(())
}
