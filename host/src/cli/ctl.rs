//! `switchboard ctl`: the lifecycle commands as a client of a running host's API.
//!
//! Each command is one request; the answer is printed as JSON, and an error
//! answer becomes `code: message` and a hint on stderr with a failing exit
//! status. Installing is `switchboard install`.

use clap::Subcommand;
use serde_json::json;

use super::client::{Client, HostArgs};

/// A lifecycle command.
#[derive(Subcommand)]
pub enum CtlCommand {
    /// List a connector's versions, deployment and canary.
    Versions {
        /// The connector.
        name: String,
    },
    /// Make a version active; a running canary ends.
    Activate {
        /// The connector.
        name: String,
        /// The version.
        version: String,
    },
    /// Make the previous version active again.
    Rollback {
        /// The connector.
        name: String,
    },
    /// Start or change a canary.
    Canary {
        /// The connector.
        name: String,
        /// The candidate version.
        version: String,
        /// Share of the other calls sent to the candidate, in percent.
        #[arg(long, default_value_t = 0.0)]
        weight: f64,
        /// An agent always sent to the candidate (repeatable).
        #[arg(long = "agent")]
        agents: Vec<String>,
        /// A channel always sent to the candidate (repeatable).
        #[arg(long = "channel")]
        channels: Vec<String>,
        /// A tenant always sent to the candidate (repeatable).
        #[arg(long = "tenant")]
        tenants: Vec<String>,
    },
    /// Make the canary's candidate active.
    Promote {
        /// The connector.
        name: String,
    },
    /// End the canary.
    Abort {
        /// The connector.
        name: String,
        /// Why, for the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Remove a version that serves nothing.
    RemoveVersion {
        /// The connector.
        name: String,
        /// The version.
        version: String,
    },
    /// Read the audit log.
    Audit {
        /// Only this connector's records.
        #[arg(long)]
        connector: Option<String>,
        /// First sequence number.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Most records.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// Runs one command against the host `host` names.
pub async fn run(host: &HostArgs, command: CtlCommand) -> anyhow::Result<()> {
    let host = Client::new(host)?;
    let base = host.url("");
    let client = host.http();
    let request = match command {
        CtlCommand::Versions { name } => {
            client.get(format!("{base}/v1/connectors/{name}/versions"))
        }
        CtlCommand::Activate { name, version } => client.post(format!(
            "{base}/v1/connectors/{name}/versions/{version}/activate"
        )),
        CtlCommand::Rollback { name } => {
            client.post(format!("{base}/v1/connectors/{name}/rollback"))
        }
        CtlCommand::Canary {
            name,
            version,
            weight,
            agents,
            channels,
            tenants,
        } => client
            .put(format!("{base}/v1/connectors/{name}/canary"))
            .json(&json!({
                "version": version,
                "weight_percent": weight,
                "agents": agents,
                "channels": channels,
                "tenants": tenants,
            })),
        CtlCommand::Promote { name } => {
            client.post(format!("{base}/v1/connectors/{name}/canary/promote"))
        }
        CtlCommand::Abort { name, reason } => client
            .post(format!("{base}/v1/connectors/{name}/canary/abort"))
            .json(&json!({ "reason": reason })),
        CtlCommand::RemoveVersion { name, version } => {
            client.delete(format!("{base}/v1/connectors/{name}/versions/{version}"))
        }
        CtlCommand::Audit {
            connector,
            from,
            limit,
        } => {
            let mut query = vec![("from", from.to_string()), ("limit", limit.to_string())];
            if let Some(connector) = connector {
                query.push(("connector", connector));
            }
            client.get(format!("{base}/v1/audit")).query(&query)
        }
    };
    let body = host.send(request).await?;
    if !body.is_null() {
        println!("{}", serde_json::to_string_pretty(&body)?);
    }
    Ok(())
}
