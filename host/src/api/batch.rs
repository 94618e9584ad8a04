//! `POST /v1/batch`: several calls in one request.
//!
//! `{"calls": [{"connector", "operation", "input", "context"?}, ...]}`, at
//! most [`MAX_BATCH_CALLS`]. The calls run concurrently (at most
//! [`BATCH_CONCURRENCY`] at once), each through the whole pipeline with its
//! own limits, and the answer lists one result per call in the order sent:
//! `{"status": 200, "version", "output"}` or `{"status", "error": {"code",
//! "message", "retryable"?}}`. The request itself succeeds (200) whenever it
//! is well formed; each call's outcome is in its result.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use axum::Extension;

use super::invoke::{Call, ContextFields, body_error, caller_context, run};
use super::{ApiError, AppState};
use crate::auth::Caller;

/// Most calls one batch may hold.
pub const MAX_BATCH_CALLS: usize = 100;

/// Most calls of one batch running at once.
pub const BATCH_CONCURRENCY: usize = 16;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    calls: Vec<BatchCall>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchCall {
    connector: String,
    operation: String,
    input: Value,
    #[serde(default)]
    context: ContextFields,
}

const BATCH_SHAPE: &str =
    r#"{"calls": [{"connector": "...", "operation": "...", "input": {...}, "context": {...}}]}"#;

/// Runs a batch.
pub async fn batch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(body_error)?;
    let batch: Batch = serde_json::from_slice(&body).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("send {BATCH_SHAPE}: {err}"),
        )
    })?;
    if batch.calls.is_empty() || batch.calls.len() > MAX_BATCH_CALLS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_batch",
            format!(
                "a batch holds 1 to {MAX_BATCH_CALLS} calls; this one holds {}",
                batch.calls.len()
            ),
        ));
    }
    let base = caller_context(&headers, &caller)?;
    let results: Vec<Value> = futures::stream::iter(batch.calls)
        .map(|call| {
            let (state, caller, mut context) = (&state, &caller, base.clone());
            async move {
                let outcome = match call.context.apply(&mut context, caller) {
                    Ok(()) => {
                        let input = call.input.to_string();
                        let one = Call {
                            caller,
                            connector: &call.connector,
                            operation: &call.operation,
                            context,
                            input: input.as_bytes(),
                        };
                        run(state, one, false).await
                    }
                    Err(err) => Err(err),
                };
                result_json(outcome)
            }
        })
        .buffered(BATCH_CONCURRENCY)
        .collect()
        .await;
    Ok(Json(json!({ "results": results })))
}

fn result_json(outcome: Result<crate::invoke::InvokeOutput, ApiError>) -> Value {
    match outcome {
        Ok(output) => {
            let value: Value = serde_json::from_str(&output.output).unwrap_or(Value::Null);
            json!({ "status": 200, "version": output.version.to_string(), "output": value })
        }
        Err(err) => {
            let mut error = json!({ "code": err.code, "message": err.message });
            if let Some(retryable) = err.retryable {
                error["retryable"] = json!(retryable);
            }
            json!({ "status": err.status.as_u16(), "error": error })
        }
    }
}
