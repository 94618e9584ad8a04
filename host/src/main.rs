//! The `switchboard` command: `serve` runs the host, `sandbox` runs the fake
//! provider upstreams that connectors are developed and tested against.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use switchboard::app::{App, HostConfig};
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
    Serve(ServeArgs),
    /// Run the sandbox upstreams (fake logistics and payment providers).
    Sandbox(SandboxArgs),
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
}

#[derive(clap::Args)]
struct SandboxArgs {
    /// Address of the fake logistics provider.
    #[arg(long, default_value = "127.0.0.1:18081")]
    logistics_addr: SocketAddr,
    /// Address of the fake payment provider.
    #[arg(long, default_value = "127.0.0.1:18082")]
    payment_addr: SocketAddr,
}

fn init_logging(format: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
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
    App::open(config)?
        .serve(args.listen, shutdown_signal())
        .await
}

async fn sandbox(args: SandboxArgs) -> anyhow::Result<()> {
    let config = switchboard_sandbox::SandboxConfig {
        logistics_addr: args.logistics_addr,
        payment_addr: args.payment_addr,
    };
    let sandbox = switchboard_sandbox::Sandbox::start(config).await?;
    println!("sandbox logistics provider on {}", sandbox.logistics_url());
    println!("sandbox payment provider on {}", sandbox.payment_url());
    shutdown_signal().await;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Sandbox(args) => sandbox(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("switchboard: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
