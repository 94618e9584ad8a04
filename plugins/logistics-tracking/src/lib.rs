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
