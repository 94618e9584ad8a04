//! The AI analysis service driven over HTTP, as a connector would.

use serde_json::{Value, json};

use crate::test_support::{post_json, start};
use crate::{AI_API_KEY, Provider, Sandbox};

const KEY: Option<&str> = Some(AI_API_KEY);

async fn analyze(sandbox: &Sandbox, body: &Value) -> anyhow::Result<(u16, Value)> {
    analyze_raw(sandbox, KEY, &body.to_string()).await
}

async fn analyze_raw(
    sandbox: &Sandbox,
    key: Option<&str>,
    body: &str,
) -> anyhow::Result<(u16, Value)> {
    let url = format!("{}/v1/analyze", sandbox.url(Provider::Ai));
    post_json(&url, key, body).await
}

fn error_of(body: &Value) -> (Option<&str>, Option<&str>) {
    (
        body["error"]["type"].as_str(),
        body["error"]["param"].as_str(),
    )
}

fn intent_labels(reply: &Value) -> Vec<&str> {
    reply["intents"]
        .as_array()
        .map(|intents| {
            intents
                .iter()
                .filter_map(|intent| intent["label"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_lexicon_reads_chinese_english_and_russian() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let (status, reply) = analyze(
        &sandbox,
        &json!({"text": "快递三天了还没到，我要退款，太生气了！"}),
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(
        reply,
        json!({
            "sentiment": {"label": "negative", "score": -0.5},
            "intents": [
                {"label": "refund", "confidence": 0.5},
                {"label": "track_parcel", "confidence": 0.5},
            ],
            "language": "zh",
            "model": "sandbox-lexicon-1",
        })
    );
    for (text, language, label, intents) in [
        (
            "I want to file a complaint, this is terrible",
            "en",
            "negative",
            vec!["complaint"],
        ),
        ("How do I pay? Thanks!", "en", "positive", vec!["payment"]),
        (
            "Где моя посылка? Спасибо",
            "ru",
            "positive",
            vec!["track_parcel"],
        ),
        (
            "Это ужасно, хочу возврат и оплату отменить",
            "ru",
            "negative",
            vec!["cancel_order", "payment", "refund"],
        ),
        ("我想付款，谢谢", "zh", "positive", vec!["payment"]),
        ("投诉！", "zh", "neutral", vec!["complaint"]),
        ("hello", "en", "neutral", vec![]),
    ] {
        let (status, reply) = analyze(&sandbox, &json!({"text": text})).await?;
        assert_eq!(status, 200, "{text}");
        assert_eq!(reply["language"], language, "{text}");
        assert_eq!(reply["sentiment"]["label"], label, "{text}");
        assert_eq!(intent_labels(&reply), intents, "{text}");
    }
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_transcript_weighs_the_customer_over_the_agent() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let transcript = json!([
        {"speaker": "agent", "text": "您好，感谢来电，谢谢您的耐心"},
        {"speaker": "customer", "text": "我的包裹丢了，太差了"},
        {"speaker": "agent", "text": "我帮您查一下物流"},
    ]);
    let (status, reply) = analyze(&sandbox, &json!({"transcript": transcript})).await?;
    assert_eq!(status, 200);
    assert_eq!(
        reply["sentiment"],
        json!({"label": "negative", "score": -0.33})
    );
    assert_eq!(
        reply["intents"],
        json!([{"label": "track_parcel", "confidence": 0.58}])
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn only_the_tasks_asked_for_are_answered_and_a_given_language_is_kept() -> anyhow::Result<()>
{
    let sandbox = start().await?;
    let (_, intents_only) = analyze(
        &sandbox,
        &json!({"text": "refund please", "tasks": ["intent"], "language": "ru"}),
    )
    .await?;
    assert_eq!(
        intents_only,
        json!({
            "intents": [{"label": "refund", "confidence": 0.5}],
            "language": "ru",
            "model": "sandbox-lexicon-1",
        })
    );
    let (_, sentiment_only) =
        analyze(&sandbox, &json!({"text": "great", "tasks": ["sentiment"]})).await?;
    assert!(sentiment_only.get("intents").is_none(), "{sentiment_only}");
    assert_eq!(sentiment_only["sentiment"]["score"], 0.33);
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn malformed_requests_are_400s() -> anyhow::Result<()> {
    let sandbox = start().await?;
    for (body, param) in [
        (json!({}), None),
        (
            json!({"text": "a", "transcript": [{"speaker": "customer", "text": "b"}]}),
            None,
        ),
        (json!({"text": "  "}), Some("text")),
        (json!({"transcript": []}), Some("transcript")),
        (
            json!({"transcript": [{"speaker": "robot", "text": "hi"}]}),
            Some("transcript"),
        ),
        (json!({"text": "hi", "tasks": ["summary"]}), Some("tasks")),
        (json!({"text": "hi", "language": "fr"}), Some("language")),
        (json!({"text": "hi", "model": "gpt"}), Some("model")),
    ] {
        let (status, reply) = analyze(&sandbox, &body).await?;
        assert_eq!(
            (status, error_of(&reply)),
            (400, (Some("invalid_request"), param)),
            "{body}"
        );
    }
    let (status, reply) = analyze_raw(&sandbox, KEY, "not json").await?;
    assert_eq!((status, error_of(&reply).0), (400, Some("invalid_request")));
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn more_than_20000_characters_is_a_413() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let (status, _) = analyze(&sandbox, &json!({"text": "字".repeat(20_000)})).await?;
    assert_eq!(status, 200);
    for text in ["字".repeat(20_001), "a".repeat(20_001)] {
        let (status, reply) = analyze(&sandbox, &json!({"text": text})).await?;
        assert_eq!((status, error_of(&reply).0), (413, Some("text_too_long")));
    }
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_key_is_required() -> anyhow::Result<()> {
    let sandbox = start().await?;
    for key in [None, Some("sk_wrong")] {
        let (status, reply) = analyze_raw(&sandbox, key, r#"{"text":"hi"}"#).await?;
        assert_eq!((status, error_of(&reply).0), (401, Some("unauthorized")));
    }
    sandbox.shutdown().await;
    Ok(())
}
