//! Logistics tracking: where is the customer's parcel?
//!
//! An agent or an IVR flow asks with a carrier code and a tracking number; the
//! connector asks the logistics provider and returns the status, the estimated
//! delivery and the scan history.

use switchboard_sdk::{
    Connector, Context, Deserialize, Error, JsonSchema, Operation, Serialize, config,
    export_connector, http,
};

struct LogisticsTracking;

impl Connector for LogisticsTracking {
    const NAME: &'static str = "logistics-tracking";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Tracks parcels with the logistics provider: \
        current status, estimated delivery and scan history.";

    fn operations() -> Vec<Operation> {
        vec![
            Operation::new(
                "track",
                "Returns the status, estimated delivery and scan history of a parcel.",
                track,
            )
            .idempotent(),
        ]
    }
}

export_connector!(LogisticsTracking);

/// The parcel to look up.
#[derive(Deserialize, JsonSchema)]
struct TrackInput {
    /// Carrier code, such as `sf-express` or `ups`.
    #[schemars(length(min = 1, max = 64))]
    carrier: String,
    /// The carrier's tracking number of the parcel.
    #[schemars(length(min = 1, max = 64))]
    tracking_number: String,
}

/// Where a parcel is and where it has been.
#[derive(Serialize, Deserialize, JsonSchema)]
struct Tracking {
    /// Carrier code.
    carrier: String,
    /// The carrier's tracking number of the parcel.
    tracking_number: String,
    /// Current status as the carrier reports it, such as `in_transit` or `delivered`.
    status: String,
    /// Estimated delivery time, when the carrier gives one.
    estimated_delivery: Option<String>,
    /// Scan events in the order the carrier reports them.
    events: Vec<TrackingEvent>,
}

/// One scan of the parcel.
#[derive(Serialize, Deserialize, JsonSchema)]
struct TrackingEvent {
    /// When the scan happened.
    time: String,
    /// Where the parcel was scanned.
    location: String,
    /// What happened, in the carrier's words.
    description: String,
}

/// The provider's error body: `{"error": {"type": ..., "message": ...}}`.
#[derive(Deserialize)]
struct ProviderError {
    error: ProviderErrorDetail,
}

#[derive(Deserialize)]
struct ProviderErrorDetail {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: String,
}

fn track(_ctx: &Context, input: TrackInput) -> Result<Tracking, Error> {
    let carrier = non_empty("carrier", &input.carrier)?;
    let number = non_empty("tracking_number", &input.tracking_number)?;
    let url = format!(
        "{}/v1/tracking/{}/{}",
        config::require("base_url")?.trim_end_matches('/'),
        http::path_segment(carrier)?,
        http::path_segment(number)?,
    );
    let response = http::get(url)
        .bearer(&config::require_secret("api_key")?)
        .send()?;
    if response.is_success() {
        return response.json();
    }
    Err(provider_error(&response, carrier, number))
}

fn provider_error(response: &http::Response, carrier: &str, number: &str) -> Error {
    let detail = response.json::<ProviderError>().ok().map(|body| body.error);
    match (response.status, detail) {
        (404, _) => Error::new(
            "tracking_not_found",
            format!("carrier `{carrier}` has no parcel `{number}`"),
        ),
        (400, Some(detail)) if detail.kind == "unknown_carrier" => {
            Error::new("unknown_carrier", detail.message)
        }
        (400, Some(detail)) if detail.kind == "invalid_tracking_number" => {
            Error::new("invalid_tracking_number", detail.message)
        }
        (status, _) => Error::upstream_status(status, &response.body),
    }
}

/// `value` without surrounding whitespace; `invalid_input` if nothing is left.
fn non_empty<'a>(field: &str, value: &'a str) -> Result<&'a str, Error> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::invalid_input(format!("`{field}` must not be empty")));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use switchboard_sdk::testing::TestHost;

    use super::LogisticsTracking;

    const MANIFEST: &str = include_str!("../connector.toml");
    const RECORDING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/recordings/track.json");

    fn track(
        host: &TestHost,
        carrier: &str,
        number: &str,
    ) -> Result<Value, switchboard_sdk::Error> {
        host.invoke::<LogisticsTracking>(
            "track",
            &json!({"carrier": carrier, "tracking_number": number}),
        )
    }

    #[test]
    fn tracks_a_parcel_and_maps_every_provider_error_from_a_recording() {
        let host = TestHost::from_manifest(MANIFEST)
            .expect("the manifest parses")
            .with_secret("api_key", "sk_test")
            .replay_file(RECORDING)
            .expect("the recording loads");

        let parcel = track(&host, "yto", "YT1234567890").expect("a known parcel");
        assert_eq!(parcel["status"], "out_for_delivery");
        assert_eq!(parcel["events"].as_array().map(Vec::len), Some(3));
        assert_eq!(
            host.requests()[0].header_value("authorization"),
            Some("Bearer sk_test"),
            "the recording holds `<secret:api_key>`; the request carries the secret"
        );

        let codes: Vec<String> = [
            ("yto", "YT1234560000"),
            ("dhl", "YT1234567890"),
            ("yto", "short"),
            ("zto", "ZT1234567890"),
        ]
        .into_iter()
        .map(|(carrier, number)| track(&host, carrier, number).expect_err("fails").code)
        .collect();
        assert_eq!(
            codes,
            [
                "tracking_not_found",
                "unknown_carrier",
                "invalid_tracking_number",
                "upstream_unavailable"
            ]
        );
    }

    #[test]
    fn blank_input_never_reaches_the_provider() {
        let host = TestHost::from_manifest(MANIFEST)
            .expect("the manifest parses")
            .with_secret("api_key", "sk_test");
        let error = track(&host, " ", "YT1234567890").expect_err("blank carrier");
        assert_eq!(error.code, "invalid_input");
        assert!(host.requests().is_empty());
    }

    #[test]
    fn tracks_a_parcel_against_the_live_sandbox_provider() {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let sandbox = runtime
            .block_on(switchboard_sandbox::Sandbox::start(
                switchboard_sandbox::SandboxConfig::ephemeral(),
            ))
            .expect("the sandbox starts");
        let host = TestHost::from_manifest(MANIFEST)
            .expect("the manifest parses")
            .with_config("base_url", &sandbox.logistics_url())
            .with_secret("api_key", switchboard_sandbox::LOGISTICS_API_KEY)
            .live();

        let parcel = track(&host, "sf-express", "SF1234567890").expect("a known parcel");
        assert_eq!(parcel["carrier"], "sf-express");
        assert_eq!(parcel["tracking_number"], "SF1234567890");
        let error = track(&host, "sf-express", "SF1234560000").expect_err("unknown parcel");
        assert_eq!(error.code, "tracking_not_found");
        assert_eq!(sandbox.logistics_requests(), 2);
    }
}
