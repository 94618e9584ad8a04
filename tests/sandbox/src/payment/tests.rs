//! The payment provider driven over HTTP, as a connector and a customer would.

use serde_json::{Value, json};

use crate::PAYMENT_API_KEY;
use crate::test_support::{client, get_json, post_json, start};

const KEY: Option<&str> = Some(PAYMENT_API_KEY);

async fn create(base: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
    post_json(&format!("{base}/v1/payment_links"), KEY, &body.to_string()).await
}

fn order(order_id: &str, amount: u64, currency: &str) -> Value {
    json!({"order_id": order_id, "amount": amount, "currency": currency})
}

fn error_of(body: &Value) -> (Option<&str>, Option<&str>) {
    (
        body["error"]["type"].as_str(),
        body["error"]["param"].as_str(),
    )
}

#[tokio::test]
async fn a_new_order_gets_a_pending_link_that_lives_a_day_by_default() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.payment_url();
    let (status, link) = create(&base, &order("A-1001", 1250, "CNY")).await?;
    assert_eq!(status, 201);
    let id = link["id"].as_str().unwrap_or_default();
    assert!(id.starts_with("plink_") && id.len() == 22, "{link}");
    assert_eq!(link["url"], format!("{base}/pay/{id}"));
    assert_eq!(link["order_id"], "A-1001");
    assert_eq!(link["amount"], 1250);
    assert_eq!(link["currency"], "CNY");
    assert_eq!(link["description"], Value::Null);
    assert_eq!(link["status"], "pending");
    assert!(link.get("paid_at").is_none());
    let lifetime = link["expires_at"].as_u64().zip(link["created_at"].as_u64());
    assert_eq!(lifetime.map(|(end, start)| end - start), Some(24 * 60 * 60));
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn creating_the_same_order_again_returns_the_existing_link_with_200() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.payment_url();
    let first = create(&base, &order("A-1", 500, "USD")).await?;
    let mut again = order("A-1", 500, "USD");
    again["description"] = json!("a retry may differ in description");
    let second = create(&base, &again).await?;
    assert_eq!((first.0, second.0), (201, 200));
    assert_eq!(first.1, second.1);
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_same_order_with_another_amount_or_currency_is_a_409_conflict() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.payment_url();
    assert_eq!(create(&base, &order("A-2", 500, "EUR")).await?.0, 201);
    for conflicting in [order("A-2", 501, "EUR"), order("A-2", 500, "RUB")] {
        let (status, body) = create(&base, &conflicting).await?;
        assert_eq!((status, error_of(&body).0), (409, Some("order_conflict")));
    }
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn invalid_fields_are_400s_naming_the_field() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.payment_url();
    let mut with_long_description = order("A-3", 1, "CNY");
    with_long_description["description"] = json!("x".repeat(201));
    for (body, param) in [
        (json!({"amount": 1, "currency": "CNY"}), "order_id"),
        (order("bad id!", 1, "CNY"), "order_id"),
        (order("A-3", 0, "CNY"), "amount"),
        (order("A-3", 100_000_001, "CNY"), "amount"),
        (
            json!({"order_id": "A-3", "amount": "100", "currency": "CNY"}),
            "amount",
        ),
        (order("A-3", 1, "GBP"), "currency"),
        (with_long_description, "description"),
        (
            json!({"order_id": "A-3", "amount": 1, "currency": "CNY", "expires_in_minutes": 10_081}),
            "expires_in_minutes",
        ),
    ] {
        let (status, reply) = create(&base, &body).await?;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            error_of(&reply),
            (Some("invalid_request"), Some(param)),
            "{body}"
        );
    }
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_a_400_without_a_param() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let url = format!("{}/v1/payment_links", sandbox.payment_url());
    for body in ["", "{", "[1,2]", "\"text\""] {
        let (status, reply) = post_json(&url, KEY, body).await?;
        assert_eq!(status, 400, "{body:?}");
        assert_eq!(
            error_of(&reply),
            (Some("invalid_request"), None),
            "{body:?}"
        );
    }
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_unauthorized_before_the_body_is_read() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.payment_url();
    for key in [None, Some("sk_wrong"), Some(crate::LOGISTICS_API_KEY)] {
        let create = post_json(&format!("{base}/v1/payment_links"), key, "not json").await?;
        let read = get_json(
            &format!("{base}/v1/payment_links/plink_0123456789abcdef"),
            key,
        )
        .await?;
        for (status, body) in [create, read] {
            assert_eq!(
                (status, error_of(&body).0),
                (401, Some("unauthorized")),
                "{key:?}"
            );
        }
    }
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_link_reads_back_by_id_and_an_unknown_id_is_not_found() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.payment_url();
    let (_, created) = create(&base, &order("A-4", 99, "RUB")).await?;
    let id = created["id"].as_str().unwrap_or_default();
    assert_eq!(
        get_json(&format!("{base}/v1/payment_links/{id}"), KEY).await?,
        (200, created.clone())
    );
    let (status, body) = get_json(&format!("{base}/v1/payment_links/plink_nope"), KEY).await?;
    assert_eq!((status, error_of(&body).0), (404, Some("not_found")));
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_pay_control_route_marks_a_link_paid_and_unknown_links_are_not_found()
-> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.payment_url();
    let (_, created) = create(&base, &order("A-5", 1_000, "CNY")).await?;
    let id = created["id"].as_str().unwrap_or_default();

    let (status, paid) = post_json(
        &format!("{base}/__sandbox/payment_links/{id}/pay"),
        None,
        "",
    )
    .await?;
    assert_eq!((status, paid["status"].as_str()), (200, Some("paid")));
    assert!(paid["paid_at"].as_u64().is_some(), "{paid}");
    let (_, read) = get_json(&format!("{base}/v1/payment_links/{id}"), KEY).await?;
    assert_eq!(read, paid);

    let (status, body) = post_json(
        &format!("{base}/__sandbox/payment_links/plink_nope/pay"),
        None,
        "",
    )
    .await?;
    assert_eq!((status, error_of(&body).0), (404, Some("not_found")));
    assert_eq!(
        sandbox.payment_requests(),
        2,
        "control routes are not counted"
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_checkout_page_shows_the_order_escaped_and_its_button_pays() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.payment_url();
    let mut body = order("A-6", 12_345, "EUR");
    body["description"] = json!("<script>alert(1)</script> Mug");
    let (_, created) = create(&base, &body).await?;
    let url = created["url"].as_str().unwrap_or_default().to_owned();

    let page = client()?.get(&url).send().await?;
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await?;
    assert!(
        html.contains("123.45 EUR") && html.contains("A-6"),
        "{html}"
    );
    assert!(
        html.contains("&lt;script&gt;") && !html.contains("<script>"),
        "{html}"
    );

    let after_paying = client()?.post(&url).send().await?;
    assert_eq!(
        after_paying.url().as_str(),
        url,
        "the button redirects back to the page"
    );
    assert!(after_paying.text().await?.contains("Status: paid"));

    let missing = client()?
        .get(format!("{base}/pay/plink_nope"))
        .send()
        .await?;
    assert_eq!(missing.status().as_u16(), 404);
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn paying_sends_one_signed_paid_event_with_the_metadata() -> anyhow::Result<()> {
    use crate::test_support::put_json;
    use hmac::{Hmac, Mac};

    let sandbox = start().await?;
    let receiver = crate::Subscriber::start(([127, 0, 0, 1], 0).into()).await?;
    let base = sandbox.payment_url();
    let target =
        json!({"url": format!("{}/v1/receive/payments", receiver.url()), "secret": "whsec_test"});
    assert_eq!(
        put_json(&format!("{base}/__sandbox/webhook"), &target.to_string())
            .await?
            .0,
        200
    );
    let mut body = order("A-7", 990, "CNY");
    body["metadata"] = json!({"ticket_id": "17"});
    let (_, link) = create(&base, &body).await?;
    let pay = format!(
        "{base}/__sandbox/payment_links/{}/pay",
        link["id"].as_str().unwrap_or_default()
    );
    assert_eq!(post_json(&pay, None, "").await?.0, 200);
    assert_eq!(
        post_json(&pay, None, "").await?.0,
        200,
        "paying again is no new event"
    );

    let received = receiver.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let event: Value = serde_json::from_slice(&received[0].body)?;
    assert_eq!(event["type"], "payment_link.paid");
    assert_eq!(event["data"]["object"]["metadata"]["ticket_id"], "17");
    assert_eq!(event["data"]["object"]["status"], "paid");
    let header = received[0]
        .headers
        .get("stripe-signature")
        .cloned()
        .unwrap_or_default();
    let (t, v1) = header
        .split_once(",v1=")
        .map(|(t, v1)| (t.trim_start_matches("t="), v1))
        .unwrap_or_default();
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(b"whsec_test")?;
    mac.update(format!("{t}.{}", String::from_utf8_lossy(&received[0].body)).as_bytes());
    assert_eq!(v1, hex::encode(mac.finalize().into_bytes()));
    receiver.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
