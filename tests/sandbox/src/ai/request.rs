//! The body of `POST /v1/analyze` and its checks: exactly one of a text or a transcript,
//! the tasks to run and an optional language.
//!
//! This module owns turning the JSON into a checked [`Request`]; scoring lives in `lexicon`.

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// The most characters a request may analyze, over the text or all transcript lines.
pub(crate) const MAX_CHARS: usize = 20_000;

const FIELDS: [&str; 4] = ["text", "transcript", "tasks", "language"];

/// A language the service reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Language {
    Zh,
    En,
    Ru,
}

impl Language {
    fn parse(code: &str) -> Option<Self> {
        match code {
            "zh" => Some(Self::Zh),
            "en" => Some(Self::En),
            "ru" => Some(Self::Ru),
            _ => None,
        }
    }
}

/// Who said a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Speaker {
    Agent,
    Customer,
}

/// One transcript line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    pub(crate) speaker: Speaker,
    pub(crate) text: String,
}

/// Which analyses to run; both unless the request names some.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tasks {
    pub(crate) sentiment: bool,
    pub(crate) intent: bool,
}

/// A request whose every field has been checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    /// What was said; a plain text is one customer line.
    pub(crate) lines: Vec<Line>,
    pub(crate) tasks: Tasks,
    /// The caller's word for the language, if given.
    pub(crate) language: Option<Language>,
}

impl Request {
    /// Checks a request body: a 400 `invalid_request` naming the field at fault, or a 413
    /// `text_too_long` past [`MAX_CHARS`].
    pub(crate) fn parse(body: Value) -> Result<Self, ApiError> {
        let Value::Object(fields) = body else {
            return Err(ApiError::invalid_request(
                "the request body must be a JSON object",
            ));
        };
        if let Some(unknown) = fields.keys().find(|key| !FIELDS.contains(&key.as_str())) {
            return Err(ApiError::invalid_param(
                unknown,
                format!(
                    "unknown parameter {unknown:?}; known: {}",
                    FIELDS.join(", ")
                ),
            ));
        }
        let lines = match (given(&fields, "text"), given(&fields, "transcript")) {
            (Some(text), None) => vec![Line {
                speaker: Speaker::Customer,
                text: text_of(text)?,
            }],
            (None, Some(transcript)) => transcript_of(transcript)?,
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_request(
                    "give either text or transcript, not both",
                ));
            }
            (None, None) => {
                return Err(ApiError::invalid_request(
                    "give the text to analyze as text or transcript",
                ));
            }
        };
        check_length(&lines)?;
        Ok(Self {
            lines,
            tasks: given(&fields, "tasks").map_or(Ok(Tasks::BOTH), tasks_of)?,
            language: given(&fields, "language").map(language_of).transpose()?,
        })
    }
}

impl Tasks {
    const BOTH: Tasks = Tasks {
        sentiment: true,
        intent: true,
    };
}

/// A field that is absent or `null` is not given.
fn given<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|value| !value.is_null())
}

fn text_of(value: &Value) -> Result<String, ApiError> {
    value
        .as_str()
        .filter(|text| !text.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ApiError::invalid_param("text", "text must be a non-blank string"))
}

fn transcript_of(value: &Value) -> Result<Vec<Line>, ApiError> {
    let invalid = || {
        ApiError::invalid_param(
            "transcript",
            "transcript must be a non-empty array of {\"speaker\": \"agent\"|\"customer\", \
             \"text\": string} with some non-blank text",
        )
    };
    let lines = value
        .as_array()
        .ok_or_else(invalid)?
        .iter()
        .map(|line| line_of(line).ok_or_else(invalid))
        .collect::<Result<Vec<Line>, ApiError>>()?;
    if lines.iter().all(|line| line.text.trim().is_empty()) {
        return Err(invalid());
    }
    Ok(lines)
}

fn line_of(value: &Value) -> Option<Line> {
    let fields = value.as_object()?;
    if fields.keys().any(|key| key != "speaker" && key != "text") {
        return None;
    }
    let speaker = match fields.get("speaker")?.as_str()? {
        "agent" => Speaker::Agent,
        "customer" => Speaker::Customer,
        _ => return None,
    };
    let text = fields.get("text")?.as_str()?.to_owned();
    Some(Line { speaker, text })
}

fn check_length(lines: &[Line]) -> Result<(), ApiError> {
    let chars: usize = lines.iter().map(|line| line.text.chars().count()).sum();
    if chars > MAX_CHARS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "text_too_long",
            format!(
                "the text has {chars} characters; at most {MAX_CHARS} are analyzed per request"
            ),
        ));
    }
    Ok(())
}

fn tasks_of(value: &Value) -> Result<Tasks, ApiError> {
    let invalid = |detail: String| ApiError::invalid_param("tasks", detail);
    let names = value
        .as_array()
        .filter(|names| !names.is_empty())
        .ok_or_else(|| invalid("tasks must be a non-empty array of task names".into()))?;
    let mut tasks = Tasks {
        sentiment: false,
        intent: false,
    };
    for name in names {
        match name.as_str() {
            Some("sentiment") => tasks.sentiment = true,
            Some("intent") => tasks.intent = true,
            _ => {
                return Err(invalid(format!(
                    "unknown task {name}; known: sentiment, intent"
                )));
            }
        }
    }
    Ok(tasks)
}

fn language_of(value: &Value) -> Result<Language, ApiError> {
    value
        .as_str()
        .and_then(Language::parse)
        .ok_or_else(|| ApiError::invalid_param("language", "language must be one of zh, en, ru"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refusal(body: Value) -> Option<(u16, &'static str, Option<String>)> {
        Request::parse(body).err().map(|error| {
            (
                error.status().as_u16(),
                error.kind(),
                error.param().map(str::to_owned),
            )
        })
    }

    #[test]
    fn a_text_is_one_customer_line_and_both_tasks_run_by_default() -> anyhow::Result<()> {
        let request = Request::parse(json!({"text": "hi", "language": null}))?;
        assert_eq!(
            request.lines,
            [Line {
                speaker: Speaker::Customer,
                text: "hi".into()
            }]
        );
        assert_eq!(request.tasks, Tasks::BOTH);
        assert_eq!(request.language, None);
        let request = Request::parse(json!({"text": "hi", "tasks": ["intent"], "language": "ru"}))?;
        assert_eq!(
            (request.tasks.sentiment, request.tasks.intent),
            (false, true)
        );
        assert_eq!(request.language, Some(Language::Ru));
        Ok(())
    }

    #[test]
    fn each_refused_field_is_named() {
        let bad_line = json!([{"speaker": "bot", "text": "x"}]);
        for (body, param) in [
            (json!({"text": ""}), Some("text")),
            (json!({"text": 5}), Some("text")),
            (json!({"transcript": []}), Some("transcript")),
            (json!({"transcript": bad_line}), Some("transcript")),
            (
                json!({"transcript": [{"speaker": "agent", "text": " "}]}),
                Some("transcript"),
            ),
            (json!({"text": "x", "tasks": []}), Some("tasks")),
            (json!({"text": "x", "tasks": ["summary"]}), Some("tasks")),
            (json!({"text": "x", "language": "de"}), Some("language")),
            (json!({"text": "x", "mood": 1}), Some("mood")),
            (json!({"text": "x", "transcript": []}), None),
            (json!({}), None),
            (json!("text"), None),
        ] {
            assert_eq!(
                refusal(body.clone()),
                Some((400, "invalid_request", param.map(str::to_owned))),
                "{body}"
            );
        }
    }

    #[test]
    fn the_length_limit_counts_characters_over_all_lines() {
        let at_limit = "字".repeat(MAX_CHARS);
        assert_eq!(refusal(json!({"text": at_limit})), None);
        let half = "a".repeat(MAX_CHARS / 2);
        let transcript = json!([
            {"speaker": "agent", "text": half},
            {"speaker": "customer", "text": format!("{half}!")},
        ]);
        assert_eq!(
            refusal(json!({"transcript": transcript})),
            Some((413, "text_too_long", None))
        );
    }
}
