//! The CRM driven over HTTP, as a connector and a test playing the back office would.

use serde_json::{Value, json};

use crate::test_support::{get_json, post_json, start};
use crate::{CRM_API_KEY, Provider, Sandbox};

const KEY: Option<&str> = Some(CRM_API_KEY);

async fn get(sandbox: &Sandbox, path: &str) -> anyhow::Result<(u16, Value)> {
    get_json(&format!("{}{path}", sandbox.url(Provider::Crm)), KEY).await
}

fn error_of(body: &Value) -> (Option<&str>, Option<&str>) {
    (
        body["error"]["type"].as_str(),
        body["error"]["param"].as_str(),
    )
}

fn ids(list: &Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item["id"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_caller_is_found_however_the_number_is_written() -> anyhow::Result<()> {
    let sandbox = start().await?;
    for written in [
        "%2B8613800138000",
        "%2B86%20138-0013-8000",
        "0086%20138%200013%208000",
        "138-0013-8000",
        "13800138000",
        "8613800138000",
    ] {
        let (status, found) = get(&sandbox, &format!("/v1/customers?phone={written}")).await?;
        assert_eq!((status, ids(&found)), (200, vec!["cus_1001"]), "{written}");
    }
    let (_, found) = get(&sandbox, "/v1/customers?phone=13800138000").await?;
    assert_eq!(
        found["data"][0],
        json!({
            "id": "cus_1001",
            "name": "王芳 (Wang Fang)",
            "phone": "+8613800138000",
            "email": "wang.fang@example.cn",
            "tier": "vip",
            "tags": ["vip", "repeat-buyer"],
            "created_at": 1_672_531_200,
        })
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_unknown_number_finds_nobody_and_a_malformed_one_is_a_400() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let (status, found) = get(&sandbox, "/v1/customers?phone=13700000000").await?;
    assert_eq!((status, found), (200, json!({"data": []})));
    for query in ["?phone=call-me-maybe", "?phone=123", "?phone=", ""] {
        let (status, body) = get(&sandbox, &format!("/v1/customers{query}")).await?;
        assert_eq!(
            (status, error_of(&body)),
            (400, (Some("invalid_request"), Some("phone"))),
            "{query:?}"
        );
    }
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_customer_is_read_by_id_and_an_unknown_id_is_a_404() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let (status, customer) = get(&sandbox, "/v1/customers/cus_1005").await?;
    assert_eq!((status, customer["email"].clone()), (200, Value::Null));
    assert_eq!(customer["phone"], "+861012345678");
    for path in [
        "/v1/customers/cus_9999",
        "/v1/customers/cus_9999/orders",
        "/v1/customers/cus_9999/tickets",
    ] {
        let (status, body) = get(&sandbox, path).await?;
        assert_eq!(
            (status, error_of(&body).0),
            (404, Some("not_found")),
            "{path}"
        );
    }
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn orders_come_newest_first_up_to_the_limit() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let (status, orders) = get(&sandbox, "/v1/customers/cus_1001/orders").await?;
    assert_eq!(
        (status, ids(&orders)),
        (200, vec!["ORD-1003", "ORD-1002", "ORD-1001"])
    );
    assert_eq!(
        orders["data"][2],
        json!({
            "id": "ORD-1001",
            "status": "delivered",
            "total": "299.00",
            "currency": "CNY",
            "created_at": 1_717_200_000,
            "items": [{"sku": "SKU-KETTLE-01", "name": "电热水壶 Electric kettle", "qty": 1}],
        })
    );
    let (_, two) = get(&sandbox, "/v1/customers/cus_1001/orders?limit=2").await?;
    assert_eq!(ids(&two), ["ORD-1003", "ORD-1002"]);
    let (_, fifty) = get(&sandbox, "/v1/customers/cus_1001/orders?limit=50").await?;
    assert_eq!(ids(&fifty).len(), 3);
    let (status, none) = get(&sandbox, "/v1/customers/cus_1002/orders").await?;
    assert_eq!((status, none), (200, json!({"data": []})));
    for limit in ["0", "51", "-1", "five"] {
        let (status, body) = get(
            &sandbox,
            &format!("/v1/customers/cus_1001/orders?limit={limit}"),
        )
        .await?;
        assert_eq!(
            (status, error_of(&body)),
            (400, (Some("invalid_request"), Some("limit"))),
            "{limit}"
        );
    }
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn tickets_filter_by_status() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let path = "/v1/customers/cus_1001/tickets";
    let (status, open) = get(&sandbox, &format!("{path}?status=open")).await?;
    assert_eq!((status, ids(&open)), (200, vec!["TCK-5001"]));
    assert_eq!(open["data"][0]["status"], "open");
    assert_eq!(open["data"][0]["updated_at"], 1_720_000_000);
    let (_, closed) = get(&sandbox, &format!("{path}?status=closed")).await?;
    assert_eq!(ids(&closed), ["TCK-4990"]);
    for query in ["", "?status=all"] {
        let (_, all) = get(&sandbox, &format!("{path}{query}")).await?;
        assert_eq!(ids(&all), ["TCK-5001", "TCK-4990"], "{query:?}");
    }
    let (status, body) = get(&sandbox, &format!("{path}?status=pending")).await?;
    assert_eq!(
        (status, error_of(&body)),
        (400, (Some("invalid_request"), Some("status")))
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn every_api_route_needs_the_key() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.url(Provider::Crm);
    for path in [
        "/v1/customers?phone=13800138000",
        "/v1/customers/cus_1001",
        "/v1/customers/cus_1001/orders",
        "/v1/customers/cus_1001/tickets",
    ] {
        for key in [None, Some("sk_wrong")] {
            let (status, body) = get_json(&format!("{base}{path}"), key).await?;
            assert_eq!(
                (status, error_of(&body).0),
                (401, Some("unauthorized")),
                "{path} {key:?}"
            );
        }
    }
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_customer_added_by_a_test_is_found_by_phone_with_their_orders() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let control = format!("{}/__sandbox/crm/customers", sandbox.url(Provider::Crm));
    let new = json!({
        "id": "cus_test",
        "name": "Олег",
        "phone": "+7 999 000-11-22",
        "tags": ["vip"],
        "tier": "vip",
        "orders": [{"id": "ORD-9", "status": "shipped", "total": "10.00", "currency": "RUB",
                    "created_at": 7, "items": [{"sku": "S", "name": "Tea", "qty": 1}]}],
        "tickets": [{"id": "TCK-9", "subject": "Where is it?", "status": "open"}],
    });
    let (status, added) = post_json(&control, None, &new.to_string()).await?;
    assert_eq!(
        (status, added["phone"].as_str()),
        (201, Some("+79990001122"))
    );
    assert_eq!(added["email"], Value::Null);
    assert!(added["tickets"][0]["updated_at"].as_u64() > Some(1_700_000_000));

    let (_, found) = get(&sandbox, "/v1/customers?phone=%2B79990001122").await?;
    assert_eq!(ids(&found), ["cus_test"]);
    let (_, orders) = get(&sandbox, "/v1/customers/cus_test/orders").await?;
    assert_eq!(ids(&orders), ["ORD-9"]);

    let (status, everyone) = get_json(&control, None).await?;
    assert_eq!(
        (status, ids(&everyone).len(), ids(&everyone).last().copied()),
        (200, 6, Some("cus_test"))
    );
    let (status, body) = post_json(&control, None, &new.to_string()).await?;
    assert_eq!((status, error_of(&body).0), (409, Some("customer_exists")));
    for (body, param) in [
        (json!({"name": "X", "phone": "nope"}), Some("phone")),
        (json!({"name": " ", "phone": "13700000001"}), Some("name")),
        (json!({"name": "X"}), None),
        (json!({"name": "X", "phone": "13700000001", "age": 3}), None),
    ] {
        let (status, reply) = post_json(&control, None, &body.to_string()).await?;
        assert_eq!(
            (status, error_of(&reply)),
            (400, (Some("invalid_request"), param)),
            "{body}"
        );
    }
    sandbox.shutdown().await;
    Ok(())
}
