//! How Ringostat puts a webhook on the wire: a JSON body (the default), a form, or the URL's
//! query string, with the integration's secret key appended to the URL as `key`; and the
//! `calldate` format.

use reqwest::RequestBuilder;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::webhook;

/// How a call's webhooks carry their parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Encoding {
    /// `POST` with a JSON object (`application/json`).
    #[default]
    Json,
    /// `POST` with `application/x-www-form-urlencoded`.
    Form,
    /// `GET` with every parameter in the query string.
    Query,
}

/// The request delivering `params` to `url`, with `key=<secret>` added to its query string
/// when a secret is set.
pub(crate) fn request(
    url: &str,
    secret: Option<&str>,
    encoding: Encoding,
    params: &[(&'static str, Value)],
) -> RequestBuilder {
    let client = webhook::client();
    let keyed = |builder: RequestBuilder| match secret {
        Some(secret) => builder.query(&[("key", secret)]),
        None => builder,
    };
    match encoding {
        Encoding::Json => keyed(client.post(url)).json(&object(params)),
        Encoding::Form => keyed(client.post(url)).form(&texts(params)),
        Encoding::Query => keyed(client.get(url)).query(&texts(params)),
    }
}

fn object(params: &[(&'static str, Value)]) -> Map<String, Value> {
    params
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect()
}

fn texts(params: &[(&'static str, Value)]) -> Vec<(&'static str, String)> {
    params
        .iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (*name, text)
        })
        .collect()
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, as Ringostat writes `calldate`.
pub(crate) fn calldate(unix_s: u64) -> String {
    let (days, of_day) = (unix_s / 86_400, unix_s % 86_400);
    let (year, month, day) = crate::clock::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn calldate_is_utc_in_ringostats_format() {
        assert_eq!(calldate(0), "1970-01-01 00:00:00");
        assert_eq!(calldate(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(calldate(1_709_251_199), "2024-02-29 23:59:59");
        assert_eq!(calldate(1_735_689_600), "2025-01-01 00:00:00");
    }

    #[test]
    fn the_key_goes_into_the_query_string_whatever_the_encoding() -> anyhow::Result<()> {
        let params = [("event", json!("call_initiated")), ("step", json!(2))];
        let json_request =
            request("http://h/in?a=1", Some("k+1"), Encoding::Json, &params).build()?;
        assert_eq!(json_request.url().as_str(), "http://h/in?a=1&key=k%2B1");
        assert_eq!(json_request.method(), "POST");
        let body = json_request
            .body()
            .and_then(|b| b.as_bytes())
            .unwrap_or_default();
        assert_eq!(
            serde_json::from_slice::<Value>(body)?,
            json!({"event": "call_initiated", "step": 2})
        );
        let form = request("http://h/in", Some("k"), Encoding::Form, &params).build()?;
        let body = form.body().and_then(|b| b.as_bytes()).unwrap_or_default();
        assert_eq!(body, b"event=call_initiated&step=2");
        let query = request("http://h/in", None, Encoding::Query, &params).build()?;
        assert_eq!(query.method(), "GET");
        assert_eq!(
            query.url().as_str(),
            "http://h/in?event=call_initiated&step=2"
        );
        Ok(())
    }
}
