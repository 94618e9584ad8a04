//! `GET /v1/audit` and `GET /v1/audit/export`: the audit trail, filtered.
//!
//! A caller bound to a tenant sees only records of its tenant.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::tenant_forbidden;
use super::{ApiError, AppState};
use crate::audit::export::Format;
use crate::audit::filter::AuditFilter;
use crate::auth::Caller;
use crate::store::{AuditLog, AuditRecord, blocking};

/// Records read per store round trip while filtering.
const PAGE: usize = 1_000;

/// Most pages one request reads; `next` continues where it stopped.
const PAGES_PER_REQUEST: usize = 10;

/// The query of both routes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    since_ms: Option<u64>,
    until_ms: Option<u64>,
    kind: Option<String>,
    connector: Option<String>,
    operation: Option<String>,
    status: Option<String>,
    code: Option<String>,
    agent: Option<String>,
    tenant: Option<String>,
    actor: Option<String>,
    /// Oldest first: the first sequence number to return.
    #[serde(default)]
    from: u64,
    /// Newest first: return only sequence numbers below this.
    before: Option<u64>,
    /// `oldest` (default) or `newest` first.
    order: Option<String>,
    /// Most records to return (default 100, at most 1000).
    limit: Option<usize>,
    /// Export: `jsonl` (default) or `csv`.
    format: Option<String>,
}

impl AuditQuery {
    /// The filter asked for, kept to a bound caller's tenant.
    fn filter(&self, caller: &Caller) -> Result<AuditFilter, ApiError> {
        let tenant = match (&self.tenant, &caller.tenant) {
            (Some(asked), Some(own)) if asked != own.as_str() => {
                return Err(tenant_forbidden(&format!(
                    "key {} is bound to tenant {own}; it cannot read tenant {asked}'s audit records",
                    caller.id
                )));
            }
            (asked, own) => asked
                .clone()
                .or_else(|| own.as_ref().map(ToString::to_string)),
        };
        let filter = AuditFilter {
            since_ms: self.since_ms,
            until_ms: self.until_ms,
            kind: self.kind.clone(),
            connector: self.connector.clone(),
            operation: self.operation.clone(),
            status: self.status.clone(),
            code: self.code.clone(),
            agent: self.agent.clone(),
            tenant,
            actor: self.actor.clone(),
        };
        filter.check().map_err(ApiError::invalid_query)?;
        Ok(filter)
    }
}

fn record_json(sequence: u64, record: AuditRecord) -> Value {
    let mut value = json!(record);
    value["sequence"] = json!(sequence);
    value
}

/// `GET /v1/audit`: records matching the filters, oldest first from `from`
/// or, with `order=newest`, newest first below `before`. A read scans at
/// most [`PAGES_PER_REQUEST`] pages, so it may return fewer than `limit`
/// records; `next` says where to go on (`null` at the end, newest first).
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let Query(query) = query.map_err(|err| ApiError::invalid_query(err.body_text()))?;
    let filter = query.filter(&caller)?;
    let limit = query.limit.unwrap_or(100).clamp(1, PAGE);
    let newest_first = match query.order.as_deref() {
        None | Some("oldest") => false,
        Some("newest") => true,
        Some(other) => {
            return Err(ApiError::invalid_query(format!(
                "order `{other}` is not oldest or newest"
            )));
        }
    };
    state.audit.settle().await;
    let log = state.audit.log();
    let mut records = Vec::new();
    if newest_first {
        let mut before = query.before.unwrap_or(u64::MAX);
        for _ in 0..PAGES_PER_REQUEST {
            let page = read(&log, move |log| log.read_audit_back(before, PAGE)).await?;
            let exhausted = page.len() < PAGE;
            for (sequence, record) in page {
                before = sequence;
                if filter.matches(&record) {
                    records.push(record_json(sequence, record));
                    if records.len() == limit {
                        return Ok(axum::Json(json!({ "records": records, "next": before })));
                    }
                }
            }
            if exhausted {
                return Ok(axum::Json(json!({ "records": records, "next": null })));
            }
        }
        return Ok(axum::Json(json!({ "records": records, "next": before })));
    }
    let mut from = query.from;
    for _ in 0..PAGES_PER_REQUEST {
        let page = read(&log, move |log| log.read_audit(from, PAGE)).await?;
        let exhausted = page.len() < PAGE;
        for (sequence, record) in page {
            from = sequence + 1;
            if filter.matches(&record) {
                records.push(record_json(sequence, record));
                if records.len() == limit {
                    return Ok(axum::Json(json!({ "records": records, "next": from })));
                }
            }
        }
        if exhausted {
            break;
        }
    }
    Ok(axum::Json(json!({ "records": records, "next": from })))
}

async fn read<F>(
    log: &std::sync::Arc<dyn AuditLog>,
    page: F,
) -> Result<Vec<(u64, AuditRecord)>, ApiError>
where
    F: FnOnce(&dyn AuditLog) -> crate::store::StoreResult<Vec<(u64, AuditRecord)>> + Send + 'static,
{
    let log = log.clone();
    Ok(blocking(move || page(log.as_ref())).await?)
}

/// `GET /v1/audit/export?format=jsonl|csv`: every matching record from
/// `from` on, oldest first, streamed as a download.
pub async fn export(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|err| ApiError::invalid_query(err.body_text()))?;
    let filter = query.filter(&caller)?;
    let format = match query.format.as_deref() {
        None => Format::JsonLines,
        Some(name) => Format::parse(name).ok_or_else(|| {
            ApiError::invalid_query(format!("format `{name}` is not jsonl or csv"))
        })?,
    };
    state.audit.settle().await;
    let log = state.audit.log();
    let header_chunk = futures::stream::iter(
        (!format.header().is_empty()).then(|| Ok::<_, std::io::Error>(format.header().to_owned())),
    );
    let pages = futures::stream::unfold(Some(query.from), move |from| {
        let (log, filter) = (log.clone(), filter.clone());
        async move {
            let from = from?;
            let page = match read(&log, move |log| log.read_audit(from, PAGE)).await {
                Ok(page) => page,
                Err(err) => {
                    tracing::error!(code = %err.code, "the audit export stopped: the store failed");
                    return Some((Err(std::io::Error::other(err.message)), None));
                }
            };
            let next = (page.len() == PAGE)
                .then(|| page.last().map(|(sequence, _)| sequence + 1))
                .flatten();
            let chunk: String = page
                .iter()
                .filter(|(_, record)| filter.matches(record))
                .map(|(sequence, record)| format.line(*sequence, record))
                .collect();
            Some((Ok(chunk), next))
        }
    });
    let body = Body::from_stream(futures::StreamExt::chain(header_chunk, pages));
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"audit.{}\"", format.extension()),
            ),
        ],
        body,
    )
        .into_response())
}
