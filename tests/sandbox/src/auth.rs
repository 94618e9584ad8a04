//! Bearer-key checks for the providers' `/v1/*` routes.
//!
//! Each provider accepts exactly one key; this module only compares the
//! `Authorization` header against it. Control routes (`/__sandbox/*`) take no key.

use axum::http::{HeaderMap, StatusCode, header};

use crate::error::ApiError;

/// Passes when the request carries `Authorization: Bearer <expected>`; the scheme name is
/// case-insensitive as in RFC 9110, the key is not.
pub(crate) fn require_bearer(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token);
    match presented {
        Some(key) if key == expected => Ok(()),
        Some(_) => Err(unauthorized("the API key is not valid for this provider")),
        None => Err(unauthorized(
            "missing API key: send `Authorization: Bearer <key>`",
        )),
    }
}

fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers_with(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(authorization) {
            headers.insert(header::AUTHORIZATION, value);
        }
        headers
    }

    #[test]
    fn the_bearer_scheme_name_is_case_insensitive_but_the_key_is_not() {
        assert!(require_bearer(&headers_with("bearer sk_x"), "sk_x").is_ok());
        assert!(require_bearer(&headers_with("BEARER  sk_x "), "sk_x").is_ok());
        assert!(require_bearer(&headers_with("Bearer SK_X"), "sk_x").is_err());
    }

    #[test]
    fn other_schemes_and_empty_keys_are_unauthorized() {
        for value in ["Basic sk_x", "Bearer", "Bearer   ", "sk_x", ""] {
            let error = require_bearer(&headers_with(value), "sk_x").err();
            assert_eq!(
                error.map(|e| (e.status(), e.kind())),
                Some((StatusCode::UNAUTHORIZED, "unauthorized")),
                "{value:?}"
            );
        }
    }
}
