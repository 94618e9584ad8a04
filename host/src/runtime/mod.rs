//! Everything that knows wasmtime: the engine, compiling and checking
//! components, and running one call in a fresh, limited store.
//!
//! A connector version is compiled once (or loaded from the on-disk cache),
//! checked against the world, and pre-instantiated into a [`Prepared`]
//! component; every call then instantiates it into its own store.

mod bindings;
pub mod call;
pub mod compile_cache;
pub mod engine;
pub mod limits;
mod stdio;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};

use self::bindings::ConnectorBindingsPre;
use self::call::{CallError, CallState, classify, new_store};
use self::compile_cache::{CacheOutcome, CompileCache};
use self::engine::{EngineSettings, EpochTicker, build_engine};
use crate::capabilities::{CallCapabilities, ConnectorGrants, HostServices, UpstreamReport};
use crate::model::{CallContext, ConnectorInfo, Event, HttpRequest, WebhookOutcome};

use bindings::WORLD;

/// Why a component could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a WebAssembly component.
    #[error("{0}")]
    InvalidComponent(String),
    /// The component does not implement the connector world.
    #[error("{0}")]
    WorldMismatch(String),
    /// The host failed while compiling.
    #[error("internal error while loading the component: {0}")]
    Internal(String),
}

/// One invocation of an operation.
pub struct Invocation<'a> {
    /// Who the call is for.
    pub context: Arc<CallContext>,
    /// The operation.
    pub operation: &'a str,
    /// Its JSON input, as text.
    pub input: &'a str,
    /// When the call must have ended, host functions included.
    pub deadline: Instant,
    /// Where upstreams' `Retry-After` is noted.
    pub upstream: Arc<UpstreamReport>,
}

/// A component compiled, checked against the world and pre-instantiated.
#[derive(Clone)]
pub struct Prepared {
    pre: ConnectorBindingsPre<CallState>,
    /// Whether it came from the compile cache.
    pub cache: CacheOutcome,
}

/// The engine, the linker with every host import, and the compile cache.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    cache: CompileCache,
    services: Arc<HostServices>,
    _ticker: EpochTicker,
}

/// A connector's own error, with every secret value scrubbed from its message.
fn connector_error(grants: &ConnectorGrants, mut err: crate::model::ConnectorError) -> CallError {
    err.message = grants.settings.redact(&err.message);
    CallError::Connector(err)
}

const COMPONENT_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
const MODULE_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

fn check_preamble(wasm: &[u8]) -> Result<(), LoadError> {
    match wasm.get(..8) {
        Some(p) if p == COMPONENT_PREAMBLE => Ok(()),
        Some(p) if p == MODULE_PREAMBLE => Err(LoadError::InvalidComponent(
            "this is a core WebAssembly module, not a component; build it for wasm32-wasip2 or wrap it with `wasm-tools component new`".into(),
        )),
        _ => Err(LoadError::InvalidComponent(
            "this is not a WebAssembly component (it does not start with the component preamble)".into(),
        )),
    }
}

impl Runtime {
    /// Builds the engine, linker and cache and starts the epoch ticker.
    pub fn new(
        settings: &EngineSettings,
        cache_dir: &std::path::Path,
        services: Arc<HostServices>,
    ) -> anyhow::Result<Self> {
        let engine = build_engine(settings)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::add_to_linker(&mut linker)?;
        let cache = CompileCache::new(cache_dir, &engine)?;
        let ticker = EpochTicker::start(engine.clone())?;
        Ok(Self {
            engine,
            linker,
            cache,
            services,
            _ticker: ticker,
        })
    }

    /// The services every call shares.
    pub fn services(&self) -> &Arc<HostServices> {
        &self.services
    }

    /// Compiles (or loads from cache) and checks a component.
    ///
    /// Compilation runs on a blocking thread so it never stalls calls.
    pub async fn prepare(
        self: &Arc<Self>,
        wasm: Arc<[u8]>,
        package_hash: String,
    ) -> Result<Prepared, LoadError> {
        check_preamble(&wasm)?;
        let runtime = self.clone();
        let compiled = tokio::task::spawn_blocking(move || {
            runtime
                .cache
                .load_or_compile(&runtime.engine, &wasm, &package_hash)
        })
        .await
        .map_err(|err| LoadError::Internal(err.to_string()))?;
        let (component, cache) = compiled.map_err(|err| {
            LoadError::InvalidComponent(format!("the component is not valid: {}", err.root_cause()))
        })?;
        self.check_exports(&component)?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|err| {
            LoadError::WorldMismatch(format!(
                "the component needs an import the host does not provide: {}",
                err.root_cause()
            ))
        })?;
        let pre = ConnectorBindingsPre::new(instance_pre).map_err(|err| {
            LoadError::WorldMismatch(format!(
                "the component's exports do not match the world {WORLD}: {err:#}"
            ))
        })?;
        Ok(Prepared { pre, cache })
    }

    fn check_exports(&self, component: &Component) -> Result<(), LoadError> {
        let exports: Vec<(String, bool)> = component
            .component_type()
            .exports(&self.engine)
            .map(|(name, item)| {
                (
                    name.to_owned(),
                    matches!(item.ty, ComponentItem::ComponentFunc(_)),
                )
            })
            .collect();
        let (mut missing, mut not_functions) = (Vec::new(), Vec::new());
        for required in bindings::REQUIRED_EXPORTS {
            match exports.iter().find(|(name, _)| name == required) {
                None => missing.push(format!("`{required}`")),
                Some((_, false)) => not_functions.push(format!("`{required}`")),
                Some(_) => {}
            }
        }
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("it does not export {}", listed(&missing)));
        }
        if !not_functions.is_empty() {
            problems.push(format!(
                "it exports {} but not as functions",
                listed(&not_functions)
            ));
        }
        if !problems.is_empty() {
            return Err(LoadError::WorldMismatch(format!(
                "the component does not implement the world {WORLD}: {}",
                problems.join("; ")
            )));
        }
        Ok(())
    }

    /// Runs `body` in a fresh store for one call under `grants`' limits,
    /// ending it at `deadline`.
    async fn run<R, F, Fut>(
        &self,
        grants: &Arc<ConnectorGrants>,
        context: Arc<CallContext>,
        deadline: Instant,
        upstream: Arc<UpstreamReport>,
        body: F,
    ) -> Result<R, CallError>
    where
        F: FnOnce(Store<CallState>) -> Fut,
        Fut: Future<Output = wasmtime::Result<R>>,
    {
        let caps = Arc::new(CallCapabilities::new(
            grants.clone(),
            self.services.clone(),
            context,
            deadline,
            upstream,
        ));
        let store = new_store(&self.engine, caps);
        let deadline_exceeded = || CallError::DeadlineExceeded {
            deadline_ms: limits::millis(grants.limits.deadline),
        };
        tokio::select! {
            biased;
            finished = tokio::time::timeout_at(deadline.into(), body(store)) => match finished {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(err)) => Err(classify(&err, &grants.limits)),
                Err(_) => Err(deadline_exceeded()),
            },
            () = grants.drain.cut_off() => Err(CallError::VersionUnloaded),
        }
    }

    /// Asks a component to describe itself.
    pub async fn describe(
        &self,
        prepared: &Prepared,
        grants: &Arc<ConnectorGrants>,
        context: Arc<CallContext>,
    ) -> Result<ConnectorInfo, CallError> {
        let pre = prepared.pre.clone();
        let deadline = Instant::now() + grants.limits.deadline;
        self.run(
            grants,
            context,
            deadline,
            Arc::default(),
            |mut store| async move { bindings::describe(&pre, &mut store).await },
        )
        .await
    }

    /// Invokes an operation with its JSON input; returns JSON text.
    pub async fn invoke(
        &self,
        prepared: &Prepared,
        grants: &Arc<ConnectorGrants>,
        call: Invocation<'_>,
    ) -> Result<String, CallError> {
        let pre = prepared.pre.clone();
        let Invocation {
            context,
            operation,
            input,
            deadline,
            upstream,
        } = call;
        let output = self
            .run(grants, context, deadline, upstream, |mut store| async move {
                bindings::invoke(&pre, &mut store, operation, input).await
            })
            .await?
            .map_err(|err| connector_error(grants, err))?;
        let limit = grants.limits.output_bytes;
        if output.len() > limit {
            return Err(CallError::OutputTooLarge {
                size: output.len(),
                limit,
            });
        }
        serde_json::from_str::<serde::de::IgnoredAny>(&output)
            .map_err(|err| CallError::InvalidOutput(err.to_string()))?;
        Ok(output)
    }

    /// Hands a provider's request to the connector's webhook `hook`.
    ///
    /// The reply body and the events' payloads together count against the
    /// connector's `output_bytes`.
    pub async fn handle_webhook(
        &self,
        prepared: &Prepared,
        grants: &Arc<ConnectorGrants>,
        context: Arc<CallContext>,
        hook: &str,
        request: HttpRequest,
    ) -> Result<WebhookOutcome, CallError> {
        let pre = prepared.pre.clone();
        let deadline = Instant::now() + grants.limits.deadline;
        let outcome = self
            .run(
                grants,
                context,
                deadline,
                Arc::default(),
                |mut store| async move {
                    bindings::handle_webhook(&pre, &mut store, hook, request).await
                },
            )
            .await?
            .map_err(|err| connector_error(grants, err))?;
        let size = outcome.response.body.len()
            + outcome
                .events
                .iter()
                .map(|e| e.data.len() + e.id.len() + e.kind.len())
                .sum::<usize>();
        let limit = grants.limits.output_bytes;
        if size > limit {
            return Err(CallError::OutputTooLarge { size, limit });
        }
        Ok(outcome)
    }

    /// Hands an event to the connector's `on-event`.
    pub async fn on_event(
        &self,
        prepared: &Prepared,
        grants: &Arc<ConnectorGrants>,
        context: Arc<CallContext>,
        event: Event,
    ) -> Result<(), CallError> {
        let pre = prepared.pre.clone();
        let deadline = Instant::now() + grants.limits.deadline;
        self.run(
            grants,
            context,
            deadline,
            Arc::default(),
            |mut store| async move { bindings::on_event(&pre, &mut store, event).await },
        )
        .await?
        .map_err(|err| connector_error(grants, err))
    }
}

/// `a`, `a and b`, `a, b and c`.
fn listed(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}
