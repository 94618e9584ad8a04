//! The fake logistics provider: a parcel-tracking API in the style of Chinese express
//! carriers' open platforms.
//!
//! `GET /v1/tracking/{carrier}/{tracking_number}` with `Authorization: Bearer
//! sk_sandbox_logistics`. This module owns the route and its input checks; the made-up but
//! deterministic parcel history comes from [`timeline`].

mod timeline;

use axum::{
    Json, Router,
    extract::{Path, rejection::PathRejection},
    http::{HeaderMap, StatusCode},
    routing::get,
};

use crate::LOGISTICS_API_KEY;
use crate::auth::require_bearer;
use crate::error::ApiError;
use timeline::Tracking;

/// Carrier codes the provider knows, as they appear in the URL.
pub(crate) const CARRIERS: [&str; 5] = ["sf-express", "zto", "yto", "ems", "jd"];

/// A tracking number ending in this always answers 404, so tests can reach that path.
const UNKNOWN_PARCEL_SUFFIX: &str = "0000";

/// The provider's `/v1` routes; faults, counting and control routes are added by `upstream`.
pub(crate) fn routes() -> axum::Router {
    Router::new().route("/v1/tracking/{carrier}/{tracking_number}", get(track))
}

async fn track(
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Tracking>, ApiError> {
    require_bearer(&headers, LOGISTICS_API_KEY)?;
    let Path((carrier, number)) = path?;
    let carrier = parse_carrier(&carrier)?;
    let number = parse_tracking_number(&number)?;
    if number.ends_with(UNKNOWN_PARCEL_SUFFIX) {
        return Err(ApiError::not_found(format!(
            "{carrier} has no parcel with tracking number {number}"
        )));
    }
    Ok(Json(Tracking::generate(carrier, number)))
}

fn parse_carrier(carrier: &str) -> Result<&'static str, ApiError> {
    CARRIERS
        .into_iter()
        .find(|known| *known == carrier)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_carrier",
                format!(
                    "unknown carrier {carrier:?}; known carriers: {}",
                    CARRIERS.join(", ")
                ),
            )
        })
}

fn parse_tracking_number(number: &str) -> Result<&str, ApiError> {
    let well_formed =
        (8..=20).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_alphanumeric());
    if well_formed {
        Ok(number)
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_tracking_number",
            format!("tracking number {number:?} must be 8 to 20 ASCII letters or digits"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{get_json, start};
    use serde_json::Value;

    async fn track_with(key: Option<&str>, path: &str) -> anyhow::Result<(u16, Value)> {
        let sandbox = start().await?;
        let reply = get_json(
            &format!("{}/v1/tracking/{path}", sandbox.logistics_url()),
            key,
        )
        .await?;
        sandbox.shutdown().await;
        Ok(reply)
    }

    async fn track(path: &str) -> anyhow::Result<(u16, Value)> {
        track_with(Some(LOGISTICS_API_KEY), path).await
    }

    fn error_type(body: &Value) -> Option<&str> {
        body["error"]["type"].as_str()
    }

    #[tokio::test]
    async fn a_known_parcel_is_tracked_with_its_carrier_number_and_history() -> anyhow::Result<()> {
        let (status, body) = track("sf-express/SF1234567890").await?;
        assert_eq!(status, 200);
        assert_eq!(body["carrier"], "sf-express");
        assert_eq!(body["tracking_number"], "SF1234567890");
        let events = body["events"].as_array().map(Vec::len).unwrap_or_default();
        assert!((2..=5).contains(&events), "{body}");
        Ok(())
    }

    #[tokio::test]
    async fn the_same_parcel_is_described_identically_every_time() -> anyhow::Result<()> {
        let first = track("jd/JD0012345678901").await?;
        let second = track("jd/JD0012345678901").await?;
        assert_eq!(first.0, 200);
        assert_eq!(first, second);
        Ok(())
    }

    #[tokio::test]
    async fn a_missing_or_wrong_key_is_unauthorized() -> anyhow::Result<()> {
        for key in [None, Some("sk_wrong"), Some(crate::PAYMENT_API_KEY)] {
            let (status, body) = track_with(key, "zto/ZT12345678").await?;
            assert_eq!(
                (status, error_type(&body)),
                (401, Some("unauthorized")),
                "{key:?}"
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn an_unknown_carrier_is_a_400_naming_the_known_ones() -> anyhow::Result<()> {
        let (status, body) = track("dhl/ZT12345678").await?;
        assert_eq!((status, error_type(&body)), (400, Some("unknown_carrier")));
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("sf-express")
        );
        Ok(())
    }

    #[tokio::test]
    async fn tracking_numbers_outside_8_to_20_alphanumerics_are_rejected() -> anyhow::Result<()> {
        for number in [
            "1234567",
            "123456789012345678901",
            "ZT1234-5678",
            "ZT%2012345678",
            "%FF%FE12345678",
        ] {
            let (status, body) = track(&format!("yto/{number}")).await?;
            assert_eq!(status, 400, "{number}");
            assert!(
                matches!(
                    error_type(&body),
                    Some("invalid_tracking_number" | "invalid_request")
                ),
                "{number}: {body}"
            );
        }
        for number in ["12345678", "ABCDEFGHIJ1234567890"] {
            assert_eq!(track(&format!("yto/{number}")).await?.0, 200, "{number}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_tracking_number_ending_in_0000_is_not_found() -> anyhow::Result<()> {
        let (status, body) = track("ems/EM123450000").await?;
        assert_eq!((status, error_type(&body)), (404, Some("not_found")));
        Ok(())
    }

    #[test]
    fn tracking_number_checks_just_inside_and_outside_the_limits() {
        assert!(parse_tracking_number("A234567B").is_ok());
        assert!(parse_tracking_number("A234567").is_err());
        assert!(parse_tracking_number("A2345678901234567890").is_ok());
        assert!(parse_tracking_number("A23456789012345678901").is_err());
        assert!(parse_tracking_number("Ä2345678").is_err());
    }
}
