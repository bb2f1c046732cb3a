//! TLS for the API: `serve --tls-cert FILE --tls-key FILE` ([`server_config`],
//! [`TlsListener`]), with rustls. Optional mutual TLS: given a client CA
//! (`--tls-client-ca FILE`), the server asks every client for a certificate
//! signed by it; tenants and operators may present none, an agent that presents
//! one must present one naming its credential's site (its subject's common name,
//! or else its first DNS name), and `--require-agent-certificate` refuses agents
//! without one ([`crate::auth::authenticate`]). The certificate is then a
//! second factor beside the site's token.
//!
//! Every connection's [`Peer`] (address and certificate's site) reaches the
//! handlers as `ConnectInfo<Peer>`, over TLS or not.

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

pub use rustls::ServerConfig;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is at the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    /// The site its client certificate names (mutual TLS), if it presented one.
    pub certificate_site: Option<Arc<str>>,
}

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Peer {
        Peer {
            addr: *stream.remote_addr(),
            certificate_site: None,
        }
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Peer {
        stream.remote_addr().clone()
    }
}

/// A TLS configuration that could not be loaded: says which file and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// The files of a server's TLS set-up.
#[derive(Debug, Clone, Copy)]
pub struct TlsFiles<'a> {
    /// The server's certificate chain (PEM), leaf first.
    pub cert: &'a Path,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: &'a Path,
    /// The CA that signs clients' certificates (PEM), for mutual TLS.
    pub client_ca: Option<&'a Path>,
}

/// Reads the certificates in a PEM file; at least one.
pub fn read_certificates(
    path: &Path,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError(format!("reading the {what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "the {what} {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}

/// The server's rustls configuration from `files`: HTTP/1.1 by ALPN, TLS 1.2
/// and 1.3.
pub fn server_config(files: TlsFiles<'_>) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_certificates(files.cert, "TLS certificate")?;
    let key = PrivateKeyDer::from_pem_file(files.key).map_err(|e| {
        TlsError(format!(
            "reading the TLS private key {}: {e} (a PEM PKCS#8, PKCS#1 or SEC1 key is expected)",
            files.key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS versions: {e}")))?;
    let builder = match files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certificates(path, "client CA certificate")? {
                roots.add(cert).map_err(|e| {
                    TlsError(format!(
                        "the client CA certificate {} is not usable: {e}",
                        path.display()
                    ))
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            // Tenants, operators and the console present no certificate;
            // agents are checked by `auth::authenticate`.
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError(format!("the client CA {}: {e}", path.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        TlsError(format!(
            "the certificate {} and key {} do not make a TLS identity: {e}",
            files.cert.display(),
            files.key.display()
        ))
    })?;
    // The server speaks HTTP/1.1 (axum is built without HTTP/2).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The site a client certificate names: its subject's common name, or else its
/// first DNS subject-alternative name.
pub fn certificate_site(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    if let Some(cn) = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
    {
        return Some(cn.to_string());
    }
    let names = cert.subject_alternative_name().ok()??;
    names
        .value
        .general_names
        .iter()
        .find_map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(dns) => Some((*dns).to_string()),
            _ => None,
        })
}

/// Accepts TCP connections and finishes their TLS handshakes concurrently (a
/// slow or silent client holds up no one), handing on the ones that succeed.
/// A client that does not speak TLS, or does not trust the server, is dropped
/// (logged at debug).
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, Peer)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Serves TLS with `config` on `listener`.
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    // The server stopped: stop accepting (and free the port).
                    () = tx.closed() => return,
                };
                let (stream, addr) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, as axum does.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let certificate_site = tls
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|chain| chain.first())
                                .and_then(|leaf| certificate_site(leaf))
                                .map(Arc::from);
                            let peer = Peer {
                                addr,
                                certificate_site,
                            };
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Peer) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The accepting task ended: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Peer> {
        Ok(Peer {
            addr: self.local,
            certificate_site: None,
        })
    }
}
