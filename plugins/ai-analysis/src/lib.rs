//! AI analysis: the sentiment and intents of a customer's message or of a call transcript,
//! and whether a supervisor should step in.
//!
//! `analyze` sends the text to the analysis service, keeps the intents it is sure enough of
//! as `labels`, and sets `escalate` when the customer is clearly upset or complaining. The
//! same text always gets the same answer, so the manifest lets the host cache it.

use switchboard_sdk::{
    Connector, Context, Deserialize, Error, JsonSchema, Operation, Serialize, config,
    export_connector, http,
};

/// The most characters the service analyzes per request, over the text or all lines.
const MAX_CHARS: usize = 20_000;
/// The confidence from which an intent becomes a label.
const LABEL_CONFIDENCE: f64 = 0.5;
/// The sentiment score at or below which a conversation is escalated.
const ESCALATE_SCORE: f64 = -0.5;
/// The intent that is escalated whatever the sentiment.
const COMPLAINT: &str = "complaint";

struct AiAnalysis;

impl Connector for AiAnalysis {
    const NAME: &'static str = "ai-analysis";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Analyzes the sentiment and intents of a customer's \
        message or a call transcript (Chinese, English, Russian) and says whether to escalate.";

    fn operations() -> Vec<Operation> {
        vec![
            Operation::new(
                "analyze",
                "Returns the sentiment and intents of a text or transcript and whether to escalate.",
                analyze,
            )
            .idempotent(),
        ]
    }
}

export_connector!(AiAnalysis);

/// What to analyze: exactly one of `text` and `transcript`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AnalyzeInput {
    /// A customer's message, such as an IM or SMS text; at most 20,000 characters.
    #[serde(default)]
    text: Option<String>,
    /// A conversation, line by line; the customer's lines weigh more than the agent's.
    /// At most 20,000 characters over all lines.
    #[serde(default)]
    transcript: Option<Vec<Line>>,
    /// The language, when the caller knows it; detected otherwise.
    #[serde(default)]
    language: Option<Language>,
}

/// One line of a transcript.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Line {
    /// Who spoke.
    speaker: Speaker,
    /// What they said.
    text: String,
}

/// Who spoke a transcript line.
#[derive(Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Speaker {
    // No doc comments on the variants: with them the schema becomes a `oneOf`.
    Agent,
    Customer,
}

/// A language the service reads: Chinese, English or Russian.
#[derive(Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Language {
    Zh,
    En,
    Ru,
}

/// How positive or negative the customer is.
#[derive(Serialize, Deserialize, JsonSchema)]
struct Sentiment {
    /// `positive`, `neutral` or `negative`.
    label: String,
    /// From -1.0 (angry) to 1.0 (delighted).
    score: f64,
}

/// Something the customer wants.
#[derive(Serialize, Deserialize, JsonSchema)]
struct Intent {
    /// Such as `refund`, `complaint`, `track_parcel`, `payment`, `cancel_order`.
    label: String,
    /// From 0.0 to 1.0.
    confidence: f64,
}

/// The analysis of a text or transcript.
#[derive(Serialize, JsonSchema)]
struct Analysis {
    /// The customer's mood.
    sentiment: Sentiment,
    /// Every intent found, surest first.
    intents: Vec<Intent>,
    /// The labels of the intents with a confidence of at least 0.5, surest first.
    labels: Vec<String>,
    /// Whether to bring in a supervisor: the score is -0.5 or lower, or `complaint` is
    /// among `labels`.
    escalate: bool,
    /// `zh`, `en` or `ru`: the language given, or the one the service detected.
    language: String,
}

/// The service's request.
#[derive(Serialize)]
struct ProviderRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transcript: Option<&'a [Line]>,
    tasks: [&'static str; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<Language>,
}

/// The service's reply when both tasks were asked for.
#[derive(Deserialize)]
struct ProviderAnalysis {
    sentiment: Sentiment,
    intents: Vec<Intent>,
    language: String,
}

/// The service's error body: `{"error": {"type", "message", "param"?}}`.
#[derive(Deserialize)]
struct ProviderError {
    error: ProviderErrorDetail,
}

#[derive(Deserialize)]
struct ProviderErrorDetail {
    #[serde(default)]
    message: String,
    #[serde(default)]
    param: Option<String>,
}

fn analyze(_ctx: &Context, input: AnalyzeInput) -> Result<Analysis, Error> {
    let request = provider_request(&input)?;
    let base_url = config::require("base_url")?;
    let response = http::post(format!("{}/v1/analyze", base_url.trim_end_matches('/')))
        .bearer(&config::require_secret("api_key")?)
        .json(&request)?
        .send()?;
    if !response.is_success() {
        return Err(failure(&response));
    }
    Ok(response.json::<ProviderAnalysis>()?.into())
}

/// The service's request for `input`, refused before any call when the service would
/// refuse it.
fn provider_request(input: &AnalyzeInput) -> Result<ProviderRequest<'_>, Error> {
    let (text, transcript, chars) = match (&input.text, &input.transcript) {
        (Some(text), None) if !text.trim().is_empty() => {
            (Some(text.as_str()), None, text.chars().count())
        }
        (None, Some(lines)) if lines.iter().any(|line| !line.text.trim().is_empty()) => {
            let chars = lines.iter().map(|line| line.text.chars().count()).sum();
            (None, Some(lines.as_slice()), chars)
        }
        (Some(_), Some(_)) | (None, None) => {
            return Err(Error::invalid_input(
                "give exactly one of `text` and `transcript`",
            ));
        }
        _ => {
            return Err(Error::invalid_input(
                "the `text` or `transcript` to analyze is empty",
            ));
        }
    };
    if chars > MAX_CHARS {
        return Err(too_long(&format!(
            "the text has {chars} characters; at most {MAX_CHARS} are analyzed per request"
        )));
    }
    Ok(ProviderRequest {
        text,
        transcript,
        tasks: ["sentiment", "intent"],
        language: input.language,
    })
}

impl From<ProviderAnalysis> for Analysis {
    fn from(reply: ProviderAnalysis) -> Self {
        let labels: Vec<String> = reply
            .intents
            .iter()
            .filter(|intent| intent.confidence >= LABEL_CONFIDENCE)
            .map(|intent| intent.label.clone())
            .collect();
        let escalate = reply.sentiment.score <= ESCALATE_SCORE
            || labels.iter().any(|label| label == COMPLAINT);
        Self {
            sentiment: reply.sentiment,
            intents: reply.intents,
            labels,
            escalate,
            language: reply.language,
        }
    }
}

/// The service's failure as a connector error.
fn failure(response: &http::Response) -> Error {
    let detail = response.json::<ProviderError>().ok().map(|body| body.error);
    match (response.status, detail) {
        (401 | 403, _) => Error::new(
            "authentication_failed",
            format!(
                "the analysis service refused the API key (secret `api_key`) with HTTP {}",
                response.status
            ),
        ),
        (413, detail) => too_long(&detail.map_or_else(
            || "the analysis service refused the text as too long".to_owned(),
            |detail| detail.message,
        )),
        (400, Some(detail)) => Error::invalid_input(match detail.param {
            Some(param) => format!("{} (parameter `{param}`)", detail.message),
            None => detail.message,
        }),
        (status, _) => Error::upstream_status(status, &response.body),
    }
}

fn too_long(message: &str) -> Error {
    Error::new("text_too_long", message)
}
