//! TLS for the API: rustls with the `ring` provider, TLS 1.3 only unless
//! TLS 1.2 is allowed, the certificate chain and key read from PEM files.
//!
//! Handshakes run concurrently, each bounded by [`HANDSHAKE_TIMEOUT`], so a
//! slow or silent client never holds up the others; a failed handshake is
//! logged at debug level and dropped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

/// Longest a client may take to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the certificate and key are, and which versions are offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM file with the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Also offer TLS 1.2, for clients that cannot speak 1.3.
    pub allow_tls12: bool,
}

/// The rustls configuration of `settings`; fails naming the file at fault.
pub fn server_config(settings: &TlsSettings) -> anyhow::Result<Arc<ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(&settings.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("reading the certificate chain {}", settings.cert.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "{} holds no certificate",
        settings.cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(&settings.key)
        .with_context(|| format!("reading the private key {}", settings.key.display()))?;
    let versions: &[&rustls::SupportedProtocolVersion] = if settings.allow_tls12 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .context("choosing the TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .with_context(|| {
            format!(
                "{} and {} do not make a usable certificate and key",
                settings.cert.display(),
                settings.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TCP listener whose connections are TLS streams once their handshake is done.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl TlsListener {
    /// Serves TLS with `config` on the bound `tcp`.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> Self {
        Self {
            tcp,
            acceptor: TlsAcceptor::from(config),
            handshakes: JoinSet::new(),
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let acceptor = self.acceptor.clone();
                        self.handshakes.spawn(async move {
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(tls)) => Some((tls, peer)),
                                Ok(Err(err)) => {
                                    tracing::debug!(%peer, error = %err, "TLS handshake failed");
                                    None
                                }
                                Err(_) => {
                                    tracing::debug!(%peer, "TLS handshake timed out");
                                    None
                                }
                            }
                        });
                    }
                    Err(err) => {
                        // Out of file descriptors and the like: back off, as axum does.
                        tracing::error!(error = %err, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(ready)) = done {
                        return ready;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::TlsConnector;
    use tokio_rustls::rustls::ClientConfig;

    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tls")
            .join(name)
    }

    fn settings(allow_tls12: bool) -> TlsSettings {
        TlsSettings {
            cert: fixture("cert.pem"),
            key: fixture("key.pem"),
            allow_tls12,
        }
    }

    fn client(versions: &[&'static rustls::SupportedProtocolVersion]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(fixture("ca.pem")).expect("ca.pem") {
            roots.add(cert.expect("a certificate")).expect("a root");
        }
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(versions)
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }

    /// Serves one echo of a line over TLS; returns the address.
    async fn serve(settings: &TlsSettings) -> SocketAddr {
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut listener = TlsListener::new(tcp, server_config(settings).expect("config"));
        let addr = axum::serve::Listener::local_addr(&listener).expect("addr");
        tokio::spawn(async move {
            loop {
                let (mut io, _) = axum::serve::Listener::accept(&mut listener).await;
                let mut buf = [0; 5];
                if io.read_exact(&mut buf).await.is_ok() {
                    let _ = io.write_all(&buf).await;
                }
            }
        });
        addr
    }

    async fn talk(
        addr: SocketAddr,
        connector: &TlsConnector,
    ) -> std::io::Result<rustls::ProtocolVersion> {
        let tcp = TcpStream::connect(addr).await?;
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("a name");
        let mut tls = connector.connect(name, tcp).await?;
        tls.write_all(b"hello").await?;
        let mut echo = [0; 5];
        tls.read_exact(&mut echo).await?;
        assert_eq!(&echo, b"hello");
        Ok(tls.get_ref().1.protocol_version().expect("negotiated"))
    }

    #[tokio::test]
    async fn tls13_is_spoken_and_tls12_refused_unless_allowed() {
        let strict = serve(&settings(false)).await;
        let any = client(&[&rustls::version::TLS13, &rustls::version::TLS12]);
        let only12 = client(&[&rustls::version::TLS12]);
        assert_eq!(
            talk(strict, &any).await.expect("TLS 1.3"),
            rustls::ProtocolVersion::TLSv1_3
        );
        assert!(
            talk(strict, &only12).await.is_err(),
            "TLS 1.2 is refused by default"
        );

        let lenient = serve(&settings(true)).await;
        assert_eq!(
            talk(lenient, &only12).await.expect("TLS 1.2"),
            rustls::ProtocolVersion::TLSv1_2
        );
    }

    #[tokio::test]
    async fn a_silent_client_does_not_hold_up_the_next_handshake() {
        let addr = serve(&settings(false)).await;
        let _silent = TcpStream::connect(addr).await.expect("connect");
        let any = client(&[&rustls::version::TLS13]);
        let spoken = tokio::time::timeout(Duration::from_secs(5), talk(addr, &any)).await;
        assert!(matches!(spoken, Ok(Ok(_))), "{spoken:?}");
    }

    #[test]
    fn unreadable_files_are_named_in_the_error() {
        let missing = TlsSettings {
            cert: fixture("missing.pem"),
            ..settings(false)
        };
        let error = format!("{:#}", server_config(&missing).expect_err("refused"));
        assert!(
            error.starts_with("reading the certificate chain"),
            "{error}"
        );
        assert!(error.contains("missing.pem"), "{error}");
        let swapped = TlsSettings {
            cert: fixture("key.pem"),
            key: fixture("cert.pem"),
            allow_tls12: false,
        };
        assert!(server_config(&swapped).is_err());
    }
}
