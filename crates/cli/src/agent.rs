//! `suanwang agent`: a site's agent. It dials out to the control plane, registers
//! the site's capacity (creating the site first from `--site-file` if asked), then
//! heartbeats with telemetry, leases due work and runs it through the chosen
//! executor until SIGINT/SIGTERM.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use suanwang_agent::AgentConfig;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExecutorKind {
    /// Processes on this host.
    Local,
    /// A Slurm cluster through slurmrestd.
    Slurm,
    /// A Kubernetes cluster: one batch/v1 Job per lease.
    Kubernetes,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Control plane URL.
    #[arg(long, env = "SUANWANG_URL", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The site's agent token (`suanwang admin token --role agent --site SITE`;
    /// a provider's or operator's also works).
    #[arg(
        long,
        env = "SUANWANG_TOKEN",
        hide_env_values = true,
        required_unless_present = "token_file"
    )]
    token: Option<String>,
    /// A file holding the token, read again when it changes or the token is
    /// refused: rotate a credential by writing the new token here, then revoking
    /// the old one; running jobs go on.
    #[arg(long, env = "SUANWANG_TOKEN_FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// The site this agent runs work for.
    #[arg(long)]
    site: String,
    /// The CA certificate (PEM) that signed an https:// control plane's
    /// certificate, trusted instead of the system's CAs.
    #[arg(long, env = "SUANWANG_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// A client certificate naming this site (PEM; mutual TLS, made by
    /// `suanwang tls agent`); needs --client-key.
    #[arg(long, env = "SUANWANG_CLIENT_CERT", requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// The private key of --client-cert (PEM).
    #[arg(long, env = "SUANWANG_CLIENT_KEY", requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// Where jobs run.
    #[arg(long, value_enum, default_value = "local")]
    executor: ExecutorKind,
    /// slurmrestd's unix socket (slurm executor).
    #[arg(long, default_value = "/run/slurmrestd/slurmrestd.sock")]
    slurm_socket: PathBuf,
    /// A kubeconfig file (kubernetes executor); default: KUBECONFIG,
    /// ~/.kube/config, or the in-cluster service account.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The namespace Jobs are made in (kubernetes executor); default: the
    /// kubeconfig context's.
    #[arg(long)]
    k8s_namespace: Option<String>,
    /// The container image every Job runs (kubernetes executor).
    #[arg(long, default_value = suanwang_agent::kubernetes::DEFAULT_IMAGE)]
    k8s_image: String,
    /// An accelerator class and the extended resource its cards are requested
    /// by, e.g. a100=nvidia.com/gpu or ascend910b (the family's device-plugin
    /// name: nvidia.com/gpu, huawei.com/Ascend910, amd.com/gpu…); repeatable.
    /// Classes not named are not offered (kubernetes executor).
    #[arg(long, value_delimiter = ',')]
    k8s_resource: Vec<String>,
    /// Only nodes with this label count and run the site's Jobs, e.g.
    /// suanwang.io/pool=hami; repeatable (kubernetes executor).
    #[arg(long, value_delimiter = ',')]
    k8s_node_selector: Vec<String>,
    /// Seconds a finished Job is kept in the cluster (kubernetes executor).
    #[arg(long, default_value_t = 86_400)]
    k8s_ttl: i32,
    /// State directory: job directories, outputs, pid files (local executor).
    #[arg(long, default_value = "suanwang-agent")]
    data: PathBuf,
    /// Units offered in the classes named, e.g. cpu=8,mem_gib=16; the classes
    /// not named are offered as measured (the host's or the cluster's).
    #[arg(long, value_delimiter = ',')]
    capacity: Vec<String>,
    /// Run the verification probe before registering: a short f32 matrix
    /// product on the cores offered (accelerators are reported as not run:
    /// this agent links no GPU compute library); the results are registered
    /// and shown beside each class's nominal figure.
    #[arg(long)]
    probe: bool,
    /// A site definition (TOML, one `[site]` table in the topology format, and
    /// `[[accelerator]]` tables for models missing from the catalogue) to create
    /// or replace before registering: how a new data centre joins.
    #[arg(long)]
    site_file: Option<PathBuf>,
}

fn parse_capacity(items: &[String]) -> anyhow::Result<Option<BTreeMap<String, u64>>> {
    if items.is_empty() {
        return Ok(None);
    }
    let mut out = BTreeMap::new();
    for item in items {
        let (class, units) = item
            .split_once('=')
            .with_context(|| format!("--capacity {item:?}: expected CLASS=UNITS, e.g. cpu=8"))?;
        let class = suanwang_model::ResourceClass::parse(class).with_context(|| {
            format!(
                "--capacity {item:?}: unknown class {class:?} (known: {})",
                suanwang_model::ResourceClass::known_names()
            )
        })?;
        let units: u64 = units
            .parse()
            .with_context(|| format!("--capacity {item:?}: {units:?} is not a whole number"))?;
        out.insert(class.name().to_string(), units);
    }
    Ok(Some(out))
}

/// `KEY=VALUE` items of a repeatable flag; with `bare`, a lone `KEY` is allowed
/// (its value empty).
fn parse_pairs(
    flag: &str,
    items: &[String],
    bare: bool,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in items {
        let (key, value) = match item.split_once('=') {
            Some((key, value)) if !key.is_empty() && !value.is_empty() => (key, value),
            None if bare && !item.is_empty() => (item.as_str(), ""),
            _ => bail!("{flag} {item:?}: expected KEY=VALUE"),
        };
        if out.insert(key.to_string(), value.to_string()).is_some() {
            bail!("{flag}: {key:?} is given twice");
        }
    }
    Ok(out)
}

/// A site file: the site, and the accelerator models it declares.
struct SiteFile {
    site: suanwang_model::Site,
    accelerators: Vec<suanwang_model::AcceleratorSpec>,
}

/// Reads a `[site]` table (the topology format's site, as one table) and the
/// file's `[[accelerator]]` tables, which are registered in this process's
/// catalogue first so that the site may offer them.
fn read_site_file(path: &std::path::Path, site: &str) -> anyhow::Result<SiteFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let accelerators =
        suanwang_topology::register_accelerators(&text, &path.display().to_string())?;
    let doc: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}: not valid TOML", path.display()))?;
    let table = doc
        .get("site")
        .with_context(|| format!("{}: no [site] table", path.display()))?;
    let parsed: suanwang_model::Site =
        serde_path_to_error::deserialize(table.clone()).map_err(|e| {
            anyhow::anyhow!(
                "{}: [site] is not a valid site: site.{}: {}",
                path.display(),
                e.path(),
                e.inner()
            )
        })?;
    if parsed.id.0 != site {
        bail!(
            "{}: [site] id is {:?}, but --site is {site:?}",
            path.display(),
            parsed.id.0
        );
    }
    Ok(SiteFile {
        site: parsed,
        accelerators,
    })
}

pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    let token = match (&args.token, &args.token_file) {
        (Some(token), _) => token.clone(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .with_context(|| format!("--token-file {}: cannot read it", file.display()))?
            .trim()
            .to_string(),
        (None, None) => bail!("give --token or --token-file"),
    };
    if token.is_empty() {
        bail!("the token is empty (--token or --token-file)");
    }
    let site_doc = args
        .site_file
        .as_deref()
        .map(|p| read_site_file(p, &args.site))
        .transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let tls = suanwang_client::TlsOptions {
        ca_cert: args.ca_cert.clone(),
        identity: args.client_cert.clone().zip(args.client_key.clone()),
    };
    runtime.block_on(async {
        let client =
            suanwang_client::Client::new(&args.server, Some(token.clone())).with_tls(&tls)?;
        let capacity = match parse_capacity(&args.capacity) {
            Ok(capacity) => capacity,
            // A model the server's catalogue gained at run time (its topology's
            // or another site's): learn it, then read the flag again.
            Err(first) => {
                if client.learn_catalogue().await.is_err() {
                    return Err(first);
                }
                parse_capacity(&args.capacity).map_err(|_| first)?
            }
        };
        if let Some(SiteFile { site, accelerators }) = site_doc {
            for spec in &accelerators {
                client.put_accelerator(spec).await.with_context(|| {
                    format!(
                        "cannot add accelerator model {:?} (declared in {}) to the catalogue",
                        spec.name,
                        args.site_file.clone().unwrap_or_default().display()
                    )
                })?;
                eprintln!("accelerator model {} in the catalogue", spec.name);
            }
            client
                .put_site(&site)
                .await
                .with_context(|| format!("cannot create site {:?}", args.site))?;
            eprintln!(
                "site {} created or updated from {}",
                args.site,
                args.site_file.unwrap_or_default().display()
            );
        }
        let mut config = AgentConfig::new(&args.server, &token, &args.site);
        config.token_file = args.token_file.clone();
        config.tls = tls.clone();
        config.hostname = sysinfo::System::host_name();
        let stop = crate::serve::shutdown_signal();
        let probe = args.probe;
        let probe = move |config: &mut AgentConfig, offered: &BTreeMap<String, u64>| {
            if probe {
                config.probes = run_probe(offered);
            }
        };
        let stats = match args.executor {
            ExecutorKind::Local => {
                let (executor, reaped) = suanwang_agent::local::Local::new(&args.data, capacity)
                    .with_context(|| {
                        format!("cannot use the state directory {}", args.data.display())
                    })?;
                if reaped > 0 {
                    eprintln!("killed {reaped} job(s) left running by an earlier agent");
                }
                eprintln!(
                    "agent for site {} (local executor, {:?}) → {}",
                    args.site,
                    executor_capacity(&executor),
                    args.server
                );
                probe(&mut config, &executor_capacity(&executor));
                suanwang_agent::run(config, Arc::new(executor), stop).await?
            }
            ExecutorKind::Slurm => {
                let mut executor = suanwang_agent::slurm::Slurm::connect(
                    args.slurm_socket.clone(),
                    suanwang_agent::slurm::SlurmOptions::default(),
                )
                .await?;
                if let Some(overrides) = &capacity {
                    executor.override_capacity(overrides);
                }
                // The probe runs here, on the agent's host, not on the
                // cluster's nodes: its figure is the agent host's.
                probe(&mut config, &executor_capacity(&executor));
                eprintln!(
                    "agent for site {} (Slurm at {}) → {}",
                    args.site,
                    args.slurm_socket.display(),
                    args.server
                );
                suanwang_agent::run(config, Arc::new(executor), stop).await?
            }
            ExecutorKind::Kubernetes => {
                let mut options = suanwang_agent::kubernetes::KubeOptions::new(&args.site);
                options.kubeconfig = args.kubeconfig.clone();
                options.namespace = args.k8s_namespace.clone();
                options.image = args.k8s_image.clone();
                options.ttl_after_finished = Some(args.k8s_ttl);
                options.resources = parse_pairs("--k8s-resource", &args.k8s_resource, true)?;
                options.node_selector =
                    parse_pairs("--k8s-node-selector", &args.k8s_node_selector, false)?;
                if let Some(overrides) = &capacity {
                    options.capacity_overrides = overrides.clone();
                }
                let executor = suanwang_agent::kubernetes::Kubernetes::connect(options).await?;
                probe(&mut config, &executor_capacity(&executor));
                eprintln!(
                    "agent for site {} (Kubernetes at {}, namespace {}, {:?}) → {}",
                    args.site,
                    executor.url(),
                    executor.namespace(),
                    executor_capacity(&executor),
                    args.server
                );
                suanwang_agent::run(config, Arc::new(executor), stop).await?
            }
        };
        eprintln!(
            "agent stopped: {} leased, {} finished, {} stopped",
            stats.leased, stats.finished, stats.stopped
        );
        Ok(())
    })
}

/// Runs the verification probe on `offered` (blocking: a few hundred ms per
/// class) and prints what it found.
fn run_probe(offered: &BTreeMap<String, u64>) -> Vec<suanwang_client::api::Probe> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let probes = suanwang_agent::probe::run(offered, std::time::Duration::from_millis(300), now);
    for p in &probes {
        match p.gflops {
            Some(gflops) => eprintln!("probe {}: {gflops:.1} GFLOPS ({})", p.class, p.method),
            None => eprintln!(
                "probe {}: {}",
                p.class,
                p.note.as_deref().unwrap_or("not run")
            ),
        }
    }
    probes
}

fn executor_capacity(e: &impl suanwang_agent::Executor) -> BTreeMap<String, u64> {
    e.capacity()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_flags_name_what_is_wrong() {
        let ok = parse_capacity(&["cpu=8".into(), "A800=2".into()])
            .unwrap()
            .unwrap();
        assert_eq!(ok["cpu"], 8);
        assert_eq!(ok["a800"], 2);
        assert!(parse_capacity(&[]).unwrap().is_none());
        let e = parse_capacity(&["tpu=4".into()]).unwrap_err().to_string();
        assert!(e.contains("unknown class \"tpu\""), "{e}");
        let e = parse_capacity(&["cpu".into()]).unwrap_err().to_string();
        assert!(e.contains("CLASS=UNITS"), "{e}");
        let e = parse_capacity(&["cpu=-1".into()]).unwrap_err().to_string();
        assert!(e.contains("not a whole number"), "{e}");
    }
}
