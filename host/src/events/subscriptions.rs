//! Outbound webhook subscriptions ("moments" pushed to an operator's URL).
//!
//! A subscription names a URL, an HTTP method, the event kinds it takes and
//! up to 25 parameters mapped from event fields. Without parameters the
//! request body is the whole event; with them it is an object of the mapped
//! values (the query string for `GET`). Every request is signed per Standard
//! Webhooks. A subscription that keeps failing raises an event, and one that
//! fails for long enough is disabled.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::kinds::{KindPattern, any_matches};
use super::signing::SigningSecret;
use super::template::{as_text, lookup};
use crate::store::StoredEvent;

/// Most mapped parameters a subscription may have.
pub const MAX_PARAMS: usize = 25;

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// Its id.
    pub id: String,
    /// When it was created, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// The signing secret, `whsec_…`.
    pub secret: String,
    /// Why it was disabled automatically, if it was.
    pub disabled_reason: Option<String>,
    /// The failure streak now running.
    #[serde(default)]
    pub failing: FailureStreak,
    /// What the operator gave.
    #[serde(flatten)]
    pub spec: SubscriptionSpec,
}

/// What an operator says a subscription is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionSpec {
    /// A name for people.
    pub name: String,
    /// Where requests go.
    pub url: String,
    /// `POST` (the default), `PUT`, `PATCH` or `GET`.
    #[serde(default)]
    pub method: Method,
    /// The event kinds it takes.
    pub kinds: Vec<KindPattern>,
    /// Parameters mapped from event fields; empty sends the whole event.
    #[serde(default)]
    pub params: Vec<Param>,
    /// Only events of this tenant, when set.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Whether it receives deliveries.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// The HTTP method of a subscription.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `POST` with a JSON body.
    #[default]
    Post,
    /// `PUT` with a JSON body.
    Put,
    /// `PATCH` with a JSON body.
    Patch,
    /// `GET` with the parameters in the query string.
    Get,
}

/// One mapped parameter: a name and where its value comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    /// The parameter's name in the request.
    pub name: String,
    /// The event field it is read from, such as `data.caller`.
    #[serde(default)]
    pub from: Option<String>,
    /// A fixed value, when it is not read from the event.
    #[serde(default)]
    pub value: Option<Value>,
}

/// Consecutive failed attempts of one subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureStreak {
    /// How many.
    pub count: u32,
    /// When the first of them happened.
    pub since_ms: u64,
    /// Whether the failure notification for this streak went out.
    pub notified: bool,
}

impl SubscriptionSpec {
    /// Checks what serde cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err("`name` must be 1-200 characters".into());
        }
        let url = reqwest::Url::parse(&self.url)
            .map_err(|err| format!("`url` is not an absolute URL: {err}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err("`url` must be an http or https URL with a host".into());
        }
        if self.kinds.is_empty() {
            return Err("`kinds` must list at least one kind pattern".into());
        }
        if self.params.len() > MAX_PARAMS {
            return Err(format!(
                "`params` lists {}; at most {MAX_PARAMS} are allowed",
                self.params.len()
            ));
        }
        let mut names = std::collections::HashSet::new();
        for param in &self.params {
            if param.name.is_empty() || !names.insert(param.name.as_str()) {
                return Err(format!(
                    "parameter names must be non-empty and unique (`{}`)",
                    param.name
                ));
            }
            if param.from.is_some() == param.value.is_some() {
                return Err(format!(
                    "parameter `{}` needs exactly one of `from` (an event field) and `value`",
                    param.name
                ));
            }
        }
        Ok(())
    }

    /// Whether an event of `kind` and `tenant` goes to it.
    pub fn takes(&self, kind: &str, tenant: &str) -> bool {
        self.tenant.as_deref().is_none_or(|t| t == tenant) && any_matches(&self.kinds, kind)
    }
}

/// An outbound request, ready to sign and send.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundRequest {
    /// The method.
    pub method: Method,
    /// The URL, with the query string for `GET`.
    pub url: reqwest::Url,
    /// The JSON body; empty for `GET`.
    pub body: Vec<u8>,
}

impl Subscription {
    /// The request delivering the event seen as `view`.
    pub fn request_for(&self, view: &Value) -> Result<OutboundRequest, String> {
        let mut url = reqwest::Url::parse(&self.spec.url).map_err(|err| err.to_string())?;
        let mapped: Vec<(&str, Value)> = self
            .spec
            .params
            .iter()
            .map(|param| {
                let value = match (&param.from, &param.value) {
                    (Some(path), _) => lookup(view, path).cloned().unwrap_or(Value::Null),
                    (None, Some(value)) => value.clone(),
                    (None, None) => Value::Null,
                };
                (param.name.as_str(), value)
            })
            .collect();
        let body = match self.spec.method {
            Method::Get => {
                let mut query = url.query_pairs_mut();
                for (name, value) in &mapped {
                    if !value.is_null() && !value.is_object() {
                        query.append_pair(name, &as_text(value));
                    }
                }
                drop(query);
                Vec::new()
            }
            Method::Post | Method::Put | Method::Patch => {
                let payload = if mapped.is_empty() {
                    view.clone()
                } else {
                    Value::Object(
                        mapped
                            .into_iter()
                            .map(|(name, value)| (name.to_owned(), value))
                            .collect::<Map<_, _>>(),
                    )
                };
                serde_json::to_vec(&payload).map_err(|err| err.to_string())?
            }
        };
        Ok(OutboundRequest {
            method: self.spec.method,
            url,
            body,
        })
    }

    /// Whether `event` goes to it: a kind and tenant it takes, and not a
    /// notice about its own failures (those go to the others).
    pub fn wants(&self, event: &StoredEvent) -> bool {
        self.takes_notice(event) && self.spec.takes(&event.kind, &event.tenant)
    }

    /// Whether a rule may send it `event`, whatever its kind: an event of
    /// its tenant that is not a notice about its own failures (failing,
    /// disabled, a dead delivery), which it could not take either.
    pub fn takes_notice(&self, event: &StoredEvent) -> bool {
        let about_itself = event.connector == super::HOST_SOURCE
            && (event.kind.starts_with("switchboard.subscription_")
                || event.kind == "switchboard.delivery_dead")
            && event.subject.as_deref() == Some(self.id.as_str());
        !about_itself
            && self
                .spec
                .tenant
                .as_deref()
                .is_none_or(|t| t == event.tenant)
    }

    /// The signing secret.
    pub fn signing_secret(&self) -> Result<SigningSecret, String> {
        SigningSecret::parse(&self.secret)
    }

    /// What it shows through the API: everything but the secret.
    pub fn public_view(&self) -> Value {
        let mut shown = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(fields) = &mut shown {
            fields.remove("secret");
        }
        shown
    }
}

impl Method {
    /// As `reqwest` names it.
    pub fn as_reqwest(self) -> reqwest::Method {
        match self {
            Self::Post => reqwest::Method::POST,
            Self::Put => reqwest::Method::PUT,
            Self::Patch => reqwest::Method::PATCH,
            Self::Get => reqwest::Method::GET,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn subscription(spec: Value) -> Subscription {
        Subscription {
            id: "s1".into(),
            created_ms: 0,
            secret: SigningSecret::generate().expose(),
            disabled_reason: None,
            failing: FailureStreak::default(),
            spec: serde_json::from_value(spec).expect("spec"),
        }
    }

    fn view() -> Value {
        json!({"id": "e", "kind": "call.answered", "data": {"caller": "+79001234567", "wait": 12, "extra": {"a": 1}}})
    }

    #[test]
    fn notices_about_a_subscription_go_to_the_others_only() {
        let all =
            subscription(json!({"name": "ops", "url": "http://127.0.0.1:9/", "kinds": ["*"]}));
        let notice = |kind: &str, subject: &str| StoredEvent {
            id: "n".into(),
            connector: super::super::HOST_SOURCE.into(),
            tenant: "default".into(),
            kind: kind.into(),
            subject: Some(subject.into()),
            time_ms: 0,
            data: "{}".into(),
        };
        for kind in [
            "switchboard.subscription_failing",
            "switchboard.subscription_disabled",
            "switchboard.delivery_dead",
        ] {
            assert!(!all.wants(&notice(kind, "s1")), "{kind} about itself");
            assert!(all.wants(&notice(kind, "s2")), "{kind} about another");
        }
    }

    #[test]
    fn mapped_parameters_become_the_body_or_the_query() {
        let params = json!([
            {"name": "phone", "from": "data.caller"},
            {"name": "wait", "from": "data.wait"},
            {"name": "source", "value": "switchboard"},
            {"name": "missing", "from": "data.nope"}
        ]);
        let post = subscription(
            json!({"name": "crm", "url": "http://127.0.0.1:9/hook", "kinds": ["call.*"], "params": params}),
        );
        post.spec.check().expect("valid");
        let request = post.request_for(&view()).expect("request");
        assert_eq!(
            serde_json::from_slice::<Value>(&request.body).expect("json"),
            json!({"phone": "+79001234567", "wait": 12, "source": "switchboard", "missing": null})
        );
        let get = subscription(
            json!({"name": "crm", "url": "http://127.0.0.1:9/hook?k=1", "method": "GET", "kinds": ["*"], "params": params}),
        );
        let request = get.request_for(&view()).expect("request");
        assert_eq!(
            request.url.as_str(),
            "http://127.0.0.1:9/hook?k=1&phone=%2B79001234567&wait=12&source=switchboard"
        );
        assert!(request.body.is_empty());
    }

    #[test]
    fn without_parameters_the_whole_event_is_sent() {
        let all =
            subscription(json!({"name": "all", "url": "https://example.com/in", "kinds": ["*"]}));
        let request = all.request_for(&view()).expect("request");
        assert_eq!(
            serde_json::from_slice::<Value>(&request.body).expect("json"),
            view()
        );
    }

    #[test]
    fn bad_specs_are_refused_with_a_reason() {
        let base = json!({"name": "x", "url": "http://127.0.0.1/x", "kinds": ["*"]});
        let with = |key: &str, value: Value| {
            let mut spec = base.clone();
            spec[key] = value;
            serde_json::from_value::<SubscriptionSpec>(spec)
                .map_err(|e| e.to_string())
                .and_then(|s| s.check())
        };
        assert!(with("url", json!("ftp://x/y")).is_err());
        assert!(with("kinds", json!([])).is_err());
        let many: Vec<Value> = (0..26)
            .map(|i| json!({"name": format!("p{i}"), "value": i}))
            .collect();
        assert!(with("params", json!(many)).is_err());
        assert!(with("params", json!([{"name": "a", "from": "x", "value": 1}])).is_err());
        assert!(
            with(
                "params",
                json!([{"name": "a", "value": 1}, {"name": "a", "value": 2}])
            )
            .is_err()
        );
        assert!(with("method", json!("DELETE")).is_err());
        assert!(with("params", json!([{"name": "a", "value": 1}])).is_ok());
    }
}
