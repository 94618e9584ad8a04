//! Echo: returns its input unchanged.
//!
//! The no-op connector: benchmarks measure the host's own cost per call with it,
//! and isolation tests use it as the well-behaved neighbour that must keep serving.

use serde_json::Value;
use switchboard_sdk::{Connector, Context, Error, Operation, export_connector};

struct Echo;

impl Connector for Echo {
    const NAME: &'static str = "echo";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Returns its input unchanged; a no-op for benchmarks and tests.";

    fn operations() -> Vec<Operation> {
        vec![Operation::new("echo", "Returns its input unchanged.", echo).idempotent()]
    }
}

fn echo(_ctx: &Context, input: Value) -> Result<Value, Error> {
    Ok(input)
}

export_connector!(Echo);
