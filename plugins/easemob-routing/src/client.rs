//! Calls to Easemob's platform API (`/api/platform/tenants/{tenantId}/…`): the configuration
//! they need, the `Kefu-Token` header, the `{"status","entity"|"errorCode","errorDescription"}`
//! reply envelope and its error codes, and one retry with a new token after `API_002`.

use serde::de::DeserializeOwned;
use serde_json::Value;
use switchboard_sdk::{Context, Deserialize, Error, Serialize, config, http};

/// The header Easemob reads the access token from (the seed's table misspells it
/// `Kefu-Toke`).
const TOKEN_HEADER: &str = "Kefu-Token";
/// The code of `API_002`, Easemob refusing the access token.
const TOKEN_REJECTED: &str = "token_rejected";
/// The most of a call's time kept for the API call itself rather than waiting for another
/// call's token refresh.
const CALL_RESERVE_MS: u64 = 1000;

/// What a call needs to reach Easemob, read from the configuration once per call.
#[derive(Debug)]
pub(crate) struct Client {
    base_url: String,
    /// The Easemob tenant (`tenant_id`), also the scope of the cached token.
    pub(crate) tenant_id: String,
    /// Refresh the token when less than this is left of it (`refresh_margin_ms`).
    pub(crate) refresh_margin_ms: u64,
    /// Until when this call may wait for another call's token refresh, in ms since the Unix
    /// epoch.
    pub(crate) wait_until_ms: u64,
}

/// Easemob's reply envelope.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<T> {
    status: String,
    entity: Option<T>,
    #[serde(default)]
    error_code: String,
    #[serde(default)]
    error_description: String,
}

impl Client {
    /// The configured client for the call `ctx`.
    pub(crate) fn new(ctx: &Context) -> Result<Self, Error> {
        let margin = config::require("refresh_margin_ms")?;
        let refresh_margin_ms = margin.trim().parse().map_err(|_| {
            Error::new(
                "config_invalid",
                format!(
                    "configuration key `refresh_margin_ms` is `{margin}`, not a number of \
                     milliseconds"
                ),
            )
        })?;
        let reserve = CALL_RESERVE_MS.min(ctx.deadline_ms / 2);
        Ok(Self {
            base_url: config::require("base_url")?
                .trim_end_matches('/')
                .to_owned(),
            tenant_id: config::require("tenant_id")?,
            refresh_margin_ms,
            wait_until_ms: now_ms().saturating_add(ctx.deadline_ms.saturating_sub(reserve)),
        })
    }

    /// Sends `body` to `resource` with the access token and returns the reply's entity; if
    /// Easemob refuses the token (`API_002`), discards it, gets another and tries once more.
    pub(crate) fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        resource: &str,
        body: &impl Serialize,
    ) -> Result<T, Error> {
        let token = self.token()?;
        match self.send(method, resource, Some(&token), body) {
            Err(error) if error.code == TOKEN_REJECTED => {
                let token = self.token_replacing(&token)?;
                self.send(method, resource, Some(&token), body)
                    .map_err(|error| still_rejected(error, &self.tenant_id))
            }
            answer => answer,
        }
    }

    /// `POST`s `body` to `resource` without a token (the token request itself).
    pub(crate) fn post_unauthorized<T: DeserializeOwned>(
        &self,
        resource: &str,
        body: &impl Serialize,
    ) -> Result<T, Error> {
        self.send("POST", resource, None, body)
    }

    fn send<T: DeserializeOwned>(
        &self,
        method: &str,
        resource: &str,
        token: Option<&str>,
        body: &impl Serialize,
    ) -> Result<T, Error> {
        let url = format!(
            "{}/api/platform/tenants/{}/{resource}",
            self.base_url,
            http::path_segment(&self.tenant_id)?
        );
        let mut request = http::Request::new(method, url);
        if let Some(token) = token {
            request = request.header(TOKEN_HEADER, token);
        }
        let response = request.json(body)?.send()?;
        read(&response, &self.tenant_id)
    }
}

/// The entity of an `OK` reply (a reply without one reads as JSON `null`), or the failure
/// mapped to a connector error. A body that is not the envelope is judged by the HTTP status.
fn read<T: DeserializeOwned>(response: &http::Response, tenant_id: &str) -> Result<T, Error> {
    let envelope = match response.json::<Envelope<T>>() {
        Ok(envelope) => envelope,
        Err(error) if response.is_success() => return Err(error),
        Err(_) => return Err(Error::upstream_status(response.status, &response.body)),
    };
    if envelope.status == "OK" && response.is_success() {
        return match envelope.entity {
            Some(entity) => Ok(entity),
            None => T::deserialize(Value::Null).map_err(|e| {
                Error::new(
                    "upstream_invalid_response",
                    format!("Easemob's OK reply lacks the expected entity: {e}"),
                )
            }),
        };
    }
    Err(failure(response, &envelope, tenant_id))
}

/// A `FAIL` reply as a connector error, by its `errorCode`.
fn failure<T>(response: &http::Response, envelope: &Envelope<T>, tenant_id: &str) -> Error {
    let said = format!(
        "Easemob answered {}: {}",
        envelope.error_code, envelope.error_description
    );
    match envelope.error_code.as_str() {
        "API_001" => Error::new("invalid_parameters", said),
        "API_002" => Error::new(TOKEN_REJECTED, said),
        "API_003" => Error::new(
            "tenant_invalid",
            format!("tenant `{tenant_id}` is not known to Easemob ({said})"),
        ),
        "API_004" => Error::new(
            "credentials_invalid",
            format!(
                "the secrets `client_id` and `secret_id` are not valid for tenant \
                 `{tenant_id}` ({said})"
            ),
        ),
        "API_120" => Error::new("binding_failed", said),
        _ => Error::upstream_status(response.status, &response.body),
    }
}

/// `token_rejected` after the retry says so; other errors pass unchanged.
fn still_rejected(error: Error, tenant_id: &str) -> Error {
    if error.code != TOKEN_REJECTED {
        return error;
    }
    Error::new(
        TOKEN_REJECTED,
        format!(
            "Easemob refused the replacement access token of tenant `{tenant_id}` too ({})",
            error.message
        ),
    )
}

/// Milliseconds since the Unix epoch, by the host's clock.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}
