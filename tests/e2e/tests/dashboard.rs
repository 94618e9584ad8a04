//! The operator dashboard in headless Chromium against the real binary:
//! after real calls, a canary and a fired alert, every figure the page
//! shows matches the API, and a screenshot of it is saved.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{ADMIN_KEY, Host, copy_package, dist, eventually};
use reqwest::Method;
use serde_json::{Value, json};
use switchboard_sandbox::{FaultConfig, LOGISTICS_API_KEY, Provider, Sandbox, SandboxConfig};

const LOGISTICS: &str = "logistics-tracking";

/// Debian's Chromium, which `scripts/test` installs.
fn chromium() -> PathBuf {
    let path = std::env::var_os("SWITCHBOARD_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.is_file(),
        "{} is missing: scripts/test installs Debian's chromium (or set SWITCHBOARD_CHROMIUM)",
        path.display()
    );
    path
}

/// Runs headless Chromium on `url` with `mode` (`--dump-dom` or
/// `--screenshot=…`) once the page has had its scripts and fetches.
fn headless(url: &str, profile: &Path, mode: &str) -> String {
    let output = std::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1440,1500",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(mode)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Each `data-figure` element's text in `dom`; figures hold only text.
fn figures(dom: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for piece in dom.split("data-figure=\"").skip(1) {
        let (name, rest) = piece.split_once('"').unwrap();
        let text = rest.split_once('>').unwrap().1;
        let text = text.split_once('<').unwrap().0;
        let text = text
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        found.insert(name.to_owned(), text.trim().to_owned());
    }
    found
}

/// The number a figure starts with (`99.00 %`, `5 ms`, `120`).
fn number(text: &str) -> f64 {
    let digits: String = text
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("`{text}` is not a figure"))
}

struct Page(BTreeMap<String, String>);

impl Page {
    fn get(&self, name: &str) -> &str {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("the page shows no `{name}`: {:?}", self.0))
    }

    fn assert_number(&self, name: &str, expected: f64, tolerance: f64) {
        let shown = number(self.get(name));
        assert!(
            (shown - expected).abs() <= tolerance,
            "{name}: the page shows {shown}, the API says {expected}"
        );
    }

    fn assert_optional_number(&self, name: &str, expected: &Value) {
        match expected.as_f64() {
            Some(expected) => self.assert_number(name, expected, 1e-9),
            None => assert_eq!(self.get(name), "–", "{name}"),
        }
    }
}

/// Calls that leave a mark on every panel: outcomes of several codes, a
/// canary taking a quarter of the calls, and a failure rate of 1 %.
async fn traffic(host: &Host, sandbox: &Sandbox, plugins: &Path) {
    let parcel = json!({"carrier": "yto", "tracking_number": "YT1234567890"});
    for _ in 0..97 {
        let (status, body) = host.invoke(LOGISTICS, "track", parcel.clone()).await;
        assert_eq!(status, 200, "{body}");
    }
    let missing = json!({"carrier": "zto", "tracking_number": "ZT12340000"});
    for _ in 0..2 {
        let (_, body) = host.invoke(LOGISTICS, "track", missing.clone()).await;
        assert_eq!(body["error"]["code"], "tracking_not_found", "{body}");
    }
    let (_, body) = host
        .invoke(
            LOGISTICS,
            "track",
            json!({"carrier": "yto", "phone": "+86 138 0013 8000"}),
        )
        .await;
    assert_eq!(body["error"]["code"], "schema_violation", "{body}");
    sandbox.faults(Provider::Logistics).set(FaultConfig {
        fail_next: 3,
        ..FaultConfig::default()
    });
    let (_, body) = host.invoke(LOGISTICS, "track", parcel).await;
    assert_eq!(body["error"]["code"], "upstream_unavailable", "{body}");

    copy_package(
        &dist("test-versions").join("echo-0.2.0"),
        &plugins.join("echo-next"),
    );
    eventually("the canary", async || {
        let (_, view) = host
            .call(Method::GET, "/v1/connectors/echo/versions", None)
            .await;
        (view["canary"]["version"] == "0.2.0").then_some(view)
    })
    .await;
    for n in 0..12 {
        let (status, body) = host.invoke("echo", "echo", json!({ "n": n })).await;
        assert_eq!(status, 200, "{body}");
    }
}

#[tokio::test]
async fn the_dashboard_shows_what_the_api_says_in_headless_chromium() {
    let sandbox = Sandbox::start(SandboxConfig::ephemeral()).await.unwrap();
    let temp = tempfile::tempdir().unwrap();
    let plugins = temp.path().join("plugins");
    copy_package(&dist("plugins").join(LOGISTICS), &plugins.join(LOGISTICS));
    copy_package(&dist("test-plugins").join("echo"), &plugins.join("echo"));
    let host = Host::start_with(
        &temp.path().join("data"),
        Some(plugins.clone()),
        &[
            "--hot-load",
            "canary",
            "--hot-load-canary-percent",
            "25",
            "--alert-window",
            "2m",
            "--alert-min-calls",
            "20",
        ],
    )
    .await;
    host.set(LOGISTICS, "config", "base_url", &sandbox.logistics_url())
        .await;
    host.set(LOGISTICS, "secrets", "api_key", LOGISTICS_API_KEY)
        .await;
    traffic(&host, &sandbox, &plugins).await;
    let alerts = eventually("the failure-rate alert", async || {
        let (_, alerts) = host.call(Method::GET, "/v1/alerts", None).await;
        (alerts["firing"].as_array()?.len() == 1).then_some(alerts)
    })
    .await;

    let page = host.call_as(None, Method::GET, "/ui", None).await;
    assert_eq!(page.0, 200, "the page itself needs no key");
    let url = format!("{}/ui#key={ADMIN_KEY}", host.url);
    let dom = headless(&url, &temp.path().join("profile"), "--dump-dom");
    assert!(
        dom.contains(r#"data-state="ready""#),
        "the page did not finish: {dom}"
    );
    let page = Page(figures(&dom));
    let (_, stats) = host.call(Method::GET, "/v1/stats?minutes=30", None).await;
    let (_, audit) = host
        .call(Method::GET, "/v1/audit?order=newest&limit=100", None)
        .await;

    let connectors = stats["connectors"].as_array().unwrap();
    assert_eq!(connectors.len(), 2, "{stats}");
    page.assert_number("totals.connectors", 2.0, 0.0);
    let calls: u64 = connectors
        .iter()
        .map(|c| c["total"]["calls"].as_u64().unwrap())
        .sum();
    let ok: u64 = connectors
        .iter()
        .map(|c| c["total"]["ok"].as_u64().unwrap())
        .sum();
    assert_eq!((calls, ok), (101 + 12, 97 + 12), "{stats}");
    page.assert_number("totals.calls", calls as f64, 0.0);
    page.assert_number(
        "totals.success_percent",
        ok as f64 * 100.0 / calls as f64,
        0.0051,
    );
    for connector in connectors {
        let name = connector["deployment"]["name"].as_str().unwrap();
        let figure = |what: &str| format!("connector.{name}.{what}");
        let total = &connector["total"];
        assert_eq!(
            page.get(&figure("active")),
            connector["deployment"]["active"]
        );
        page.assert_number(&figure("calls"), total["calls"].as_f64().unwrap(), 0.0);
        page.assert_number(
            &figure("success_percent"),
            total["success_percent"].as_f64().unwrap(),
            0.0051,
        );
        page.assert_optional_number(&figure("p50_ms"), &total["p50_ms"]);
        page.assert_optional_number(&figure("p95_ms"), &total["p95_ms"]);
        let versions: Vec<&str> = connector["deployment"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap())
            .collect();
        assert_eq!(page.get(&figure("versions")), versions.join(", "));
    }
    let echo = &connectors[0];
    assert_eq!(echo["deployment"]["name"], "echo");
    assert_eq!(page.get("connector.echo.canary"), "0.2.0 · 25 %");
    assert_eq!(page.get("connector.logistics-tracking.canary"), "none");
    let codes = page.get("connector.logistics-tracking.top_codes");
    assert_eq!(
        codes, "tracking_not_found ×2, schema_violation ×1, upstream_unavailable ×1",
        "error codes, most first"
    );

    // The chart's legend adds up the minutes the API returned.
    let mut by_code: BTreeMap<String, u64> = BTreeMap::new();
    for connector in connectors {
        for minute in connector["minutes"].as_array().unwrap() {
            for (code, n) in minute["codes"].as_object().unwrap() {
                *by_code.entry(code.clone()).or_default() += n.as_u64().unwrap();
            }
        }
    }
    assert_eq!(by_code["ok"], ok);
    for (code, n) in &by_code {
        page.assert_number(&format!("chart.code.{code}"), *n as f64, 0.0);
    }
    assert!(
        dom.matches(r#"data-code="ok""#).count() >= 1,
        "the chart drew bars"
    );

    let alert = &alerts["firing"][0];
    page.assert_number("alerts.firing", 1.0, 0.0);
    let id = alert["id"].as_u64().unwrap();
    assert_eq!(page.get(&format!("alert.{id}.state")), "firing");
    assert_eq!(page.get(&format!("alert.{id}.connector")), LOGISTICS);
    assert_eq!(page.get(&format!("alert.{id}.rule")), "failure_rate");
    page.assert_number(
        &format!("alert.{id}.value"),
        alert["value"].as_f64().unwrap(),
        0.0051,
    );

    let records = audit["records"].as_array().unwrap();
    let rows: Vec<&String> = page
        .0
        .keys()
        .filter(|name| name.starts_with("audit.") && name.ends_with(".sequence"))
        .collect();
    assert_eq!(rows.len(), 15, "the newest fifteen records");
    for row in rows {
        let sequence = page.get(row);
        let number: u64 = sequence.parse().unwrap();
        let record = records
            .iter()
            .find(|r| r["sequence"] == number)
            .unwrap_or_else(|| panic!("audit record {sequence} is not in the API"));
        for field in ["kind", "actor", "connector", "status", "code"] {
            let shown = page.get(&format!("audit.{sequence}.{field}"));
            let expected = record[field]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("–");
            assert_eq!(shown, expected, "audit {sequence} {field}");
        }
    }
    assert_eq!(
        page.get(&format!("audit.{}.sequence", records[0]["sequence"])),
        records[0]["sequence"].to_string(),
        "the newest record leads"
    );

    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    headless(
        &url,
        &temp.path().join("profile"),
        &format!("--screenshot={}", screenshot.display()),
    );
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a screenshot of the drawn page"
    );
    println!("dashboard screenshot: {}", screenshot.display());
}
