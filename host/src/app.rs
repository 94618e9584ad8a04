//! Wiring: the store, runtime, registry and API of one running host.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::serve::ListenerExt;

use crate::alerts::{AlertPolicy, Alerts};
use crate::api::{AppState, BodyLimits, Services, router};
use crate::audit::AuditTrail;
use crate::auth::{ApiKeys, NewKey, Scope, TokenIssuer};
use crate::capabilities::{HostServices, now_ms};
use crate::events::dispatcher::{self, DispatchServices, DispatcherHandle};
use crate::events::{EventIngest, EventSettings, Events};
use crate::metrics::Metrics;
use crate::pipeline::Pipelines;
use crate::pipeline::idempotency::Idempotency;
use crate::registry::lifecycle::Activation;
use crate::registry::plugins_dir::PluginOutcome;
use crate::registry::watch::{PluginsDirWatcher, settled_snapshot};
use crate::registry::{LifecyclePolicy, Registry};
use crate::runtime::Runtime;
use crate::runtime::engine::EngineSettings;
use crate::runtime::limits::{LimitCeilings, Limits};
use crate::sealing::{MasterKeySource, MasterKeys};
use crate::store::{KvStore, SettingsStore, SledStore};
use crate::tls::{TlsListener, TlsSettings};

/// How often expired key-value entries and idempotency answers are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

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
    /// Drain deadline, automatic rollback thresholds, trusted signing keys.
    pub lifecycle: LifecyclePolicy,
    /// What becomes of a new version found in the plugins directory.
    pub hot_load: Activation,
    /// Whether the plugins directory is watched for new packages after start.
    pub watch_plugins_dir: bool,
    /// How long the plugins directory must be quiet before it is read again.
    pub watch_quiet: Duration,
    /// How long answers to calls with an idempotency key are kept.
    pub idempotency_ttl: Duration,
    /// Retries, concurrency and failure handling of event deliveries.
    pub events: EventSettings,
    /// The alert rules.
    pub alerts: AlertPolicy,
    /// Serve HTTPS with this certificate instead of plain HTTP.
    pub tls: Option<TlsSettings>,
    /// Where the master key sealing secrets comes from.
    pub master_key: MasterKeySource,
    /// How long OAuth2 bearer tokens live.
    pub token_lifetime: Duration,
    /// How long audit records are kept.
    pub audit_retention: Duration,
    /// A host-wide admin key to make sure exists (from automation); without
    /// one, a host with no keys makes one and prints it once.
    pub admin_key: Option<String>,
}

impl HostConfig {
    /// Defaults for everything but the data directory.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir: data_dir.clone(),
            plugins_dir: None,
            engine: EngineSettings::default(),
            limits: Limits::default(),
            ceilings: LimitCeilings::default(),
            body_limits: BodyLimits::default(),
            lifecycle: LifecyclePolicy::default(),
            hot_load: Activation::ActivateIfNewer,
            watch_plugins_dir: true,
            watch_quiet: Duration::from_millis(500),
            idempotency_ttl: Duration::from_secs(24 * 60 * 60),
            events: EventSettings::default(),
            alerts: AlertPolicy::default(),
            tls: None,
            master_key: MasterKeySource::File(data_dir.join("master.key")),
            token_lifetime: Duration::from_secs(15 * 60),
            audit_retention: Duration::from_secs(90 * 24 * 60 * 60),
            admin_key: None,
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
    dispatcher: tokio::sync::Mutex<Option<DispatcherHandle>>,
}

/// What loading connectors at start did.
#[derive(Debug, Default)]
pub struct StartupReport {
    /// Connectors loaded from the store.
    pub restored: usize,
    /// Versions installed from the plugins directory, as `name@version`.
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
        let sealer = Arc::new(
            config
                .master_key
                .load()
                .context("loading the master key that seals secrets")?,
        );
        let store = Arc::new(
            SledStore::open(&store_dir, sealer.clone())
                .with_context(|| format!("opening the store in {}", store_dir.display()))?,
        );
        let resealed = store
            .reseal_secrets()
            .context("sealing the stored secrets under the master key")?;
        if resealed > 0 {
            tracing::info!(resealed, "sealed secrets under the current master key");
        }
        let keys = Arc::new(ApiKeys::open(store.clone()).context("reading the API keys")?);
        if let Some(key) = &config.admin_key {
            keys.ensure_admin(key, "admin (from SWITCHBOARD_ADMIN_KEY)")
                .context("installing the admin key given at start")?;
        }
        let metrics = Arc::new(Metrics::with_window(config.alerts.window));
        let ingest = Arc::new(EventIngest::new(store.clone()).context("reading the event log")?);
        let events = Arc::new(
            Events::open(store.clone(), ingest.clone(), config.events.clone())
                .context("reading rules, subscriptions and hook settings")?,
        );
        let services = Arc::new(HostServices::new(store.clone(), ingest)?);
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
        let registry = Registry::new(
            runtime,
            store.clone(),
            config.limits.clone(),
            ceilings,
            config.lifecycle.clone(),
        );
        let state = AppState::new(Services {
            registry,
            audit: AuditTrail::start(store.clone(), config.audit_retention),
            pipelines: Arc::new(
                Pipelines::open(store.clone()).context("reading the pipeline overrides")?,
            ),
            idempotency: Arc::new(Idempotency::new(store.clone(), config.idempotency_ttl)),
            events,
            ready: Arc::new(AtomicBool::new(false)),
            limits: config.body_limits,
            metrics,
            alerts: Arc::new(Alerts::new(config.alerts.clone())),
            max_instances: config.engine.max_instances,
            keys,
            tokens: Arc::new(TokenIssuer::new(config.token_lifetime)),
            master_keys: Arc::new(MasterKeys::new(
                config.master_key.clone(),
                sealer,
                store.clone(),
            )),
        });
        Ok(Self {
            state,
            store,
            config,
            dispatcher: tokio::sync::Mutex::new(None),
        })
    }

    /// Restores installed connectors, installs the plugins directory, and
    /// marks the host ready. A connector that fails to load is reported and
    /// skipped; the others serve.
    pub async fn load_connectors(&self) -> anyhow::Result<StartupReport> {
        let started = Instant::now();
        let registry = &self.state.registry;
        let failures = registry.restore().await?;
        let mut report = StartupReport {
            restored: registry.list().len(),
            failures,
            ..StartupReport::default()
        };
        if let Some(dir) = &self.config.plugins_dir {
            let outcomes = registry
                .install_plugins_dir(dir, &self.config.hot_load)
                .await
                .with_context(|| format!("reading the plugins directory {}", dir.display()))?;
            for outcome in outcomes {
                match outcome {
                    PluginOutcome::Installed(id) => report.installed.push(id),
                    PluginOutcome::Unchanged(_) => {}
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

    /// Starts dispatching events to rules, subscriptions and connectors.
    /// Start it after [`App::load_connectors`], so connectors that subscribe
    /// to events are known when the first events fan out.
    pub async fn start_dispatching(&self) -> anyhow::Result<()> {
        let mut running = self.dispatcher.lock().await;
        if running.is_none() {
            *running = Some(dispatcher::start(DispatchServices {
                events: self.state.events.clone(),
                registry: self.state.registry.clone(),
                pipelines: self.state.pipelines.clone(),
                metrics: self.state.metrics.clone(),
                audit: self.state.audit.clone(),
            })?);
        }
        Ok(())
    }

    /// Stops dispatching; what was in flight is attempted again at the next start.
    pub async fn stop_dispatching(&self) {
        if let Some(running) = self.dispatcher.lock().await.take() {
            running.stop().await;
        }
    }

    /// Makes the first admin key when the host has none, and returns it:
    /// the only time it is shown.
    pub fn first_admin_key(&self) -> anyhow::Result<Option<String>> {
        if !self.state.keys.is_empty() {
            return Ok(None);
        }
        let created = self
            .state
            .keys
            .create(
                NewKey {
                    name: "first admin".into(),
                    tenant: None,
                    scopes: [Scope::Admin].into_iter().collect(),
                },
                None,
            )
            .context("making the first admin key")?;
        Ok(Some(created.key))
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
        let tls = self
            .config
            .tls
            .as_ref()
            .map(crate::tls::server_config)
            .transpose()
            .context("setting up TLS")?;
        if let Some(key) = self.first_admin_key()? {
            println!("switchboard admin key (shown once; keep it): {key}");
        }
        let app = Arc::new(self);
        let service = app
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        let server = match tls {
            Some(config) => {
                println!("switchboard listening on https://{address}");
                let listener = TlsListener::new(listener, config).tap_io(|_| {});
                tokio::spawn(
                    axum::serve(listener, service)
                        .with_graceful_shutdown(shutdown)
                        .into_future(),
                )
            }
            None => {
                println!("switchboard listening on http://{address}");
                tokio::spawn(
                    axum::serve(listener, service)
                        .with_graceful_shutdown(shutdown)
                        .into_future(),
                )
            }
        };
        // Watching starts first, so a package dropped in while loading is not missed.
        let watcher = app.watch_plugins_dir()?;
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
        app.start_dispatching().await?;
        let sweeper = tokio::spawn(sweep(app.store.clone(), app.state.clone()));
        let alerting = tokio::spawn(crate::alerts::run(app.state.clone()));
        let served = server.await.context("the server task failed")?;
        sweeper.abort();
        alerting.abort();
        app.stop_dispatching().await;
        app.state.audit.settle().await;
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        app.store.flush()?;
        served.context("serving HTTP")
    }
}

impl App {
    /// Starts watching the plugins directory, if there is one and watching is on.
    pub fn watch_plugins_dir(&self) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
        let Some(dir) = self.config.plugins_dir.clone() else {
            return Ok(None);
        };
        if !self.config.watch_plugins_dir {
            return Ok(None);
        }
        let quiet = self.config.watch_quiet;
        let mut watcher = PluginsDirWatcher::start(&dir, quiet)
            .with_context(|| format!("watching the plugins directory {}", dir.display()))?;
        let registry = self.state.registry.clone();
        let activation = self.config.hot_load.clone();
        Ok(Some(tokio::spawn(async move {
            while watcher.changed().await.is_some() {
                hot_load(&registry, &dir, quiet, &activation).await;
            }
        })))
    }
}

/// Most snapshots taken while waiting for files being written to settle.
const SETTLE_TRIES: usize = 20;

/// Reads the plugins directory again once nothing in it changes any more.
async fn hot_load(
    registry: &Registry,
    dir: &std::path::Path,
    quiet: Duration,
    activation: &Activation,
) {
    if let Err(err) = settled_snapshot(dir, quiet, SETTLE_TRIES).await {
        tracing::warn!(dir = %dir.display(), error = %err, "cannot read the plugins directory");
        return;
    }
    match registry.install_plugins_dir(dir, activation).await {
        Ok(outcomes) => {
            for outcome in outcomes {
                match outcome {
                    PluginOutcome::Installed(id) => {
                        tracing::info!(version = id, "installed from the plugins directory")
                    }
                    PluginOutcome::Unchanged(_) => {}
                    PluginOutcome::Failed { dir, reason } => tracing::warn!(
                        dir = %dir.display(),
                        reason,
                        "a package in the plugins directory was not installed"
                    ),
                }
            }
        }
        Err(err) => {
            tracing::warn!(dir = %dir.display(), error = %err, "cannot read the plugins directory")
        }
    }
}

/// Removes expired key-value entries, idempotency answers, audit records
/// past their retention and idle tenants' rate-limit state, now and then.
async fn sweep(store: Arc<SledStore>, state: AppState) {
    let mut interval = tokio::time::interval(SWEEP_EVERY);
    loop {
        interval.tick().await;
        let kv = store.clone();
        match tokio::task::spawn_blocking(move || kv.kv_sweep_expired(now_ms())).await {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => tracing::debug!(removed, "swept expired kv entries"),
            Ok(Err(err)) => tracing::warn!(error = %err, "kv sweep failed"),
            Err(err) => tracing::warn!(error = %err, "kv sweep task failed"),
        }
        state.pipelines.forget_idle_tenants();
        match state.audit.sweep(now_ms()).await {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(removed, "swept audit records past their retention"),
            Err(err) => tracing::warn!(error = %err, "audit sweep failed"),
        }
        match state.idempotency.sweep().await {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(removed, "swept expired idempotency answers"),
            Err(err) => tracing::warn!(error = %err, "idempotency sweep failed"),
        }
    }
}
