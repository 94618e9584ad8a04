//! Echo: returns its input unchanged.
//!
//! The no-op connector: benchmarks measure the host's own cost per call with it,
//! and isolation tests use it as the well-behaved neighbour that must keep serving.
//! Lifecycle tests install it in three versions built from this one file:
//! the default build is 0.1.0, feature `v2` makes 0.2.0, and feature `broken`
//! makes 0.3.0, whose every call crashes — the candidate a canary must reject.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_sdk::{Connector, Context, Error, Operation, export_connector};

struct Echo;

const VERSION: &str = if cfg!(feature = "broken") {
    "0.3.0"
} else if cfg!(feature = "v2") {
    "0.2.0"
} else {
    env!("CARGO_PKG_VERSION")
};

impl Connector for Echo {
    const NAME: &'static str = "echo";
    const VERSION: &'static str = VERSION;
    const DESCRIPTION: &'static str =
        "Returns its input unchanged; a no-op for benchmarks and tests.";

    fn operations() -> Vec<Operation> {
        vec![
            Operation::new("echo", "Returns its input unchanged.", echo).idempotent(),
            Operation::new(
                "version",
                "Waits `wait_ms` (default 0), then says which version ran.",
                version,
            )
            .idempotent(),
        ]
    }
}

fn broken() {
    if cfg!(feature = "broken") {
        panic!("this build of echo is broken on purpose");
    }
}

fn echo(_ctx: &Context, input: Value) -> Result<Value, Error> {
    broken();
    Ok(input)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct VersionInput {
    /// Milliseconds to wait before answering.
    #[serde(default)]
    #[schemars(range(max = 10000))]
    wait_ms: u64,
}

#[derive(Serialize, JsonSchema)]
struct VersionOutput {
    /// The version of the build that ran.
    version: &'static str,
}

fn version(_ctx: &Context, input: VersionInput) -> Result<VersionOutput, Error> {
    broken();
    if input.wait_ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(input.wait_ms));
    }
    Ok(VersionOutput { version: VERSION })
}

export_connector!(Echo);
