//! The `switchboard` command: `serve` runs the host, `sandbox` runs the fake
//! provider upstreams that connectors are developed and tested against;
//! `new`, `build` and `validate` write and check connectors; `install`,
//! `invoke` and `ctl` drive a running host; `keygen` and `sign` make the
//! signatures a host with trusted keys requires.

mod cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard::alerts::AlertPolicy;
use switchboard::app::{App, HostConfig};
use switchboard::events::EventSettings;
use switchboard::events::schedule::{RetrySchedule, parse_duration};
use switchboard::registry::canary::RollbackPolicy;
use switchboard::registry::lifecycle::Activation;
use switchboard::registry::plugins_dir::{SIGNATURE_FILE, read_package};
use switchboard::registry::signature::{self, TrustedKeys};
use switchboard::runtime::compile_cache::sha256_hex;
use switchboard::sealing::MasterKeySource;
use switchboard::tls::TlsSettings;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "A host for contact-center connectors run as WebAssembly components"
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the host.
    Serve(Box<ServeArgs>),
    /// Run the sandbox upstreams (every fake provider) and a webhook receiver.
    Sandbox(SandboxArgs),
    /// Activate, canary, promote, abort, roll back or remove versions on a running host.
    Ctl {
        #[command(flatten)]
        host: cli::client::HostArgs,
        #[command(subcommand)]
        command: cli::ctl::CtlCommand,
    },
    /// Create a connector crate: manifest, one source file with a sample
    /// operation, and its tests, ready to `cargo test` and `switchboard build`.
    New {
        /// The connector's name: a-z, 0-9 and '-', starting with a letter.
        name: String,
        /// Where to create it (default: `./<name>`); must be empty or absent.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The `switchboard-sdk` crate directory (default: the repository's `plugins/sdk`).
        #[arg(long, env = "SWITCHBOARD_SDK")]
        sdk: Option<PathBuf>,
    },
    /// Build the connector crate in a directory for wasm32-wasip2 (installing
    /// the target if missing), lay out its package and validate it.
    Build {
        /// The crate directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Where to put the package (default: `<dir>/dist`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Install the package in a directory (connector.toml, one .wasm, optional
    /// connector.sig) on a running host, with progress.
    Install {
        /// The package directory, such as the `dist` that `build` writes.
        dir: PathBuf,
        /// Keep the new version inactive instead of activating it.
        #[arg(long)]
        stage: bool,
        #[command(flatten)]
        host: cli::client::HostArgs,
    },
    /// Call an operation of a connector on a running host and print its output.
    Invoke {
        /// The connector.
        connector: String,
        /// The operation.
        operation: String,
        /// The input: JSON inline, `@file.json`, or `-` for stdin.
        #[arg(default_value = "{}")]
        input: String,
        #[command(flatten)]
        context: cli::client::CallContextArgs,
        #[command(flatten)]
        host: cli::client::HostArgs,
    },
    /// Make an ed25519 key pair for signing connector packages.
    Keygen {
        /// Where to write the secret key (created with mode 0600; never overwritten).
        #[arg(long)]
        secret_key_file: PathBuf,
    },
    /// Sign the package in a directory: writes its connector.sig.
    Sign {
        /// The secret key file `keygen` wrote.
        #[arg(long)]
        secret_key_file: PathBuf,
        /// The package directory (connector.toml and one .wasm).
        dir: PathBuf,
    },
    /// Check a connector package without a running host: its manifest (errors
    /// give line and column), its component against the world (every missing
    /// or mistyped export), and `describe()` against the manifest.
    Validate {
        /// The component, a `.wasm` file.
        wasm: PathBuf,
        /// Its `connector.toml`.
        manifest: PathBuf,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory for the store and the compile cache.
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Directory of connector packages (one subdirectory each) to install at start.
    #[arg(long, env = "SWITCHBOARD_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
    /// Component instances alive at once; calls beyond it get `capacity_exhausted`.
    #[arg(long, default_value_t = 1000)]
    max_instances: u32,
    /// Default call deadline in milliseconds (a manifest may override it).
    #[arg(long)]
    default_deadline_ms: Option<u64>,
    /// Default memory per call in bytes (a manifest may override it).
    #[arg(long)]
    default_memory_bytes: Option<u64>,
    /// Default largest output per call in bytes (a manifest may override it).
    #[arg(long)]
    default_output_bytes: Option<usize>,
    /// Default table elements per call (a manifest may override it).
    #[arg(long)]
    default_table_elements: Option<u64>,
    /// Default instances per call (a manifest may override it).
    #[arg(long)]
    default_instances: Option<u32>,
    /// Default timeout of one outbound HTTP request in milliseconds (a manifest may override it).
    #[arg(long)]
    default_http_timeout_ms: Option<u64>,
    /// Default largest outbound HTTP response body in bytes (a manifest may override it).
    #[arg(long)]
    default_http_response_bytes: Option<usize>,
    /// A public key (`ed25519:<base64>`) whose signature packages must carry;
    /// repeat for several. Without any, signatures are not required.
    #[arg(
        long = "trusted-key",
        env = "SWITCHBOARD_TRUSTED_KEYS",
        value_delimiter = ','
    )]
    trusted_keys: Vec<String>,
    /// What a new version found in the plugins directory becomes: `activate`
    /// (when newer than the active version), `canary` or `stage`.
    #[arg(long, default_value = "activate", value_parser = ["activate", "canary", "stage"])]
    hot_load: String,
    /// Weight of a canary started by `--hot-load canary`, in percent.
    #[arg(long, default_value_t = 10.0)]
    hot_load_canary_percent: f64,
    /// Do not watch the plugins directory after start.
    #[arg(long)]
    no_watch: bool,
    /// How long calls on a replaced version may run before they are cut off, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    drain_deadline_ms: u64,
    /// Window of the automatic canary rollback, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    rollback_window_ms: u64,
    /// Fewest candidate calls in the window before the automatic rollback judges.
    #[arg(long, default_value_t = 20)]
    rollback_min_calls: usize,
    /// Candidate failure rate, in percent, that rolls a canary back.
    #[arg(long, default_value_t = 5.0)]
    rollback_failure_percent: f64,
    /// Candidate p95 latency, as a multiple of the active version's, that rolls a canary back.
    #[arg(long, default_value_t = 2.0)]
    rollback_latency_ratio: f64,
    /// Smallest p95 gap, in milliseconds, that may roll a canary back for latency.
    #[arg(long, default_value_t = 20)]
    rollback_latency_floor_ms: u64,
    /// How long answers to calls with an `Idempotency-Key` are kept, in hours.
    #[arg(long, default_value_t = 24)]
    idempotency_ttl_hours: u64,
    /// Waits between attempts of an event delivery, comma-separated (`ms`, `s`,
    /// `m`, `h`); when they are used up the delivery goes to the dead-letter queue.
    #[arg(long, default_value = "5s,5m,30m,2h,5h,10h,10h")]
    delivery_retries: String,
    /// Most event deliveries in flight at once.
    #[arg(long, default_value_t = 64)]
    delivery_concurrency: usize,
    /// Most event deliveries in flight to one subscription, rule or connector.
    #[arg(long, default_value_t = 16)]
    delivery_concurrency_per_target: usize,
    /// How long a subscriber has to answer one delivery, in milliseconds.
    #[arg(long, default_value_t = 15_000)]
    delivery_timeout_ms: u64,
    /// Failed attempts in a row after which `switchboard.subscription_failing` is raised.
    #[arg(long, default_value_t = 5)]
    subscription_failing_after: u32,
    /// How long a subscription may fail without a success before it is disabled (`ms`, `s`, `m`, `h`).
    #[arg(long, default_value = "120h")]
    subscription_disable_after: String,
    /// How far back the alert rules look (`ms`, `s`, `m`, `h`).
    #[arg(long, default_value = "5m")]
    alert_window: String,
    /// Fewest calls in the window before the failure-rate and latency rules judge a connector.
    #[arg(long, default_value_t = 20)]
    alert_min_calls: u64,
    /// Failure rate, in percent, at or above which a connector's alert fires.
    #[arg(long, default_value_t = 1.0)]
    alert_failure_percent: f64,
    /// p95 latency, in milliseconds, at or above which a connector's alert fires (off when absent).
    #[arg(long)]
    alert_p95_ms: Option<u64>,
    /// Do not alert when a connector's circuit breaker opens.
    #[arg(long)]
    no_breaker_alert: bool,
    /// PEM certificate chain (leaf first): serve HTTPS, TLS 1.3 only unless --tls12.
    #[arg(long, env = "SWITCHBOARD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate.
    #[arg(long, env = "SWITCHBOARD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Also offer TLS 1.2, for clients that cannot speak TLS 1.3.
    #[arg(long, requires = "tls_cert")]
    tls12: bool,
    /// A host-wide admin key (`sbk_…`) to make sure exists, for automation;
    /// without one, a host with no keys makes one and prints it once.
    #[arg(long, env = "SWITCHBOARD_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// The master key file sealing secrets at rest: base64 keys, one per
    /// line, the sealing one first (default: `<data-dir>/master.key`, made
    /// when absent). Ignored when SWITCHBOARD_MASTER_KEY is set.
    #[arg(long, env = "SWITCHBOARD_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    /// How long OAuth2 bearer tokens live (`s`, `m`, `h`).
    #[arg(long, default_value = "15m")]
    token_lifetime: String,
    /// How long audit records are kept (`m`, `h`).
    #[arg(long, default_value = "2160h")]
    audit_retention: String,
}

#[derive(clap::Args)]
struct SandboxArgs {
    /// Where one provider listens instead of its fixed port, as `NAME=ADDR`
    /// (`logistics`, `payment`, `clink`, `ringostat`, `easemob`, `crm`, `tickets`,
    /// `messaging`, `ai`); repeatable.
    #[arg(long = "provider", value_name = "NAME=ADDR", value_parser = parse_provider_addr)]
    providers: Vec<(switchboard_sandbox::Provider, SocketAddr)>,
    /// Address of the webhook receiver that subscriptions can deliver to.
    #[arg(long, default_value = "127.0.0.1:18083")]
    subscriber_addr: SocketAddr,
}

fn parse_provider_addr(text: &str) -> Result<(switchboard_sandbox::Provider, SocketAddr), String> {
    let (name, addr) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=ADDR"))?;
    let provider = switchboard_sandbox::Provider::from_name(name)
        .ok_or_else(|| format!("there is no sandbox provider called `{name}`"))?;
    let addr = addr
        .parse()
        .map_err(|err| format!("`{addr}` is not an address: {err}"))?;
    Ok((provider, addr))
}

/// Logs at `default` unless `RUST_LOG` says otherwise.
fn init_logging(format: &str, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = HostConfig::new(args.data_dir);
    config.plugins_dir = args.plugins_dir;
    config.engine.max_instances = args.max_instances;
    let limits = &mut config.limits;
    if let Some(ms) = args.default_deadline_ms {
        limits.deadline = Duration::from_millis(ms);
    }
    if let Some(bytes) = args.default_memory_bytes {
        limits.memory_bytes = bytes;
    }
    if let Some(bytes) = args.default_output_bytes {
        limits.output_bytes = bytes;
    }
    if let Some(elements) = args.default_table_elements {
        limits.table_elements = elements;
    }
    if let Some(instances) = args.default_instances {
        limits.instances = instances;
    }
    if let Some(ms) = args.default_http_timeout_ms {
        limits.http_timeout = Duration::from_millis(ms);
    }
    if let Some(bytes) = args.default_http_response_bytes {
        limits.http_response_bytes = bytes;
    }
    if !(0.0..=100.0).contains(&args.hot_load_canary_percent) {
        anyhow::bail!("--hot-load-canary-percent must be between 0 and 100");
    }
    config.hot_load = match args.hot_load.as_str() {
        "canary" => Activation::Canary((args.hot_load_canary_percent * 100.0).round() as u16),
        "stage" => Activation::Stage,
        _ => Activation::ActivateIfNewer,
    };
    config.watch_plugins_dir = !args.no_watch;
    config.idempotency_ttl =
        Duration::from_secs(args.idempotency_ttl_hours.clamp(1, 24 * 365) * 3600);
    config.events = EventSettings {
        retries: RetrySchedule::parse(&args.delivery_retries)
            .map_err(|err| anyhow::anyhow!("--delivery-retries: {err}"))?,
        request_timeout: Duration::from_millis(args.delivery_timeout_ms.max(1)),
        max_in_flight: args.delivery_concurrency.max(1),
        per_target_in_flight: args.delivery_concurrency_per_target.max(1),
        failing_after: args.subscription_failing_after.max(1),
        disable_after: parse_duration(&args.subscription_disable_after)
            .map_err(|err| anyhow::anyhow!("--subscription-disable-after: {err}"))?,
    };
    if !(0.0..=100.0).contains(&args.alert_failure_percent) {
        anyhow::bail!("--alert-failure-percent must be between 0 and 100");
    }
    config.alerts = AlertPolicy {
        window: parse_duration(&args.alert_window)
            .map_err(|err| anyhow::anyhow!("--alert-window: {err}"))?,
        min_calls: args.alert_min_calls,
        failure_percent: args.alert_failure_percent,
        p95_ms: args.alert_p95_ms,
        breaker: !args.no_breaker_alert,
    };
    config.tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsSettings {
            cert,
            key,
            allow_tls12: args.tls12,
        }),
        _ => None,
    };
    config.admin_key = args.admin_key;
    config.master_key = match std::env::var("SWITCHBOARD_MASTER_KEY") {
        Ok(current) => MasterKeySource::Env {
            current,
            previous: std::env::var("SWITCHBOARD_MASTER_KEY_PREVIOUS")
                .map(|keys| keys.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
        },
        Err(_) => MasterKeySource::File(
            args.master_key_file
                .unwrap_or_else(|| config.data_dir.join("master.key")),
        ),
    };
    config.token_lifetime = parse_duration(&args.token_lifetime)
        .map_err(|err| anyhow::anyhow!("--token-lifetime: {err}"))?;
    config.audit_retention = parse_duration(&args.audit_retention)
        .map_err(|err| anyhow::anyhow!("--audit-retention: {err}"))?;
    let lifecycle = &mut config.lifecycle;
    lifecycle.drain_deadline = Duration::from_millis(args.drain_deadline_ms);
    lifecycle.trusted_keys = TrustedKeys::parse(&args.trusted_keys)
        .map_err(|err| anyhow::anyhow!("--trusted-key: {err}"))?;
    lifecycle.rollback = RollbackPolicy {
        window: Duration::from_millis(args.rollback_window_ms),
        min_calls: args.rollback_min_calls,
        max_failure_rate: args.rollback_failure_percent / 100.0,
        max_latency_ratio: args.rollback_latency_ratio,
        latency_floor: Duration::from_millis(args.rollback_latency_floor_ms),
    };
    lifecycle
        .rollback
        .check()
        .map_err(|err| anyhow::anyhow!("the --rollback-* flags: {err}"))?;
    App::open(config)?
        .serve(args.listen, shutdown_signal())
        .await
}

fn keygen(secret_key_file: &std::path::Path) -> anyhow::Result<()> {
    let (secret, public) = signature::generate_keypair();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(secret_key_file)
        .with_context(|| format!("creating {}", secret_key_file.display()))?;
    std::io::Write::write_all(&mut file, format!("{secret}\n").as_bytes())?;
    println!("{public}");
    Ok(())
}

fn sign(secret_key_file: &std::path::Path, dir: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(secret_key_file)
        .with_context(|| format!("reading {}", secret_key_file.display()))?;
    let key = signature::parse_secret_key(&text)?;
    let package = read_package(dir).map_err(anyhow::Error::msg)?;
    let hash = sha256_hex(&package.wasm);
    let line = signature::sign_package(&key, &package.manifest, &hash);
    let path = dir.join(SIGNATURE_FILE);
    std::fs::write(&path, format!("{line}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

async fn sandbox(args: SandboxArgs) -> anyhow::Result<()> {
    let config = args.providers.into_iter().fold(
        switchboard_sandbox::SandboxConfig::default(),
        |config, (provider, addr)| config.with(provider, addr),
    );
    let sandbox = switchboard_sandbox::Sandbox::start(config).await?;
    for provider in switchboard_sandbox::Provider::ALL {
        println!(
            "sandbox {} provider on {}",
            provider.name(),
            sandbox.url(provider)
        );
    }
    let receiver = switchboard_sandbox::Subscriber::start(args.subscriber_addr).await?;
    println!("sandbox webhook receiver on {}", receiver.url());
    shutdown_signal().await;
    tokio::join!(sandbox.shutdown(), receiver.shutdown());
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // One-shot commands print their verdict, not a throwaway host's log.
    let default_log = match cli.command {
        Command::Serve(_) | Command::Sandbox(_) => "info,tower_http=warn",
        _ => "warn",
    };
    init_logging(&cli.log_format, default_log);
    let result = match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Sandbox(args) => sandbox(args).await,
        Command::Ctl { host, command } => cli::ctl::run(&host, command).await,
        Command::New { name, dir, sdk } => cli::scaffold::new_connector(&name, dir, sdk),
        Command::Build { dir, out } => cli::package::build(&dir, out).await,
        Command::Install { dir, stage, host } => match cli::client::Client::new(&host) {
            Ok(client) => client.install(&dir, stage).await,
            Err(err) => Err(err),
        },
        Command::Invoke {
            connector,
            operation,
            input,
            context,
            host,
        } => match (
            cli::client::read_input(&input),
            cli::client::Client::new(&host),
        ) {
            (Ok(input), Ok(client)) => client.invoke(&connector, &operation, input, &context).await,
            (Err(err), _) | (_, Err(err)) => Err(err),
        },
        Command::Keygen { secret_key_file } => keygen(&secret_key_file),
        Command::Sign {
            secret_key_file,
            dir,
        } => sign(&secret_key_file, &dir),
        Command::Validate { wasm, manifest } => cli::package::validate(&wasm, &manifest).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("switchboard: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
