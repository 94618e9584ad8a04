//! Wiring: the store, runtime, registry and API of one running host.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::api::{AppState, BodyLimits, router};
use crate::capabilities::{HostServices, now_ms};
use crate::registry::Registry;
use crate::registry::plugins_dir::PluginOutcome;
use crate::runtime::Runtime;
use crate::runtime::engine::EngineSettings;
use crate::runtime::limits::{LimitCeilings, Limits};
use crate::store::{KvStore, SledStore};

/// How often expired key-value entries are swept.
const KV_SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Everything an operator configures when starting the host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where the store and the compile cache live.
    pub data_dir: PathBuf,
    /// Connector packages to install at start, if any.
    pub plugins_dir: Option<PathBuf>,
    /// Engine sizing.
    pub engine: EngineSettings,
    /// Default per-call limits.
    pub limits: Limits,
    /// Largest limits a manifest may ask for.
    pub ceilings: LimitCeilings,
    /// Request body limits.
    pub body_limits: BodyLimits,
}

impl HostConfig {
    /// Defaults for everything but the data directory.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            plugins_dir: None,
            engine: EngineSettings::default(),
            limits: Limits::default(),
            ceilings: LimitCeilings::default(),
            body_limits: BodyLimits::default(),
        }
    }
}

/// A host: its store and API state.
pub struct App {
    /// The state the API serves.
    pub state: AppState,
    /// The embedded store.
    pub store: Arc<SledStore>,
    config: HostConfig,
}

/// What loading connectors at start did.
#[derive(Debug, Default)]
pub struct StartupReport {
    /// Connectors loaded from the store.
    pub restored: usize,
    /// Connectors installed or replaced from the plugins directory.
    pub installed: Vec<String>,
    /// Failures, as one line each.
    pub failures: Vec<String>,
    /// How long it took.
    pub elapsed: Duration,
}

impl App {
    /// Opens the store and builds the runtime; loads no connector yet.
    pub fn open(config: HostConfig) -> anyhow::Result<Self> {
        let store_dir = config.data_dir.join("store");
        let store = Arc::new(
            SledStore::open(&store_dir)
                .with_context(|| format!("opening the store in {}", store_dir.display()))?,
        );
        let services = Arc::new(HostServices::new(store.clone(), store.clone())?);
        let mut ceilings = config.ceilings.clone();
        ceilings.memory_bytes = ceilings.memory_bytes.min(config.engine.max_memory_bytes);
        config
            .limits
            .check(&ceilings)
            .context("the default limits (the --default-* flags) are out of range")?;
        let runtime = Arc::new(
            Runtime::new(&config.engine, &config.data_dir.join("compiled"), services)
                .context("starting the WebAssembly runtime")?,
        );
        let registry = Arc::new(Registry::new(
            runtime,
            store.clone(),
            config.limits.clone(),
            ceilings,
        ));
        let state = AppState {
            registry,
            ready: Arc::new(AtomicBool::new(false)),
            limits: config.body_limits,
        };
        Ok(Self {
            state,
            store,
            config,
        })
    }

    /// Restores installed connectors, installs the plugins directory, and
    /// marks the host ready. A connector that fails to load is reported and
    /// skipped; the others serve.
    pub async fn load_connectors(&self) -> anyhow::Result<StartupReport> {
        let started = Instant::now();
        let registry = &self.state.registry;
        let mut report = StartupReport::default();
        for (name, err) in registry.restore().await? {
            report.failures.push(format!("{name}: {err}"));
        }
        report.restored = registry.list().len();
        if let Some(dir) = &self.config.plugins_dir {
            let outcomes = registry
                .install_plugins_dir(dir)
                .await
                .with_context(|| format!("reading the plugins directory {}", dir.display()))?;
            for outcome in outcomes {
                match outcome {
                    PluginOutcome::Installed(name) => report.installed.push(name),
                    PluginOutcome::Unchanged(_) => {}
                    PluginOutcome::KeptApiInstall(name) => tracing::info!(
                        connector = name,
                        "kept the version installed through the API over the plugins directory's"
                    ),
                    PluginOutcome::Failed { dir, reason } => {
                        report.failures.push(format!("{}: {reason}", dir.display()))
                    }
                }
            }
        }
        self.state.ready.store(true, Ordering::Release);
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// The API router.
    pub fn router(&self) -> axum::Router {
        router(self.state.clone())
    }

    /// Serves the API on `listen` until `shutdown` resolves, loading
    /// connectors in the background (`/readyz` answers 503 until done).
    pub async fn serve(
        self,
        listen: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let address = listener.local_addr()?;
        println!("switchboard listening on http://{address}");
        let app = Arc::new(self);
        let server = tokio::spawn(
            axum::serve(listener, app.router().into_make_service())
                .with_graceful_shutdown(shutdown)
                .into_future(),
        );
        let report = app.load_connectors().await?;
        for failure in &report.failures {
            tracing::error!(failure, "a connector could not be loaded");
        }
        println!(
            "switchboard ready: {} connectors ({} restored, {} installed from plugins) in {} ms",
            app.state.registry.list().len(),
            report.restored,
            report.installed.len(),
            report.elapsed.as_millis()
        );
        let sweeper = tokio::spawn(sweep_kv(app.store.clone()));
        let served = server.await.context("the server task failed")?;
        sweeper.abort();
        app.store.flush()?;
        served.context("serving HTTP")
    }
}

async fn sweep_kv(store: Arc<SledStore>) {
    let mut interval = tokio::time::interval(KV_SWEEP_EVERY);
    loop {
        interval.tick().await;
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.kv_sweep_expired(now_ms())).await {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => tracing::debug!(removed, "swept expired kv entries"),
            Ok(Err(err)) => tracing::warn!(error = %err, "kv sweep failed"),
            Err(err) => tracing::warn!(error = %err, "kv sweep task failed"),
        }
    }
}
