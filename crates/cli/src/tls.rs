//! `suanwang tls`: a private CA for a control plane and its agents, so that TLS
//! (and mutual TLS) needs no other tool. `tls init DIR` makes the CA and the
//! server's certificate; `tls agent DIR --site SITE` makes an agent's client
//! certificate naming its site. The demo's `--tls` uses the same functions.
//!
//! Keys are ECDSA P-256; certificates last `--days` (default 397, the longest
//! browsers accept for a server). Private keys are written with mode 0600.

use anyhow::{Context, bail};
use clap::Subcommand;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Make a private CA (ca.pem, ca-key.pem) and the server's certificate
    /// signed by it (server.pem, server-key.pem) in DIR. Serve with
    /// `serve --tls-cert DIR/server.pem --tls-key DIR/server-key.pem`; clients
    /// trust it with `--ca-cert DIR/ca.pem` (or SUANWANG_CA_CERT).
    Init {
        /// Directory to write into (created; existing files are not replaced).
        dir: PathBuf,
        /// Names the server answers to: DNS names or IP addresses (repeatable).
        #[arg(long = "host", default_values = ["localhost", "127.0.0.1", "::1"])]
        hosts: Vec<String>,
        /// Days the certificates are valid.
        #[arg(long, default_value_t = 397)]
        days: u32,
    },
    /// Make an agent's client certificate for mutual TLS, signed by DIR's CA:
    /// its common name is the site (agent-SITE.pem, agent-SITE-key.pem in DIR).
    /// Run the agent with `--client-cert` and `--client-key`, and the server
    /// with `--tls-client-ca DIR/ca.pem`.
    Agent {
        /// The CA's directory (from `tls init`).
        dir: PathBuf,
        /// The site the certificate names.
        #[arg(long)]
        site: String,
        /// Days the certificate is valid.
        #[arg(long, default_value_t = 397)]
        days: u32,
    },
}

pub fn run(command: TlsCommand) -> anyhow::Result<()> {
    match command {
        TlsCommand::Init { dir, hosts, days } => {
            let files = init(&dir, &hosts, days)?;
            println!(
                "CA:     {} (trust this: --ca-cert / SUANWANG_CA_CERT)",
                files.ca.display()
            );
            println!(
                "server: {} and {}",
                files.cert.display(),
                files.key.display()
            );
            println!(
                "serve:  suanwang serve --tls-cert {} --tls-key {}",
                files.cert.display(),
                files.key.display()
            );
            Ok(())
        }
        TlsCommand::Agent { dir, site, days } => {
            let (cert, key) = agent_certificate(&dir, &site, days)?;
            println!(
                "agent:  suanwang agent --site {site} --client-cert {} --client-key {}",
                cert.display(),
                key.display()
            );
            Ok(())
        }
    }
}

/// The files `tls init` writes.
#[derive(Debug, Clone)]
pub struct ServerFiles {
    /// The CA's certificate.
    pub ca: PathBuf,
    /// The server's certificate.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

/// Makes a CA and a server certificate for `hosts` in `dir`; refuses to replace
/// existing files.
pub fn init(dir: &Path, hosts: &[String], days: u32) -> anyhow::Result<ServerFiles> {
    if hosts.is_empty() {
        bail!("give at least one --host (a DNS name or an IP address)");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let files = ServerFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
    };
    let ca_key_path = dir.join("ca-key.pem");
    for path in [&files.ca, &ca_key_path, &files.cert, &files.key] {
        if path.exists() {
            bail!(
                "{} exists: not replacing it (remove it, or use another directory)",
                path.display()
            );
        }
    }
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = name("suanwang private CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut ca_params, days);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(hosts.to_vec())
        .with_context(|| format!("--host {hosts:?}: not DNS names or IP addresses"))?;
    params.distinguished_name = name(&hosts[0]);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days);
    let server_cert = params.signed_by(&server_key, &issuer)?;

    write(&files.ca, &ca_cert.pem(), false)?;
    write(&ca_key_path, &ca_key_pem, true)?;
    write(&files.cert, &server_cert.pem(), false)?;
    write(&files.key, &server_key.serialize_pem(), true)?;
    Ok(files)
}

/// Makes a client certificate naming `site`, signed by the CA in `dir`.
pub fn agent_certificate(dir: &Path, site: &str, days: u32) -> anyhow::Result<(PathBuf, PathBuf)> {
    if site.is_empty()
        || !site
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        bail!("--site {site:?}: a site id is letters, digits, '-', '_' and '.'");
    }
    let ca_path = dir.join("ca.pem");
    let ca_key_path = dir.join("ca-key.pem");
    let ca_pem = std::fs::read_to_string(&ca_path).with_context(|| {
        format!(
            "cannot read the CA certificate {} (run `suanwang tls init` first)",
            ca_path.display()
        )
    })?;
    let ca_key_pem = std::fs::read_to_string(&ca_key_path)
        .with_context(|| format!("cannot read the CA key {}", ca_key_path.display()))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem)
        .with_context(|| format!("{}: not a PEM private key", ca_key_path.display()))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)
        .with_context(|| format!("{}: not a CA certificate", ca_path.display()))?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = name(site);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days);
    let cert = params.signed_by(&key, &issuer)?;
    let cert_path = dir.join(format!("agent-{site}.pem"));
    let key_path = dir.join(format!("agent-{site}-key.pem"));
    write(&cert_path, &cert.pem(), false)?;
    write(&key_path, &key.serialize_pem(), true)?;
    Ok((cert_path, key_path))
}

fn name(common: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common);
    dn.push(DnType::OrganizationName, "suanwang");
    dn
}

fn validity(params: &mut CertificateParams, days: u32) {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    // An hour's slack for clocks that lag.
    params.not_before = now - std::time::Duration::from_secs(3600);
    params.not_after = now + std::time::Duration::from_secs(u64::from(days) * 86_400);
}

fn write(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
