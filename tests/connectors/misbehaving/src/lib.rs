//! Misbehaving: a connector that breaks the rules on purpose.
//!
//! The isolation tests call each operation and check that the host answers with
//! a clear error for that call while every other connector keeps serving: a loop
//! that never ends, a memory bomb, a trap, an oversized output, a call to a host
//! the manifest does not grant, and a slow upstream the deadline must cover.

use std::hint::black_box;

use switchboard_sdk::{
    Connector, Context, Deserialize, Error, JsonSchema, Operation, Serialize, export_connector,
    http,
};

/// One mebibyte: the allocation step of `allocate` and the size of `huge-output`.
const MIB: usize = 1 << 20;

struct Misbehaving;

impl Connector for Misbehaving {
    const NAME: &'static str = "misbehaving";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Breaks the rules on purpose, to test that the host \
        contains it: endless loops, memory bombs, traps, huge outputs, forbidden hosts.";

    fn operations() -> Vec<Operation> {
        vec![
            Operation::new("spin", "Loops forever.", spin),
            Operation::new(
                "allocate",
                "Allocates and touches memory forever.",
                allocate,
            ),
            Operation::new("trap", "Panics, which traps the instance.", trap),
            Operation::new(
                "huge-output",
                "Returns a JSON string of about 1 MiB.",
                huge_output,
            ),
            Operation::new(
                "forbidden-host",
                "Calls a host the manifest does not grant and returns the host's error.",
                forbidden_host,
            ),
            Operation::new(
                "fetch",
                "GETs a URL and returns its status and body.",
                fetch,
            ),
            Operation::new(
                "post",
                "POSTs a JSON body to a URL (not idempotent); an upstream 429 or 5xx is a retryable error.",
                post,
            ),
            Operation::new("stdout", "Writes a line to stdout and stderr.", stdout),
            Operation::new("ok", "Succeeds at once.", ok).idempotent(),
            Operation::new(
                "probe-sandbox",
                "Reports what the guest can see of the environment, files, arguments and network.",
                probe_sandbox,
            ),
        ]
    }
}

export_connector!(Misbehaving);

/// No input: `{}`.
#[derive(Deserialize, JsonSchema)]
struct Empty {}

/// Success: `{"ok": true}`.
#[derive(Serialize, JsonSchema)]
struct Ack {
    /// Always `true`.
    ok: bool,
}

/// A URL to fetch.
#[derive(Deserialize, JsonSchema)]
struct FetchInput {
    /// Absolute URL to GET.
    url: String,
}

/// What a fetched URL answered.
#[derive(Serialize, JsonSchema)]
struct FetchOutput {
    /// HTTP status.
    status: u16,
    /// The body as text.
    body: String,
}

fn spin(_ctx: &Context, _input: Empty) -> Result<Ack, Error> {
    let mut turns = 0_u64;
    loop {
        turns = black_box(turns.wrapping_add(1));
    }
}

fn allocate(_ctx: &Context, _input: Empty) -> Result<Ack, Error> {
    let mut hoard = Vec::new();
    loop {
        // Filling with a non-zero byte writes every page, so none stays untouched.
        hoard.push(black_box(vec![0xA5_u8; MIB]));
        black_box(&hoard);
    }
}

fn trap(_ctx: &Context, _input: Empty) -> Result<Ack, Error> {
    panic!("misbehaving: trap requested");
}

fn huge_output(_ctx: &Context, _input: Empty) -> Result<String, Error> {
    Ok("x".repeat(MIB))
}

fn forbidden_host(_ctx: &Context, _input: Empty) -> Result<FetchOutput, Error> {
    fetch_url("http://[::1]:9/")
}

fn fetch(_ctx: &Context, input: FetchInput) -> Result<FetchOutput, Error> {
    fetch_url(&input.url)
}

/// A JSON body to POST.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PostInput {
    /// Absolute URL to POST to.
    url: String,
    /// Bearer token to send, if any.
    #[serde(default)]
    bearer: Option<String>,
    /// The JSON body.
    body: serde_json::Value,
}

fn post(_ctx: &Context, input: PostInput) -> Result<FetchOutput, Error> {
    let mut request = http::post(input.url).json(&input.body)?;
    if let Some(token) = &input.bearer {
        request = request.bearer(token);
    }
    let response = request.send()?;
    if response.status == 429 || response.status >= 500 {
        return Err(Error::upstream_status(response.status, &response.body));
    }
    Ok(FetchOutput {
        status: response.status,
        body: response.text(),
    })
}

fn stdout(_ctx: &Context, _input: Empty) -> Result<Ack, Error> {
    println!("misbehaving: a line on stdout");
    eprintln!("misbehaving: a line on stderr");
    Ok(Ack { ok: true })
}

/// What the guest could reach of the world outside its capabilities.
#[derive(Serialize, JsonSchema)]
struct SandboxProbe {
    /// Environment variables visible.
    env_vars: usize,
    /// Command-line arguments visible.
    args: usize,
    /// Whether listing `/` worked.
    list_root: bool,
    /// Whether reading `/etc/passwd` worked.
    read_passwd: bool,
    /// Whether a TCP connection to loopback could be opened.
    tcp_connect: bool,
}

fn probe_sandbox(_ctx: &Context, _input: Empty) -> Result<SandboxProbe, Error> {
    Ok(SandboxProbe {
        env_vars: std::env::vars_os().count(),
        args: std::env::args_os().count(),
        list_root: std::fs::read_dir("/").is_ok(),
        read_passwd: std::fs::read("/etc/passwd").is_ok(),
        tcp_connect: std::net::TcpStream::connect(("127.0.0.1", 9)).is_ok(),
    })
}

fn ok(_ctx: &Context, _input: Empty) -> Result<Ack, Error> {
    Ok(Ack { ok: true })
}

fn fetch_url(url: &str) -> Result<FetchOutput, Error> {
    let response = http::get(url).send()?;
    Ok(FetchOutput {
        status: response.status,
        body: response.text(),
    })
}
