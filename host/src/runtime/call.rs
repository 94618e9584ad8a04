//! One call into a connector: a fresh store, its limits, and what went wrong.
//!
//! Each call gets its own `Store` with a locked-down WASI context (no files,
//! no environment, no sockets, stdio captured into the log), a limiter for
//! memory, tables and instances, and a wall-clock deadline. The deadline is
//! enforced twice: the epoch callback interrupts guest code that runs past
//! it (yielding to the executor every tick so a spinning guest never starves
//! other calls), and a timer around the whole call ends it while it waits on
//! a host function such as outbound HTTP.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use super::limits::{CallLimiter, INSTANCE_COUNT_EXCEEDED, LimitExceeded, Limits, millis};
use super::stdio::GuestOutput;
use tokio::sync::Notify;

use crate::capabilities::CallCapabilities;
use crate::model::ConnectorError;

/// The data of one call's store.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: CallLimiter,
    /// What the call may use.
    pub caps: Arc<CallCapabilities>,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Why a call into a connector failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The connector returned an error of its own.
    #[error("{0}")]
    Connector(ConnectorError),
    /// The call ran past its deadline.
    #[error("the connector did not finish within its {deadline_ms} ms deadline")]
    DeadlineExceeded {
        /// The deadline in milliseconds.
        deadline_ms: u64,
    },
    /// The instance asked for more memory or table space than allowed.
    #[error("{0}")]
    LimitExceeded(LimitExceeded),
    /// The guest trapped (a panic, `unreachable`, a stack overflow, ...).
    #[error("the connector crashed: {0}")]
    Trapped(String),
    /// The output is larger than the connector's `output_bytes`.
    #[error("the connector returned {size} bytes; its limit is {limit}")]
    OutputTooLarge {
        /// Bytes returned.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The output is not a JSON document.
    #[error("the connector returned output that is not JSON: {0}")]
    InvalidOutput(String),
    /// The version was replaced and its drain deadline passed mid-call.
    #[error(
        "this connector version was replaced and unloaded while the call ran; retry to reach the version serving now"
    )]
    VersionUnloaded,
    /// Every instance slot is in use.
    #[error("the host is at its instance capacity; try again shortly")]
    CapacityExhausted,
    /// A host failure unrelated to the caller's input.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CallError {
    /// The stable code callers get for this failure: the connector's own
    /// code for its errors, the host's otherwise.
    pub fn code(&self) -> &str {
        match self {
            CallError::Connector(err) => &err.code,
            CallError::DeadlineExceeded { .. } => "deadline_exceeded",
            CallError::LimitExceeded(LimitExceeded::Memory { .. }) => "memory_limit_exceeded",
            CallError::LimitExceeded(LimitExceeded::Instances { .. }) => "instance_limit_exceeded",
            CallError::LimitExceeded(LimitExceeded::TableElements { .. }) => "table_limit_exceeded",
            CallError::Trapped(_) => "connector_trapped",
            CallError::OutputTooLarge { .. } => "output_too_large",
            CallError::InvalidOutput(_) => "invalid_output",
            CallError::VersionUnloaded => "version_unloaded",
            CallError::CapacityExhausted => "capacity_exhausted",
            CallError::Internal(_) => "internal",
        }
    }
}

/// Builds the store for one call.
pub fn new_store(engine: &wasmtime::Engine, caps: Arc<CallCapabilities>) -> Store<CallState> {
    let limits = &caps.grants.limits;
    let mut wasi = WasiCtx::builder();
    wasi.stdout(GuestOutput::stdout(caps.clone()))
        .stderr(GuestOutput::stderr(caps.clone()))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    let state = CallState {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        limiter: CallLimiter::new(limits),
        caps,
    };
    let deadline = state.caps.deadline;
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store
}

/// When calls still running on a replaced version are cut off.
///
/// Shared by every call of one version. Unset while the version serves (or
/// serves again after a quick rollback); once set, [`DrainDeadline::cut_off`]
/// resolves at that time, whether the guest is computing or waiting on a host
/// function.
#[derive(Debug, Default)]
pub struct DrainDeadline {
    /// Milliseconds on [`monotonic_ms`]'s clock; zero when unset.
    at_ms: AtomicU64,
    changed: Notify,
}

/// Milliseconds since the first call in this process, plus one (so never
/// zero); a clock that wall-clock steps do not move.
fn monotonic_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    millis(START.get_or_init(Instant::now).elapsed()).saturating_add(1)
}

impl DrainDeadline {
    /// Cuts off calls still running `after` from now.
    pub fn start(&self, after: Duration) {
        let at = monotonic_ms().saturating_add(millis(after));
        self.at_ms.store(at, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// The version serves again: no cut-off.
    pub fn clear(&self) {
        self.at_ms.store(0, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Resolves once the cut-off has passed.
    pub async fn cut_off(&self) {
        loop {
            let changed = self.changed.notified();
            match self.at_ms.load(Ordering::Acquire) {
                0 => changed.await,
                at => {
                    let left = Duration::from_millis(at.saturating_sub(monotonic_ms()));
                    if left.is_zero() {
                        return;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(left) => {}
                        () = changed => {}
                    }
                }
            }
        }
    }
}

/// Classifies a failure raised while running guest code under `limits`.
pub fn classify(err: &wasmtime::Error, limits: &Limits) -> CallError {
    let deadline_ms = millis(limits.deadline);
    if let Some(limit) = err.downcast_ref::<LimitExceeded>() {
        return CallError::LimitExceeded(*limit);
    }
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return match trap {
            Trap::Interrupt => CallError::DeadlineExceeded { deadline_ms },
            other => CallError::Trapped(other.to_string()),
        };
    }
    if err
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return CallError::CapacityExhausted;
    }
    if err.to_string().starts_with(INSTANCE_COUNT_EXCEEDED) {
        return CallError::LimitExceeded(LimitExceeded::Instances {
            limit: limits.instances,
        });
    }
    CallError::Internal(format!("{err:#}"))
}
