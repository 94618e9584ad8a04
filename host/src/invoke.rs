//! Invoking a connector operation, independent of how the call arrived.
//!
//! Routes the call to a version, resolves the operation, parses and
//! validates the input against its schema, and runs the call through the
//! pipeline. The HTTP API, the batch API and the benchmarks all come
//! through here.

use std::sync::Arc;
use std::time::Instant;

use crate::audit::AuditTrail;
use crate::metrics::{CallLabels, Metrics};
use crate::model::CallContext;
use crate::pipeline::rate_limit::Refused;
use crate::pipeline::{PipelineCall, PipelineError, Pipelines, Served, counts_against};
use crate::registry::LoadedConnector;
use crate::registry::Registry;
use crate::registry::canary::Side;
use crate::runtime::call::CallError;
use crate::store::{AuditKind, AuditRecord};

/// A successful call.
#[derive(Debug, Clone)]
pub struct InvokeOutput {
    /// The operation's JSON output, as text.
    pub output: Arc<str>,
    /// The version that served the call.
    pub version: semver::Version,
    /// Which side of a running canary served it.
    pub side: Option<Side>,
    /// Whether the connector ran, the cache answered or the fallback did.
    pub served: Served,
}

/// Why a call did not produce output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// No connector of that name is installed.
    #[error("connector `{0}` is not installed")]
    ConnectorNotFound(String),
    /// The connector has no such operation.
    #[error("connector `{connector}` has no operation `{operation}`; it offers: {available}")]
    OperationNotFound {
        /// The connector.
        connector: String,
        /// The operation asked for.
        operation: String,
        /// The operations it does offer.
        available: String,
    },
    /// The input is not a JSON document.
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// The input breaks the operation's schema.
    #[error("the input does not match the schema of `{operation}`: {violations}")]
    SchemaViolation {
        /// The operation.
        operation: String,
        /// What is wrong, with JSON pointers.
        violations: String,
    },
    /// The pipeline refused the call, the breaker is open, or the call failed.
    #[error("{0}")]
    Pipeline(#[from] PipelineError),
}

impl InvokeError {
    /// This error with `scrub` applied to the text that came from the
    /// connector or the caller: a connector's own message, schema violations.
    pub fn scrubbed(self, scrub: impl Fn(&str) -> String) -> Self {
        match self {
            InvokeError::SchemaViolation {
                operation,
                violations,
            } => InvokeError::SchemaViolation {
                operation,
                violations: scrub(&violations),
            },
            InvokeError::Pipeline(PipelineError::Call {
                error: CallError::Connector(mut error),
            }) => {
                error.message = scrub(&error.message);
                InvokeError::Pipeline(PipelineError::Call {
                    error: CallError::Connector(error),
                })
            }
            other => other,
        }
    }

    /// The stable code callers get for this failure.
    pub fn code(&self) -> &str {
        match self {
            InvokeError::ConnectorNotFound(_) => "connector_not_found",
            InvokeError::OperationNotFound { .. } => "operation_not_found",
            InvokeError::InvalidJson(_) => "invalid_json",
            InvokeError::SchemaViolation { .. } => "schema_violation",
            InvokeError::Pipeline(PipelineError::Refused(Refused::RateLimited { .. })) => {
                "rate_limited"
            }
            InvokeError::Pipeline(PipelineError::Refused(Refused::Overloaded { .. })) => {
                "overloaded"
            }
            InvokeError::Pipeline(PipelineError::CircuitOpen { .. }) => "circuit_open",
            InvokeError::Pipeline(PipelineError::Call { error }) => error.code(),
        }
    }
}

/// One call to invoke.
pub struct InvokeRequest<'a> {
    /// Who makes it, for the audit trail: a key id, or `dispatcher`.
    pub actor: &'a str,
    /// The connector.
    pub connector: &'a str,
    /// The operation.
    pub operation: &'a str,
    /// Who it is for.
    pub context: CallContext,
    /// The raw JSON input.
    pub input: &'a [u8],
    /// Whether the call carries an idempotency key (which makes retrying a
    /// non-idempotent operation safe).
    pub idempotency_key: bool,
}

/// The host's services a call goes through.
#[derive(Clone, Copy)]
pub struct CallServices<'a> {
    /// Routes the call to a version.
    pub registry: &'a Registry,
    /// Rate limits, breakers, caches and retries.
    pub pipelines: &'a Pipelines,
    /// Counts the call.
    pub metrics: &'a Metrics,
    /// Records the call.
    pub audit: &'a AuditTrail,
}

/// Invokes an operation on the version the registry routes the call to,
/// through the call pipeline; counts it in the metrics once routed to an
/// operation the connector has, and records it in the audit trail. Error
/// messages that carry the connector's or the caller's words come back with
/// the connector's secrets replaced and personal data masked.
pub async fn invoke(
    services: CallServices<'_>,
    request: InvokeRequest<'_>,
) -> Result<InvokeOutput, InvokeError> {
    let started = Instant::now();
    let record = AuditRecord {
        time_ms: crate::capabilities::now_ms(),
        kind: AuditKind::Call,
        actor: request.actor.to_owned(),
        action: "call".into(),
        connector: request.connector.to_owned(),
        tenant: Some(request.context.tenant.to_string()),
        operation: Some(request.operation.to_owned()),
        agent: request.context.agent.clone(),
        request_id: Some(request.context.request_id.clone()).filter(|id| !id.is_empty()),
        ..AuditRecord::default()
    };
    let input = request.input;
    let (result, loaded) = route_and_run(services, request, started).await;
    let scrub = |text: &str| match &loaded {
        Some(loaded) => crate::audit::excerpt(&loaded.grants.settings.redact(text)),
        None => crate::audit::excerpt(text),
    };
    let result = result.map_err(|err| match &loaded {
        Some(loaded) => err.scrubbed(|text| {
            crate::masking::mask(&loaded.grants.settings.redact(text)).into_owned()
        }),
        None => err,
    });
    services.audit.record(AuditRecord {
        version: loaded.as_ref().map(|l| l.manifest.version.to_string()),
        status: Some(if result.is_ok() { "ok" } else { "error" }.into()),
        code: result.as_ref().err().map(|err| err.code().to_owned()),
        latency_us: Some(started.elapsed().as_micros() as u64),
        input: Some(scrub(&String::from_utf8_lossy(input))),
        output: Some(match &result {
            Ok(output) => scrub(&output.output),
            Err(err) => scrub(&err.to_string()),
        }),
        ..record
    });
    result
}

async fn route_and_run(
    services: CallServices<'_>,
    request: InvokeRequest<'_>,
    started: Instant,
) -> (
    Result<InvokeOutput, InvokeError>,
    Option<Arc<LoadedConnector>>,
) {
    let InvokeRequest {
        connector,
        operation,
        context,
        input,
        idempotency_key,
        ..
    } = request;
    let CallServices {
        registry,
        pipelines,
        metrics,
        ..
    } = services;
    let Some(routed) = registry.route(connector, &context) else {
        return (
            Err(InvokeError::ConnectorNotFound(connector.to_owned())),
            None,
        );
    };
    let loaded = routed.loaded.clone();
    let Some(compiled) = loaded.operation(operation) else {
        let err = InvokeError::OperationNotFound {
            connector: connector.to_owned(),
            operation: operation.to_owned(),
            available: loaded
                .info
                .operations
                .iter()
                .map(|op| op.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        };
        return (Err(err), Some(loaded));
    };
    let labels = CallLabels {
        connector: connector.to_owned(),
        version: loaded.manifest.version.to_string(),
        operation: operation.to_owned(),
    };
    let recorded = |result: Result<InvokeOutput, InvokeError>| {
        let code = result.as_ref().map_or_else(InvokeError::code, |_| "ok");
        metrics.record_call(
            &labels,
            crate::capabilities::now_ms(),
            code,
            started.elapsed(),
        );
        (result, Some(loaded.clone()))
    };
    let text = match std::str::from_utf8(input) {
        Ok(text) => text,
        Err(err) => return recorded(Err(InvokeError::InvalidJson(err.to_string()))),
    };
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(err) => return recorded(Err(InvokeError::InvalidJson(err.to_string()))),
    };
    if let Err(violations) = compiled.validate_input(&value) {
        return recorded(Err(InvokeError::SchemaViolation {
            operation: operation.to_owned(),
            violations,
        }));
    }
    let call = PipelineCall {
        loaded: &loaded,
        context: Arc::new(context),
        operation,
        input: &value,
        input_text: text,
        may_retry: compiled.info.idempotent || idempotency_key,
    };
    // The active version's settings govern the connector's pipeline, so a
    // canary with other settings does not flip it back and forth.
    let pipeline = pipelines.of(&routed.active);
    let result = pipeline.call(registry.runtime(), call).await;
    let side = routed.side;
    // What the version did for the caller: ran (well or not), or refused
    // the call with its breaker open (and no fallback), which counts as a
    // failure — so a canary candidate whose breaker opened is still rolled back.
    let counted = match &result {
        Ok(answer) => matches!(answer.served, Served::Ran { .. }).then_some(false),
        Err(PipelineError::Call { error, .. }) => Some(counts_against(error)),
        Err(PipelineError::CircuitOpen { .. }) => Some(true),
        Err(PipelineError::Refused(_)) => None,
    };
    if let Some(failed) = counted {
        let latency = started.elapsed();
        metrics.record_outcome(connector, crate::capabilities::now_ms(), failed, latency);
        registry.finish(routed, latency, failed);
    }
    recorded(
        result
            .map(|answer| InvokeOutput {
                output: answer.output,
                version: loaded.manifest.version.clone(),
                side,
                served: answer.served,
            })
            .map_err(InvokeError::from),
    )
}
