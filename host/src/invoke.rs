//! Invoking a connector operation, independent of how the call arrived.
//!
//! Resolves the connector and operation, parses and validates the input
//! against the operation's schema, and runs the call. The HTTP API, the
//! benchmarks and later the batch API all come through here.

use std::sync::Arc;
use std::time::Instant;

use crate::model::CallContext;
use crate::registry::Registry;
use crate::registry::canary::Side;
use crate::runtime::call::CallError;

/// A successful call.
#[derive(Debug, Clone)]
pub struct InvokeOutput {
    /// The operation's JSON output, as text.
    pub output: String,
    /// The version that served the call.
    pub version: semver::Version,
    /// Which side of a running canary served it.
    pub side: Option<Side>,
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
    /// The call itself failed.
    #[error("{0}")]
    Call(#[from] CallError),
}

/// Invokes `operation` of `connector` with the raw JSON body `input`, on
/// the version the registry routes this call to.
pub async fn invoke(
    registry: &Registry,
    connector: &str,
    operation: &str,
    context: CallContext,
    input: &[u8],
) -> Result<InvokeOutput, InvokeError> {
    let routed = registry
        .route(connector, &context)
        .ok_or_else(|| InvokeError::ConnectorNotFound(connector.to_owned()))?;
    let loaded = routed.loaded.clone();
    let compiled = loaded
        .operation(operation)
        .ok_or_else(|| InvokeError::OperationNotFound {
            connector: connector.to_owned(),
            operation: operation.to_owned(),
            available: loaded
                .info
                .operations
                .iter()
                .map(|op| op.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let text =
        std::str::from_utf8(input).map_err(|err| InvokeError::InvalidJson(err.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|err| InvokeError::InvalidJson(err.to_string()))?;
    compiled
        .validate_input(&value)
        .map_err(|violations| InvokeError::SchemaViolation {
            operation: operation.to_owned(),
            violations,
        })?;
    let started = Instant::now();
    let result = registry
        .runtime()
        .invoke(
            &loaded.prepared,
            &loaded.grants,
            Arc::new(context),
            operation,
            text,
        )
        .await;
    let side = routed.side;
    registry.finish(
        routed,
        started.elapsed(),
        result.as_ref().is_err_and(is_connector_failure),
    );
    Ok(InvokeOutput {
        output: result?,
        version: loaded.manifest.version.clone(),
        side,
    })
}

/// Whether a failed call counts against the version that served it: a
/// business answer (a connector error it does not call retryable, such as
/// "no such parcel"), a full instance pool and a call cut off by a drain do not.
fn is_connector_failure(err: &CallError) -> bool {
    match err {
        CallError::Connector(err) => err.retryable,
        CallError::CapacityExhausted | CallError::VersionUnloaded => false,
        _ => true,
    }
}
