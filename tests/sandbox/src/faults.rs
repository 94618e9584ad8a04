//! Fault injection: extra latency and random failures on a provider's `/v1/*` routes.
//!
//! This module owns the fault settings and how one request suffers them. Which routes are
//! subject to faults, and the control routes that change them, live in `upstream`.

use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The status an injected failure is answered with unless configured otherwise.
pub const DEFAULT_FAILURE_STATUS: u16 = 503;

/// How a provider misbehaves: every `/v1/*` request first waits `latency_ms`, then the
/// next `fail_next` requests fail with `failure_status`, and after them each fails with
/// probability `failure_rate`.
///
/// Missing fields deserialize to their defaults: no latency, no failures, status 503.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Milliseconds every request waits before it is handled.
    pub latency_ms: u64,
    /// Probability, `0.0..=1.0`, that a request fails instead of being handled.
    pub failure_rate: f64,
    /// HTTP status of an injected failure; a `429` also carries `Retry-After: 1`.
    pub failure_status: u16,
    /// How many of the next requests fail for certain (counts down as they do).
    pub fail_next: u32,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            failure_rate: 0.0,
            failure_status: DEFAULT_FAILURE_STATUS,
            fail_next: 0,
        }
    }
}

impl FaultConfig {
    /// Checks the ranges the control route accepts: a rate in `0..=1` and a 4xx or 5xx status.
    pub(crate) fn validate(&self) -> Result<(), ApiError> {
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return Err(ApiError::invalid_param(
                "failure_rate",
                format!(
                    "failure_rate must be between 0 and 1, got {}",
                    self.failure_rate
                ),
            ));
        }
        if !(400..=599).contains(&self.failure_status) {
            return Err(ApiError::invalid_param(
                "failure_status",
                format!(
                    "failure_status must be a 4xx or 5xx status, got {}",
                    self.failure_status
                ),
            ));
        }
        Ok(())
    }
}

/// The live fault settings of one provider, shared between the test and the server.
///
/// Each field is its own atomic, so reads and writes never block; a request racing a
/// [`Faults::set`] may see some fields old and some new.
#[derive(Debug)]
pub struct Faults {
    latency_ms: AtomicU64,
    failure_rate_bits: AtomicU64,
    failure_status: AtomicU16,
    fail_next: AtomicU32,
}

impl Default for Faults {
    fn default() -> Self {
        let faults = Self {
            latency_ms: AtomicU64::new(0),
            failure_rate_bits: AtomicU64::new(0),
            failure_status: AtomicU16::new(0),
            fail_next: AtomicU32::new(0),
        };
        faults.clear();
        faults
    }
}

impl Faults {
    /// Replaces the settings. Values are stored as given; a rate above 1 fails every request,
    /// a rate below 0 (or NaN) none, and a status that is not a valid HTTP status fails with 503.
    pub fn set(&self, config: FaultConfig) {
        self.latency_ms.store(config.latency_ms, Ordering::Relaxed);
        self.failure_rate_bits
            .store(config.failure_rate.to_bits(), Ordering::Relaxed);
        self.failure_status
            .store(config.failure_status, Ordering::Relaxed);
        self.fail_next.store(config.fail_next, Ordering::Relaxed);
    }

    /// Back to a well-behaved provider: no latency, no failures.
    pub fn clear(&self) {
        self.set(FaultConfig::default());
    }

    /// The current settings.
    pub fn get(&self) -> FaultConfig {
        FaultConfig {
            latency_ms: self.latency_ms.load(Ordering::Relaxed),
            failure_rate: f64::from_bits(self.failure_rate_bits.load(Ordering::Relaxed)),
            failure_status: self.failure_status.load(Ordering::Relaxed),
            fail_next: self.fail_next.load(Ordering::Relaxed),
        }
    }

    /// Makes one request suffer the current faults: waits out the latency, then returns the
    /// injected failure if the dice say so.
    pub(crate) async fn inflict(&self) -> Result<(), ApiError> {
        let config = self.get();
        if config.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(config.latency_ms)).await;
        }
        let certain = self
            .fail_next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if certain || rand::rng().random::<f64>() < config.failure_rate {
            return Err(injected_failure(config.failure_status));
        }
        Ok(())
    }
}

fn injected_failure(status: u16) -> ApiError {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    ApiError::new(
        status,
        "sandbox_injected_failure",
        format!(
            "the sandbox injected this {status} failure; clear it with DELETE /__sandbox/faults"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{client, get_json, put_json, start};
    use std::time::Instant;

    #[test]
    fn a_fault_config_with_missing_fields_takes_the_defaults() -> anyhow::Result<()> {
        let config: FaultConfig = serde_json::from_str(r#"{"latency_ms": 5}"#)?;
        assert_eq!(
            config,
            FaultConfig {
                latency_ms: 5,
                failure_rate: 0.0,
                failure_status: 503,
                fail_next: 0,
            }
        );
        Ok(())
    }

    #[test]
    fn faults_read_back_what_was_set_and_clear_to_the_defaults() {
        let faults = Faults::default();
        assert_eq!(faults.get(), FaultConfig::default());
        let config = FaultConfig {
            latency_ms: 7,
            failure_rate: 0.25,
            failure_status: 429,
            fail_next: 2,
        };
        faults.set(config.clone());
        assert_eq!(faults.get(), config);
        faults.clear();
        assert_eq!(faults.get(), FaultConfig::default());
    }

    #[tokio::test]
    async fn the_next_n_requests_fail_for_certain_and_then_none() {
        let faults = Faults::default();
        faults.set(FaultConfig {
            fail_next: 2,
            ..FaultConfig::default()
        });
        assert!(faults.inflict().await.is_err());
        assert!(faults.inflict().await.is_err());
        assert!(faults.inflict().await.is_ok());
        assert_eq!(faults.get().fail_next, 0);
    }

    #[test]
    fn an_invalid_status_set_in_code_fails_with_503() {
        assert_eq!(
            injected_failure(0).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[tokio::test]
    async fn latency_delays_v1_requests_but_not_control_routes() -> anyhow::Result<()> {
        let sandbox = start().await?;
        sandbox.logistics_faults().set(FaultConfig {
            latency_ms: 500,
            ..FaultConfig::default()
        });
        let started = Instant::now();
        let (status, _) =
            get_json(&format!("{}/v1/unknown", sandbox.logistics_url()), None).await?;
        assert_eq!(status, 404);
        assert!(started.elapsed() >= Duration::from_millis(500));

        let started = Instant::now();
        let (status, _) = get_json(
            &format!("{}/__sandbox/stats", sandbox.logistics_url()),
            None,
        )
        .await?;
        assert_eq!(status, 200);
        assert!(started.elapsed() < Duration::from_millis(500));
        sandbox.shutdown().await;
        Ok(())
    }

    #[tokio::test]
    async fn a_failure_rate_of_one_answers_every_request_with_the_failure_status()
    -> anyhow::Result<()> {
        let sandbox = start().await?;
        sandbox.payment_faults().set(FaultConfig {
            failure_rate: 1.0,
            failure_status: 502,
            ..FaultConfig::default()
        });
        for _ in 0..5 {
            let url = format!(
                "{}/v1/payment_links/plink_0000000000000000",
                sandbox.payment_url()
            );
            let (status, body) = get_json(&url, Some(crate::PAYMENT_API_KEY)).await?;
            assert_eq!(status, 502);
            assert_eq!(body["error"]["type"], "sandbox_injected_failure");
        }
        sandbox.shutdown().await;
        Ok(())
    }

    #[tokio::test]
    async fn an_injected_429_carries_retry_after() -> anyhow::Result<()> {
        let sandbox = start().await?;
        sandbox.logistics_faults().set(FaultConfig {
            failure_rate: 1.0,
            failure_status: 429,
            ..FaultConfig::default()
        });
        let response = client()?
            .get(format!(
                "{}/v1/tracking/zto/ZT12345678",
                sandbox.logistics_url()
            ))
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(
            response.headers().get("retry-after").map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        sandbox.shutdown().await;
        Ok(())
    }

    #[tokio::test]
    async fn a_failure_rate_of_zero_injects_nothing() -> anyhow::Result<()> {
        let sandbox = start().await?;
        sandbox.logistics_faults().set(FaultConfig {
            failure_rate: 0.0,
            failure_status: 500,
            ..FaultConfig::default()
        });
        for _ in 0..20 {
            let url = format!("{}/v1/tracking/zto/ZT12345678", sandbox.logistics_url());
            let (status, _) = get_json(&url, Some(crate::LOGISTICS_API_KEY)).await?;
            assert_eq!(status, 200);
        }
        sandbox.shutdown().await;
        Ok(())
    }

    #[tokio::test]
    async fn faults_set_over_http_take_effect_and_delete_clears_them() -> anyhow::Result<()> {
        let sandbox = start().await?;
        let faults_url = format!("{}/__sandbox/faults", sandbox.logistics_url());
        let (status, body) = put_json(&faults_url, r#"{"failure_rate": 1}"#).await?;
        assert_eq!(status, 200);
        assert_eq!(body["failure_status"], 503);
        assert_eq!(sandbox.logistics_faults().get().failure_rate, 1.0);

        let track = format!("{}/v1/tracking/zto/ZT12345678", sandbox.logistics_url());
        assert_eq!(
            get_json(&track, Some(crate::LOGISTICS_API_KEY)).await?.0,
            503
        );

        let response = client()?.delete(&faults_url).send().await?;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(sandbox.logistics_faults().get(), FaultConfig::default());
        assert_eq!(
            get_json(&track, Some(crate::LOGISTICS_API_KEY)).await?.0,
            200
        );
        sandbox.shutdown().await;
        Ok(())
    }

    #[tokio::test]
    async fn out_of_range_or_malformed_fault_configs_are_rejected_with_the_field_named()
    -> anyhow::Result<()> {
        let sandbox = start().await?;
        let faults_url = format!("{}/__sandbox/faults", sandbox.payment_url());
        for (body, param) in [
            (r#"{"failure_rate": 1.5}"#, Some("failure_rate")),
            (r#"{"failure_status": 200}"#, Some("failure_status")),
            (r#"{"latency_ms": -1}"#, None),
            (r#"{"latncy_ms": 5}"#, None),
            ("not json", None),
        ] {
            let (status, reply) = put_json(&faults_url, body).await?;
            assert_eq!(status, 400, "{body}");
            assert_eq!(reply["error"]["type"], "invalid_request", "{body}");
            assert_eq!(reply["error"]["param"].as_str(), param, "{body}");
        }
        assert_eq!(sandbox.payment_faults().get(), FaultConfig::default());
        sandbox.shutdown().await;
        Ok(())
    }
}
