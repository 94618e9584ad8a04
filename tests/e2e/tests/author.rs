//! A connector author's afternoon through the CLI, from an empty directory:
//! `switchboard new`, `cargo test`, `switchboard build`, `switchboard
//! validate`, `switchboard install` and `switchboard invoke` against the real
//! binary, with the mistakes an author makes explained on the way.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{Host, binary};
use serde_json::{Value, json};
use tokio::process::Command;

/// Where scaffolded crates build, shared across runs so only the first pays
/// for compiling the SDK's dependencies.
fn scaffold_target_dir() -> PathBuf {
    let profile_dir = binary().parent().unwrap().to_owned();
    profile_dir.parent().unwrap().join("scaffold")
}

struct Outcome {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn run(program: &Path, args: &[&str], dir: &Path) -> Outcome {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", scaffold_target_dir())
        .env("SWITCHBOARD_KEY", common::ADMIN_KEY)
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap();
    Outcome {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn switchboard(args: &[&str], dir: &Path) -> Outcome {
    run(&binary(), args, dir).await
}

#[tokio::test]
async fn scaffold_build_validate_install_and_invoke_from_an_empty_directory() {
    let temp = tempfile::tempdir().unwrap();
    let work = temp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let crate_dir = work.join("greeter");

    let new = switchboard(&["new", "greeter"], &work).await;
    assert!(new.ok, "{}", new.stderr);
    assert!(
        new.stdout
            .starts_with("created connector `greeter` in greeter")
    );
    let again = switchboard(&["new", "greeter"], &work).await;
    assert!(!again.ok);
    assert_eq!(
        again.stderr.trim(),
        "switchboard: greeter already exists and is not empty"
    );
    let bad = switchboard(&["new", "Greeter"], &work).await;
    assert!(!bad.ok);
    assert!(
        bad.stderr
            .contains("`Greeter` is not a valid connector name"),
        "{}",
        bad.stderr
    );

    let cargo = std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from);
    let tested = run(&cargo, &["test", "--quiet"], &crate_dir).await;
    assert!(tested.ok, "the scaffold's own tests: {}", tested.stderr);
    assert!(
        tested.stdout.contains("test result: ok. 2 passed"),
        "{}",
        tested.stdout
    );

    let built = switchboard(&["build"], &crate_dir).await;
    assert!(built.ok, "{}", built.stderr);
    assert_eq!(
        built.stdout.trim(),
        "greeter 0.1.0 is a valid connector package"
    );
    assert!(
        built.stderr.contains("built dist/greeter.wasm ("),
        "{}",
        built.stderr
    );
    let dist = crate_dir.join("dist");

    let validated = switchboard(
        &["validate", "dist/greeter.wasm", "dist/connector.toml"],
        &crate_dir,
    )
    .await;
    assert!(validated.ok, "{}", validated.stderr);

    let host = Host::start(&temp.path().join("data"), None).await;
    let url = host.url.as_str();
    let installed = switchboard(&["install", "--url", url, "dist"], &crate_dir).await;
    assert!(installed.ok, "{}", installed.stderr);
    assert!(
        installed
            .stdout
            .starts_with("greeter 0.1.0: installed and active (package "),
        "{}",
        installed.stdout
    );
    assert!(
        installed.stderr.contains("uploading ")
            && installed.stderr.contains("compiled and checked it in"),
        "progress: {}",
        installed.stderr
    );

    for times in 1..=2 {
        let invoked = switchboard(
            &[
                "invoke",
                "--url",
                url,
                "greeter",
                "greet",
                r#"{"name": "Ada"}"#,
            ],
            &crate_dir,
        )
        .await;
        assert!(invoked.ok, "{}", invoked.stderr);
        let output: Value = serde_json::from_str(&invoked.stdout).unwrap();
        assert_eq!(output, json!({"message": "Hello, Ada!", "times": times}));
    }

    let refused = switchboard(
        &["invoke", "--url", url, "greeter", "greet", "{}"],
        &crate_dir,
    )
    .await;
    assert!(!refused.ok);
    assert!(
        refused.stderr.starts_with(
            "switchboard: schema_violation: the input does not match the schema of `greet`"
        ) && refused.stderr.contains(
            "\n  hint: the input breaks the operation's input schema; `GET /v1/connectors/<name>` shows it\n  HTTP 422, request id "
        ),
        "{}",
        refused.stderr
    );

    let lib = crate_dir.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(
        &lib,
        source.replace("{greeting}, {name}!", "{greeting}, dear {name}!"),
    )
    .unwrap();
    std::fs::write(dist.join("connector.sig"), "ed25519:c2lnbmVkIGVhcmxpZXI=\n").unwrap();
    let rebuilt = switchboard(&["build"], &crate_dir).await;
    assert!(rebuilt.ok, "{}", rebuilt.stderr);
    assert!(
        rebuilt
            .stderr
            .contains("removed connector.sig: it signed the previous build")
            && !dist.join("connector.sig").exists(),
        "{}",
        rebuilt.stderr
    );
    let conflict = switchboard(
        &["install", "--url", url, &dist.display().to_string()],
        &work,
    )
    .await;
    assert!(!conflict.ok);
    assert!(
        conflict.stderr.contains("switchboard: version_conflict: ")
            && conflict.stderr.contains(
                "hint: this name and version are installed with a different package: bump `version` in Cargo.toml and connector.toml"
            ),
        "{}",
        conflict.stderr
    );
}
