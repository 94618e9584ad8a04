//! The binary serves HTTPS when given a certificate: TLS 1.3 by default,
//! TLS 1.2 refused unless allowed, plain HTTP refused.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::Host;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../host/tests/fixtures/tls")
        .join(name)
}

fn client(min: reqwest::tls::Version, max: reqwest::tls::Version) -> reqwest::Client {
    let ca = std::fs::read(fixture("ca.pem")).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .min_tls_version(min)
        .max_tls_version(max)
        .build()
        .unwrap()
}

#[tokio::test]
async fn with_a_certificate_the_api_speaks_tls13_and_refuses_older_or_plain_connections() {
    use reqwest::tls::Version;

    let temp = tempfile::tempdir().unwrap();
    let cert = fixture("cert.pem");
    let key = fixture("key.pem");
    let args = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let host = Host::start_with(&temp.path().join("data"), None, &args).await;
    assert!(host.url.starts_with("https://127.0.0.1:"), "{}", host.url);

    let tls13 = client(Version::TLS_1_3, Version::TLS_1_3)
        .get(format!("{}/healthz", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(tls13.status(), 200);

    let tls12 = client(Version::TLS_1_2, Version::TLS_1_2)
        .get(format!("{}/healthz", host.url))
        .send()
        .await;
    assert!(tls12.is_err(), "TLS 1.2 is refused by default: {tls12:?}");

    let plain = reqwest::Client::new()
        .get(host.url.replacen("https://", "http://", 1) + "/healthz")
        .send()
        .await;
    assert!(
        plain.is_err() || !plain.as_ref().unwrap().status().is_success(),
        "plain HTTP gets no answer from the API: {plain:?}"
    );

    let lenient_data = temp.path().join("lenient");
    let mut lenient_args = args.to_vec();
    lenient_args.push("--tls12");
    let lenient = Host::start_with(&lenient_data, None, &lenient_args).await;
    let tls12 = client(Version::TLS_1_2, Version::TLS_1_2)
        .get(format!("{}/healthz", lenient.url))
        .send()
        .await
        .unwrap();
    assert_eq!(tls12.status(), 200, "--tls12 lets TLS 1.2 clients in");
}
