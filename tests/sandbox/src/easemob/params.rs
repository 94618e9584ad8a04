//! The Easemob API's request bodies, parsed once into typed requests. Anything off (not a JSON
//! object, a required field missing, blank or not a string, a flag that is not a single value)
//! is `API_001`, as Easemob answers it.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use serde_json::{Map, Value};

use super::reply::Fail;

/// A JSON request body, or the rejection axum met reading it.
pub(super) type Body = Result<Bytes, BytesRejection>;

/// `POST …/accessToken`: `{"tenantId"?, "clientId", "secretId"}`.
#[derive(Debug, PartialEq)]
pub(super) struct TokenRequest {
    /// The tenant the body names, as text; the seed's curl example leaves it out.
    pub(super) tenant_id: Option<String>,
    pub(super) client_id: String,
    pub(super) secret_id: String,
}

/// `POST …/busniessbind`: `{"businessFlag", "visitUserName", "agentUserName"}`.
#[derive(Debug, PartialEq)]
pub(super) struct BindRequest {
    pub(super) business_flag: String,
    pub(super) visitor: String,
    pub(super) agent: String,
}

/// `DELETE …/busniessbind`: `{"businessFlag", "visitUserName"}`.
#[derive(Debug, PartialEq)]
pub(super) struct UnbindRequest {
    pub(super) business_flag: String,
    pub(super) visitor: String,
}

/// `POST …/sessions`: `{"visitorUserName", "skillGroup"?, "ext"?: {"weichat"?:
/// {"businessFlag"?, "routingRuleFlag"?}}}`.
#[derive(Debug, PartialEq)]
pub(super) struct SessionRequest {
    pub(super) visitor: String,
    pub(super) skill_group: Option<String>,
    pub(super) business_flag: Option<String>,
    pub(super) routing_rule_flag: Option<String>,
}

impl TokenRequest {
    pub(super) fn parse(body: Body) -> Result<Self, Fail> {
        let body = object(body)?;
        Ok(Self {
            tenant_id: tenant_id(&body)?,
            client_id: required(&body, "clientId")?,
            secret_id: required(&body, "secretId")?,
        })
    }
}

impl BindRequest {
    pub(super) fn parse(body: Body) -> Result<Self, Fail> {
        let body = object(body)?;
        Ok(Self {
            business_flag: single(required(&body, "businessFlag")?)?,
            visitor: required(&body, "visitUserName")?,
            agent: required(&body, "agentUserName")?,
        })
    }
}

impl UnbindRequest {
    pub(super) fn parse(body: Body) -> Result<Self, Fail> {
        let body = object(body)?;
        Ok(Self {
            business_flag: single(required(&body, "businessFlag")?)?,
            visitor: required(&body, "visitUserName")?,
        })
    }
}

impl SessionRequest {
    pub(super) fn parse(body: Body) -> Result<Self, Fail> {
        let body = object(body)?;
        let weichat = match nested(&body, "ext")? {
            Some(ext) => nested(ext, "weichat")?,
            None => None,
        };
        let flag = |field| match weichat {
            Some(weichat) => optional(weichat, field)?.map(single).transpose(),
            None => Ok(None),
        };
        Ok(Self {
            visitor: required(&body, "visitorUserName")?,
            skill_group: optional(&body, "skillGroup")?,
            business_flag: flag("businessFlag")?,
            routing_rule_flag: flag("routingRuleFlag")?,
        })
    }
}

fn object(body: Body) -> Result<Map<String, Value>, Fail> {
    let bytes = body.map_err(|_| Fail::InvalidParam)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Fail::InvalidParam),
    }
}

/// The object under `field`, if present and not null.
fn nested<'a>(
    body: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a Map<String, Value>>, Fail> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(Fail::InvalidParam),
    }
}

fn required(body: &Map<String, Value>, field: &str) -> Result<String, Fail> {
    optional(body, field)?.ok_or(Fail::InvalidParam)
}

/// The non-blank string under `field`, if present and not null.
fn optional(body: &Map<String, Value>, field: &str) -> Result<Option<String>, Fail> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(Some(text.clone())),
        Some(_) => Err(Fail::InvalidParam),
    }
}

/// `tenantId` as text: the seed types it `int`, its example sends a string.
fn tenant_id(body: &Map<String, Value>) -> Result<Option<String>, Fail> {
    match body.get("tenantId") {
        Some(Value::Number(number)) => Ok(Some(number.to_string())),
        _ => optional(body, "tenantId"),
    }
}

/// `value` if it is one value: flags carrying several must be joined into one by the caller,
/// never listed with commas (ASCII or full-width).
fn single(value: String) -> Result<String, Fail> {
    if value.contains([',', '，']) {
        return Err(Fail::InvalidParam);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> Body {
        Ok(Bytes::from(text.to_owned()))
    }

    #[test]
    fn a_token_request_takes_the_tenant_as_a_number_a_string_or_none() -> anyhow::Result<()> {
        for (text, tenant) in [
            (
                r#"{"tenantId":20080,"clientId":"c","secretId":"s"}"#,
                Some("20080"),
            ),
            (
                r#"{"tenantId":"20080","clientId":"c","secretId":"s"}"#,
                Some("20080"),
            ),
            (r#"{"clientId":"c","secretId":"s"}"#, None),
        ] {
            let request = TokenRequest::parse(body(text)).map_err(|f| anyhow::anyhow!("{f:?}"))?;
            assert_eq!(request.tenant_id.as_deref(), tenant, "{text}");
            assert_eq!(
                (request.client_id.as_str(), request.secret_id.as_str()),
                ("c", "s")
            );
        }
        Ok(())
    }

    #[test]
    fn missing_blank_or_mistyped_fields_and_non_objects_are_api_001() {
        for text in [
            "",
            "[]",
            r#"{"secretId":"s"}"#,
            r#"{"clientId":" ","secretId":"s"}"#,
            r#"{"clientId":1,"secretId":"s"}"#,
            r#"{"tenantId":true,"clientId":"c","secretId":"s"}"#,
        ] {
            assert_eq!(
                TokenRequest::parse(body(text)),
                Err(Fail::InvalidParam),
                "{text}"
            );
        }
        for text in [
            r#"{"businessFlag":"F","visitUserName":"V"}"#,
            r#"{"businessFlag":"","visitUserName":"V","agentUserName":"A"}"#,
            r#"{"businessFlag":"F,G","visitUserName":"V","agentUserName":"A"}"#,
            r#"{"businessFlag":"F，G","visitUserName":"V","agentUserName":"A"}"#,
        ] {
            assert_eq!(
                BindRequest::parse(body(text)),
                Err(Fail::InvalidParam),
                "{text}"
            );
        }
        assert_eq!(
            UnbindRequest::parse(body(r#"{"businessFlag":"F"}"#)),
            Err(Fail::InvalidParam)
        );
    }

    #[test]
    fn a_session_request_reads_its_flags_from_ext_weichat() -> anyhow::Result<()> {
        let text = r#"{"visitorUserName":"v","skillGroup":"sales",
            "ext":{"weichat":{"businessFlag":"lead","routingRuleFlag":"vip"}}}"#;
        let request = SessionRequest::parse(body(text)).map_err(|f| anyhow::anyhow!("{f:?}"))?;
        assert_eq!(
            request,
            SessionRequest {
                visitor: "v".into(),
                skill_group: Some("sales".into()),
                business_flag: Some("lead".into()),
                routing_rule_flag: Some("vip".into()),
            }
        );
        let bare = SessionRequest::parse(body(r#"{"visitorUserName":"v","ext":{}}"#))
            .map_err(|f| anyhow::anyhow!("{f:?}"))?;
        assert_eq!((bare.business_flag, bare.skill_group), (None, None));
        for text in [
            r#"{"visitorUserName":"v","ext":"flag"}"#,
            r#"{"visitorUserName":"v","ext":{"weichat":{"routingRuleFlag":"a,b"}}}"#,
            r#"{"ext":{"weichat":{"businessFlag":"lead"}}}"#,
        ] {
            assert_eq!(
                SessionRequest::parse(body(text)),
                Err(Fail::InvalidParam),
                "{text}"
            );
        }
        Ok(())
    }
}
