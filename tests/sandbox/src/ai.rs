//! The fake AI analysis service: sentiment and intents of a customer's text or of a call
//! transcript, in Chinese, English and Russian, so a contact center can warn an agent about an
//! angry customer and route by what they want.
//!
//! API (`Authorization: Bearer sk_sandbox_ai`, else HTTP 401 `unauthorized`); errors have the
//! shared shape `{"error":{"type","message","param"?}}`:
//! - `POST /v1/analyze` `{"text"?: string, "transcript"?: [{"speaker": "agent"|"customer",
//!   "text"}], "tasks"?: ["sentiment", "intent"], "language"?: "zh"|"en"|"ru"}` with exactly
//!   one of `text` and `transcript` → `{"sentiment"?: {"label": "positive"|"neutral"|
//!   "negative", "score": -1.0..1.0}, "intents"?: [{"label", "confidence"}], "language",
//!   "model": "sandbox-lexicon-1"}`; `sentiment` and `intents` are there when their task was
//!   asked for (both by default); `language` is the one given, else the one detected.
//! - 400 `invalid_request` (with `param` when one field is at fault) for a body that is not a
//!   JSON object, an unknown field, both or neither of `text` and `transcript`, a blank text,
//!   an empty or malformed transcript, an empty or unknown task, an unknown language; 413
//!   `text_too_long` past 20,000 characters (over all transcript lines).
//!
//! The scoring is [`lexicon`]; the checks are [`request`]. The service keeps no state and has
//! no control routes beyond the shared ones.

mod lexicon;
mod request;

use axum::{
    Json, Router, body::Bytes, extract::rejection::BytesRejection, http::HeaderMap, routing::post,
};
use serde::Serialize;

use crate::AI_API_KEY;
use crate::auth::require_bearer;
use crate::error::ApiError;
use crate::upstream::parse_json_body;
use lexicon::{Intent, Sentiment};
use request::{Language, Request};

/// The name of the "model" that answers.
const MODEL: &str = "sandbox-lexicon-1";

/// The provider's routes; faults, counting and the shared control routes are added by
/// `upstream`.
pub(crate) fn routes() -> Router {
    Router::new().route("/v1/analyze", post(analyze))
}

/// The reply of `POST /v1/analyze`.
#[derive(Debug, Serialize)]
struct Analysis {
    #[serde(skip_serializing_if = "Option::is_none")]
    sentiment: Option<Sentiment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    intents: Option<Vec<Intent>>,
    language: Language,
    model: &'static str,
}

async fn analyze(
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Analysis>, ApiError> {
    require_bearer(&headers, AI_API_KEY)?;
    let request = Request::parse(parse_json_body(body)?)?;
    let lines = &request.lines;
    Ok(Json(Analysis {
        sentiment: request.tasks.sentiment.then(|| lexicon::sentiment(lines)),
        intents: request.tasks.intent.then(|| lexicon::intents(lines)),
        language: request.language.unwrap_or_else(|| lexicon::language(lines)),
        model: MODEL,
    }))
}

#[cfg(test)]
mod tests;
