//! Durable, shared state behind traits.
//!
//! Everything that must survive a restart — connector packages, versions and
//! deployments, config and secrets, connector key-value data, emitted events,
//! the audit log, idempotency answers, pipeline overrides — is reached
//! through the traits here. [`SledStore`] is the embedded implementation and the
//! only code that touches sled; a clustered store implements the same traits.
//! Per-host state (instance pools, compiled code) is not kept here.

mod queue;
mod sled_store;

pub use queue::{
    Appended, AttemptRecord, DeliveryRecord, DeliveryState, DeliveryStore, EventConfigKind,
    EventConfigStore, EventLog, StoredEvent, Target,
};
pub use sled_store::SledStore;

use serde::{Deserialize, Serialize};

/// A failure of the underlying storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine reported an error (disk full, I/O error, ...).
    #[error("storage failed: {0}")]
    Backend(String),
    /// Stored bytes could not be decoded; the data directory is damaged.
    #[error("stored record `{key}` is damaged: {reason}")]
    Corrupt {
        /// The key of the damaged record.
        key: String,
        /// What was wrong with it.
        reason: String,
    },
}

/// Result alias for storage operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// How a connector version came to be installed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallSource {
    /// Uploaded through the API.
    #[default]
    Api,
    /// Installed from the plugins directory.
    PluginsDir,
}

/// One installed connector version as persisted: its manifest text and package hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// The connector's name.
    pub name: String,
    /// The semantic version, as written in the manifest.
    pub version: String,
    /// The manifest exactly as uploaded (TOML).
    pub manifest: String,
    /// Hex SHA-256 of the component bytes; the key of its package.
    pub package_hash: String,
    /// When it was installed, in milliseconds since the Unix epoch.
    pub installed_at_ms: u64,
    /// How it was installed.
    pub source: InstallSource,
    /// The id of the trusted key whose signature was verified, if any.
    pub signed_by: Option<String>,
}

/// Which versions of one connector serve its calls, as persisted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// The version serving every call not routed to the canary.
    pub active: Option<String>,
    /// The version that was active before, for rollback.
    pub previous: Option<String>,
    /// The canary running, if any.
    pub canary: Option<CanaryRecord>,
    /// Why the last canary was aborted, if one was.
    pub last_abort: Option<AbortRecord>,
}

/// A running canary as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryRecord {
    /// The candidate version.
    pub version: String,
    /// Share of the remaining calls sent to the candidate, in basis points (0..=10000).
    pub weight_bp: u16,
    /// Agents always routed to the candidate.
    pub agents: Vec<String>,
    /// Channels always routed to the candidate.
    pub channels: Vec<String>,
    /// Tenants always routed to the candidate.
    pub tenants: Vec<String>,
    /// Seeds the sticky hash, so a canary keeps its cohort across restarts.
    pub seed: u64,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
}

/// Why a canary ended without being promoted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortRecord {
    /// The candidate version that was aborted.
    pub version: String,
    /// What an operator or the automatic rollback said.
    pub reason: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Whether the host aborted it on its own.
    pub automatic: bool,
}

/// Installed connector versions, their packages and which of them serve.
pub trait ConnectorStore: Send + Sync {
    /// Stores component bytes under their content hash.
    fn put_package(&self, hash: &str, bytes: &[u8]) -> StoreResult<()>;
    /// Reads the component bytes stored under `hash`.
    fn get_package(&self, hash: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Stores (or replaces) a version record and flushes it to disk.
    fn put_version(&self, record: &VersionRecord) -> StoreResult<()>;
    /// Every installed version, ordered by name; a damaged record is an
    /// `Err` in its place (keyed `name@version`) so the others still load.
    fn list_versions(&self) -> StoreResult<Vec<(String, StoreResult<VersionRecord>)>>;
    /// Removes one version and its package if nothing else uses it.
    /// Returns whether it existed.
    fn delete_version(&self, name: &str, version: &str) -> StoreResult<bool>;
    /// Stores which versions of `name` serve, and flushes it to disk.
    fn put_deployment(&self, name: &str, record: &DeploymentRecord) -> StoreResult<()>;
    /// Every connector's deployment, by name.
    fn list_deployments(&self) -> StoreResult<Vec<(String, StoreResult<DeploymentRecord>)>>;
    /// Removes every version of a connector, its deployment, its settings and
    /// the packages nothing else uses. Returns whether anything existed.
    fn delete_connector(&self, name: &str) -> StoreResult<bool>;
}

/// Which kind of operator setting a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    /// A plain configuration value, readable through the API.
    Config,
    /// A secret, write-only through the API.
    Secret,
}

/// Operator-provided config values and secrets, per connector.
pub trait SettingsStore: Send + Sync {
    /// Sets `key` of `connector` to `value` and flushes it to disk.
    fn set_setting(
        &self,
        kind: SettingKind,
        connector: &str,
        key: &str,
        value: &str,
    ) -> StoreResult<()>;
    /// Removes a setting; returns whether it existed.
    fn delete_setting(&self, kind: SettingKind, connector: &str, key: &str) -> StoreResult<bool>;
    /// Every setting of one kind for `connector`, as `(key, value)` pairs.
    fn list_settings(
        &self,
        kind: SettingKind,
        connector: &str,
    ) -> StoreResult<Vec<(String, String)>>;
    /// Seals every secret under the current master key (values written
    /// before sealing, or under an older key); returns how many changed.
    fn reseal_secrets(&self) -> StoreResult<usize>;
}

/// The scope of a connector's key-value data: one connector, one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvScope {
    /// The connector that owns the data.
    pub connector: String,
    /// The tenant the data belongs to.
    pub tenant: String,
}

/// Connector key-value data with optional expiry.
pub trait KvStore: Send + Sync {
    /// The live value of `key`, or `None` if absent or expired at `now_ms`.
    fn kv_get(&self, scope: &KvScope, key: &str, now_ms: u64) -> StoreResult<Option<Vec<u8>>>;
    /// Stores `value`, expiring at `expires_at_ms` if given.
    fn kv_set(
        &self,
        scope: &KvScope,
        key: &str,
        value: &[u8],
        expires_at_ms: Option<u64>,
    ) -> StoreResult<()>;
    /// Removes `key`.
    fn kv_delete(&self, scope: &KvScope, key: &str) -> StoreResult<()>;
    /// Stores `value` only if `key` holds no value live at `now_ms`; returns whether it
    /// stored. Atomic: of racing calls exactly one stores.
    fn kv_set_if_absent(
        &self,
        scope: &KvScope,
        key: &str,
        value: &[u8],
        expires_at_ms: Option<u64>,
        now_ms: u64,
    ) -> StoreResult<bool>;
    /// Removes every entry that expired before `now_ms`; returns how many.
    fn kv_sweep_expired(&self, now_ms: u64) -> StoreResult<usize>;
}

/// The first answer to a call made with an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotentResult {
    /// Hex SHA-256 of the request that produced it.
    pub request_hash: String,
    /// Its HTTP status.
    pub status: u16,
    /// Its JSON body.
    pub body: String,
    /// The version that served it, when one did.
    pub version: Option<String>,
    /// When it was stored, in milliseconds since the Unix epoch.
    pub stored_at_ms: u64,
}

/// First answers to calls made with an idempotency key.
pub trait IdempotencyStore: Send + Sync {
    /// The answer stored under `key`.
    fn get_idempotent(&self, key: &str) -> StoreResult<Option<IdempotentResult>>;
    /// Stores `result` under `key` and flushes it to disk.
    fn put_idempotent(&self, key: &str, result: &IdempotentResult) -> StoreResult<()>;
    /// Removes the answers stored before `before_ms`; returns how many.
    fn sweep_idempotent(&self, before_ms: u64) -> StoreResult<usize>;
}

/// Operators' replacements for connectors' `[pipeline]` settings, as JSON.
pub trait PipelineOverrideStore: Send + Sync {
    /// Stores the override of `connector` and flushes it to disk.
    fn put_pipeline_override(&self, connector: &str, json: &str) -> StoreResult<()>;
    /// Removes it; returns whether it existed.
    fn delete_pipeline_override(&self, connector: &str) -> StoreResult<bool>;
    /// Every override, by connector.
    fn list_pipeline_overrides(&self) -> StoreResult<Vec<(String, String)>>;
}

/// What an audit record is about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// An operator's or the host's change: install, activate, settings, keys.
    #[default]
    Admin,
    /// A call of an operation.
    Call,
    /// A webhook received.
    Webhook,
    /// An event delivered to a subscription, rule or connector.
    Delivery,
}

impl AuditKind {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Admin => "admin",
            AuditKind::Call => "call",
            AuditKind::Webhook => "webhook",
            AuditKind::Delivery => "delivery",
        }
    }
}

/// One entry of the audit log: who did what, for whom, how it went.
/// Text fields hold no secret value and personal data masked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// What it is about.
    #[serde(default)]
    pub kind: AuditKind,
    /// Who: a key id (`sbk_…`), or the host's own `plugins-dir`,
    /// `auto-rollback`, `startup`, `dispatcher`, `provider`.
    pub actor: String,
    /// What, as a dotted verb such as `canary.aborted` or `call`.
    pub action: String,
    /// The connector concerned.
    pub connector: String,
    /// The version concerned, if one is.
    pub version: Option<String>,
    /// Details for people.
    pub detail: String,
    /// The tenant it was for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The operation (calls), hook (webhooks) or target (deliveries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The agent the call was for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `ok` or `error`, for calls, webhooks and deliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The error code, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// How long it took, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// The start of the input, masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// The start of the output (or the error message), masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// The durable, append-only audit log.
pub trait AuditLog: Send + Sync {
    /// Appends `record` and flushes it to disk before returning its sequence number.
    fn append_audit(&self, record: &AuditRecord) -> StoreResult<u64>;
    /// Appends `records` in order with one flush.
    fn append_audit_batch(&self, records: &[AuditRecord]) -> StoreResult<()>;
    /// Records with a sequence number of at least `from`, oldest first, at most `limit`.
    fn read_audit(&self, from: u64, limit: usize) -> StoreResult<Vec<(u64, AuditRecord)>>;
    /// Records with a sequence number below `before`, newest first, at most `limit`.
    fn read_audit_back(&self, before: u64, limit: usize) -> StoreResult<Vec<(u64, AuditRecord)>>;
    /// Removes the oldest records, up to the first written at or after
    /// `before_ms`; returns how many.
    fn sweep_audit(&self, before_ms: u64) -> StoreResult<usize>;
}

/// One API key as persisted: never the key itself, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// The public id, `sbk_` and 16 hex digits; the key starts with it.
    pub id: String,
    /// What the key is for, for people.
    pub name: String,
    /// The tenant it is bound to; `None` for a host-wide key.
    pub tenant: Option<String>,
    /// Its scopes, by name.
    pub scopes: Vec<String>,
    /// Hex SHA-256 of the whole key.
    pub hash: String,
    /// When it was made, in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// The key that made it, or `bootstrap`.
    pub created_by: String,
}

/// API keys.
pub trait KeyStore: Send + Sync {
    /// Stores a key record and flushes it to disk.
    fn put_api_key(&self, record: &ApiKeyRecord) -> StoreResult<()>;
    /// Removes a key; returns whether it existed.
    fn delete_api_key(&self, id: &str) -> StoreResult<bool>;
    /// Every key record; a damaged one is an `Err` in its place.
    fn list_api_keys(&self) -> StoreResult<Vec<(String, StoreResult<ApiKeyRecord>)>>;
}

/// Runs store work on the blocking pool, so a flush never stalls the async
/// workers; a task that fails to finish becomes a [`StoreError`].
pub async fn blocking<T, E, F>(work: F) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static + From<StoreError>,
{
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(
            |join| Err(StoreError::Backend(format!("store task failed: {join}")).into()),
        )
}
