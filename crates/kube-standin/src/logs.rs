//! The kubelet's container-log endpoint, so that `pods/log` works: the API
//! server connects to `https://<node InternalIP>:<daemonEndpoints.kubeletEndpoint.Port>`
//! and asks `GET /containerLogs/NAMESPACE/POD/CONTAINER?follow=&tailLines=&limitBytes=`;
//! this answers with the pod's output file. It listens on 127.0.0.1 only, with a
//! self-signed certificate (the API server does not check the kubelet's
//! certificate unless `--kubelet-certificate-authority` is set) and no client
//! authentication. `timestamps`, `sinceSeconds` and `sinceTime` are ignored;
//! `previous=true` is answered 400 (there are no restarts).

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tracing::{debug, warn};

/// One pod's output: its file, and whether its process has ended.
#[derive(Clone)]
pub struct Output {
    pub path: PathBuf,
    pub container: String,
    pub done: Arc<AtomicBool>,
}

/// The outputs of the pods this node runs or ran, by (namespace, pod name).
pub type Outputs = Arc<Mutex<HashMap<(String, String), Output>>>;

/// Starts the endpoint on 127.0.0.1 (a free port); returns the port.
pub async fn serve(outputs: Outputs) -> Result<u16> {
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
        .context("making the log endpoint's certificate")?;
    let cert = key.cert.der().clone();
    let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(vec![cert], private)
        .context("the log endpoint's TLS configuration")?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the log endpoint on 127.0.0.1")?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let outputs = outputs.clone();
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(tls) => {
                        if let Err(e) = answer(tls, outputs).await {
                            debug!("log request: {e:#}");
                        }
                    }
                    Err(e) => debug!("log endpoint TLS: {e}"),
                }
            });
        }
    });
    Ok(port)
}

async fn respond<W: AsyncWriteExt + Unpin>(
    w: &mut W,
    code: u16,
    reason: &str,
    body: &str,
) -> Result<()> {
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    w.write_all(head.as_bytes()).await?;
    w.write_all(body.as_bytes()).await?;
    w.shutdown().await?;
    Ok(())
}

/// The query parameters of a request target.
fn query(target: &str) -> HashMap<String, String> {
    target
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The last `n` lines of `bytes`.
fn tail_lines(bytes: &[u8], n: usize) -> &[u8] {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &bytes[i + 1..];
            }
        }
    }
    if n == 0 { &bytes[bytes.len()..] } else { bytes }
}

async fn answer<S>(stream: S, outputs: Outputs) -> Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut stream = BufReader::new(stream);
    let mut request = String::new();
    stream.read_line(&mut request).await?;
    // The headers are not needed; read up to the blank line.
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (ns, pod, container) = match (method, segments.as_slice()) {
        ("GET", ["containerLogs", ns, pod, container]) => (*ns, *pod, *container),
        _ => {
            return respond(
                &mut stream,
                404,
                "Not Found",
                "the stand-in kubelet serves only /containerLogs/NAMESPACE/POD/CONTAINER\n",
            )
            .await;
        }
    };
    let params = query(target);
    if params.get("previous").is_some_and(|v| v == "true") {
        let msg =
            format!("previous terminated container \"{container}\" in pod \"{pod}\" not found\n");
        return respond(&mut stream, 400, "Bad Request", &msg).await;
    }
    let output = outputs
        .lock()
        .unwrap()
        .get(&(ns.to_string(), pod.to_string()))
        .cloned();
    let Some(output) = output else {
        let msg = format!("pod {ns}/{pod} has not run on this node\n");
        return respond(&mut stream, 404, "Not Found", &msg).await;
    };
    if output.container != container {
        let msg = format!(
            "container {container} is not valid for pod {pod}: the stand-in runs only {}\n",
            output.container
        );
        return respond(&mut stream, 400, "Bad Request", &msg).await;
    }
    let follow = params.get("follow").is_some_and(|v| v == "true");
    let limit = params.get("limitBytes").and_then(|v| v.parse::<u64>().ok());
    let tail = params
        .get("tailLines")
        .and_then(|v| v.parse::<usize>().ok());
    let mut file = tokio::fs::File::open(&output.path)
        .await
        .with_context(|| format!("opening {}", output.path.display()))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).await?;
    let mut offset = bytes.len() as u64;
    let mut first: Vec<u8> = match tail {
        Some(n) => tail_lines(&bytes, n).to_vec(),
        None => bytes,
    };
    if let Some(limit) = limit {
        first.truncate(limit as usize);
    }
    if !follow {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            first.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&first).await?;
        stream.shutdown().await?;
        return Ok(());
    }
    // Follow: no length; the body ends when the process has ended and all its
    // output is sent (or the limit is reached).
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        .await?;
    let mut sent = first.len() as u64;
    stream.write_all(&first).await?;
    stream.flush().await?;
    loop {
        if limit.is_some_and(|l| sent >= l) {
            break;
        }
        let done = output.done.load(Ordering::SeqCst);
        file.seek(std::io::SeekFrom::Start(offset)).await?;
        let mut more = Vec::new();
        file.read_to_end(&mut more).await?;
        offset += more.len() as u64;
        if let Some(l) = limit {
            more.truncate((l - sent) as usize);
        }
        if !more.is_empty() {
            sent += more.len() as u64;
            if let Err(e) = stream.write_all(&more).await {
                warn!("following {}: {e}", output.path.display());
                return Ok(());
            }
            stream.flush().await?;
        } else if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stream.shutdown().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_and_queries() {
        assert_eq!(tail_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail_lines(b"a\nb\nc", 1), b"c");
        assert_eq!(tail_lines(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(tail_lines(b"a\nb\n", 0), b"");
        let q = query("/containerLogs/a/b/c?follow=true&tailLines=3");
        assert_eq!(q["follow"], "true");
        assert_eq!(q["tailLines"], "3");
    }
}
