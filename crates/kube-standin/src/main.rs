//! `suanwang-kube-standin`: a stand-in for the kubelet, playing one node of a real
//! Kubernetes control plane (kube-apiserver, kube-scheduler, controller manager)
//! on a machine where no kubelet can run (no container runtime). It is for the
//! Kubernetes executor's tests (`tools/start-kubernetes.sh` starts one node).
//!
//! What it does:
//! - registers its Node (capacity = allocatable = the flags, the labels, a Ready
//!   condition kept fresh every 10 s) and removes the `node.kubernetes.io/not-ready`
//!   taint that admission puts on a new node (the node lifecycle controller would);
//! - watches the pods bound to it (`spec.nodeName`, all namespaces) and really runs
//!   each one's first container `command` + `args` as a local process (its `env`
//!   values and `workingDir`; the image is ignored), output to one file per pod;
//!   reports Running, then Succeeded (exit 0) or Failed (the exit code; 128 +
//!   signal) through `pods/status`;
//! - on a pod's deletion sends SIGTERM to its process group, SIGKILL after the
//!   grace period (at most 30 s), then deletes the pod with grace 0;
//! - on SIGTERM/SIGINT stops its processes (their pods Failed, reason
//!   `NodeShutdown`), deletes its Node and exits 0.
//!
//! - serves `pods/log` from the output files (`logs.rs`).
//!
//! What it does not: images, init and sidecar containers (only the first
//! container runs), volumes, probes, restarts (`restartPolicy` is treated as
//! Never), resource limits, `exec`, `attach` or port-forward.

mod logs;
mod pods;
mod quantity;

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, Config};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

/// How often the Ready condition's heartbeat is renewed.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// A stand-in for the kubelet: plays one Kubernetes node, running the pods bound
/// to it as local processes. RUST_LOG sets the log filter (default: info).
#[derive(Debug, Parser)]
#[command(name = "suanwang-kube-standin", version)]
struct Args {
    /// Kubeconfig of an identity that may create and delete nodes and update pods
    /// (the administrator's).
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Name of the node to play.
    #[arg(long)]
    node: String,
    /// CPUs the node offers (a Kubernetes quantity: 4, 2.5, 500m).
    #[arg(long, default_value = "4", value_parser = quantity::parse_cpu)]
    cpu: String,
    /// Memory the node offers (a Kubernetes quantity: 8Gi, 512Mi).
    #[arg(long, default_value = "8Gi", value_parser = quantity::parse_quantity)]
    memory: String,
    /// An extended resource the node offers, NAME=QTY (repeatable):
    /// nvidia.com/gpu=2, huawei.com/Ascend910=8.
    #[arg(long = "resource", value_name = "NAME=QTY", value_parser = parse_resource)]
    resources: Vec<(String, String)>,
    /// A node label, KEY=VALUE (repeatable): suanwang.io/pool=default.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// How many pods the node takes.
    #[arg(long, default_value_t = 110)]
    pods: u32,
    /// Where pod processes run and their output files go (default
    /// /tmp/suanwang-kube-standin/NODE).
    #[arg(long)]
    workdir: Option<PathBuf>,
}

fn parse_resource(s: &str) -> Result<(String, String), String> {
    let (name, qty) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not NAME=QTY (e.g. nvidia.com/gpu=2)"))?;
    // Extended resources must be domain-qualified and not in kubernetes.io.
    if !name.contains('/') || name.ends_with('/') || name.starts_with('/') {
        return Err(format!(
            "'{name}' is not an extended resource name (DOMAIN/NAME, e.g. nvidia.com/gpu)"
        ));
    }
    let qty = quantity::parse_quantity(qty).map_err(|e| format!("{name}: {e}"))?;
    Ok((name.to_string(), qty))
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not KEY=VALUE (e.g. suanwang.io/pool=default)"))?;
    if k.is_empty() {
        return Err(format!("'{s}': the label key is empty"));
    }
    Ok((k.to_string(), v.to_string()))
}

fn main() {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => {
            tracing_subscriber::EnvFilter::builder().parse_lossy(spec)
        }
        _ => tracing_subscriber::EnvFilter::new("warn,suanwang_kube_standin=info"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A line that cannot be written is dropped (see crates/cli/src/logging.rs).
        .log_internal_errors(false)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .init();
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!("suanwang-kube-standin: error: {e:#}");
        std::process::exit(1);
    }
}

/// Connects with the kubeconfig and checks that the API server answers.
async fn connect(path: &Path) -> Result<Client> {
    let kubeconfig = Kubeconfig::read_from(path)
        .with_context(|| format!("--kubeconfig {}: cannot read it", path.display()))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("--kubeconfig {}: not a usable kubeconfig", path.display()))?;
    let url = config.cluster_url.clone();
    let client = Client::try_from(config)
        .with_context(|| format!("--kubeconfig {}: cannot make a client", path.display()))?;
    match tokio::time::timeout(Duration::from_secs(10), client.apiserver_version()).await {
        Ok(Ok(version)) => {
            info!(server = %url, version = %version.git_version, "connected");
            Ok(client)
        }
        Ok(Err(e)) => Err(anyhow!(
            "cannot reach the API server at {url} (from --kubeconfig {}): {e}",
            path.display()
        )),
        Err(_) => Err(anyhow!(
            "the API server at {url} (from --kubeconfig {}) did not answer within 10 s",
            path.display()
        )),
    }
}

/// The node as this stand-in plays it.
struct NodeSpec {
    name: String,
    /// The port of the container-log endpoint (`logs::serve`).
    log_port: u16,
    labels: BTreeMap<String, String>,
    capacity: BTreeMap<String, String>,
}

fn now() -> String {
    let t = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(t.as_second())
        .expect("a timestamp")
        .to_string()
}

impl NodeSpec {
    fn from_args(args: &Args, log_port: u16) -> NodeSpec {
        let mut labels = BTreeMap::from([
            ("kubernetes.io/hostname".to_string(), args.node.clone()),
            ("kubernetes.io/os".to_string(), "linux".to_string()),
            (
                "kubernetes.io/arch".to_string(),
                std::env::consts::ARCH
                    .replace("x86_64", "amd64")
                    .replace("aarch64", "arm64"),
            ),
        ]);
        labels.extend(args.labels.iter().cloned());
        let mut capacity = BTreeMap::from([
            ("cpu".to_string(), args.cpu.clone()),
            ("memory".to_string(), args.memory.clone()),
            ("pods".to_string(), args.pods.to_string()),
        ]);
        capacity.extend(args.resources.iter().cloned());
        NodeSpec {
            name: args.node.clone(),
            log_port,
            labels,
            capacity,
        }
    }

    fn conditions(&self) -> Value {
        let t = now();
        let cond = |kind: &str, status: &str, reason: &str, message: &str| {
            json!({"type": kind, "status": status, "reason": reason, "message": message,
                   "lastHeartbeatTime": t, "lastTransitionTime": t})
        };
        json!([
            cond(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "stand-in node"
            ),
            cond(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "stand-in node"
            ),
            cond(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "stand-in node"
            ),
            cond(
                "Ready",
                "True",
                "KubeletReady",
                "suanwang-kube-standin is posting ready status"
            ),
        ])
    }

    fn status(&self) -> Value {
        json!({
            "capacity": self.capacity,
            "allocatable": self.capacity,
            "conditions": self.conditions(),
            // No Hostname address: the API server would try that name first to
            // reach the log endpoint, and it does not resolve.
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.log_port}},
            "nodeInfo": {
                "machineID": "", "systemUUID": "", "bootID": "",
                "kernelVersion": "", "osImage": "suanwang-kube-standin",
                "containerRuntimeVersion": "standin://0",
                "kubeletVersion": "v1.20.2", "kubeProxyVersion": "v1.20.2",
                "operatingSystem": "linux",
                "architecture": self.labels["kubernetes.io/arch"],
            },
        })
    }

    /// Creates the node, or replaces an existing one's labels and status; then
    /// removes the not-ready/unreachable taints.
    async fn register(&self, nodes: &Api<Node>) -> Result<()> {
        let existing = nodes
            .get_opt(&self.name)
            .await
            .context("reading the node")?;
        let body: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.name, "labels": self.labels},
            "spec": {},
            "status": self.status(),
        }))?;
        match existing {
            None => {
                nodes
                    .create(&PostParams::default(), &body)
                    .await
                    .with_context(|| format!("creating node {}", self.name))?;
                info!(node = %self.name, "node created");
            }
            Some(_) => {
                // Replace the labels wholesale (a JSON merge patch would keep
                // stale ones): null out the ones we do not set.
                let mut labels = serde_json::Map::new();
                if let Some(old) = existing.as_ref().and_then(|n| n.metadata.labels.as_ref()) {
                    for k in old.keys() {
                        labels.insert(k.clone(), Value::Null);
                    }
                }
                for (k, v) in &self.labels {
                    labels.insert(k.clone(), json!(v));
                }
                nodes
                    .patch(
                        &self.name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"labels": labels},
                                             "spec": {"unschedulable": null}})),
                    )
                    .await
                    .with_context(|| format!("updating node {}", self.name))?;
                info!(node = %self.name, "node existed: labels replaced");
            }
        }
        nodes
            .patch_status(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": self.status()})),
            )
            .await
            .with_context(|| format!("setting node {}'s status", self.name))?;
        self.untaint(nodes).await
    }

    /// Removes the `node.kubernetes.io/not-ready` (and `unreachable`) taints:
    /// admission puts not-ready on every new node and the node lifecycle
    /// controller, which would take it off, does not run here.
    async fn untaint(&self, nodes: &Api<Node>) -> Result<()> {
        for _ in 0..10 {
            let node = nodes.get(&self.name).await.context("reading the node")?;
            let taints = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default();
            let keep: Vec<_> = taints
                .iter()
                .filter(|t| {
                    t.key != "node.kubernetes.io/not-ready"
                        && t.key != "node.kubernetes.io/unreachable"
                })
                .collect();
            if keep.len() == taints.len() {
                return Ok(());
            }
            // The resourceVersion makes this a compare-and-swap.
            let patch = json!({
                "metadata": {"resourceVersion": node.metadata.resource_version},
                "spec": {"taints": keep},
            });
            match nodes
                .patch(&self.name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => {
                    info!(node = %self.name, "removed the not-ready taint");
                    return Ok(());
                }
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(e).context("removing the not-ready taint"),
            }
        }
        Err(anyhow!(
            "removing the not-ready taint: 10 conflicting updates in a row"
        ))
    }

    async fn heartbeat(&self, nodes: &Api<Node>) -> Result<()> {
        // A strategic merge patch: the conditions merge by type, keeping their
        // lastTransitionTime.
        let t = now();
        let patch = json!({"status": {"conditions": [
            {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": t},
            {"type": "DiskPressure", "status": "False", "lastHeartbeatTime": t},
            {"type": "PIDPressure", "status": "False", "lastHeartbeatTime": t},
            {"type": "Ready", "status": "True", "reason": "KubeletReady",
             "message": "suanwang-kube-standin is posting ready status",
             "lastHeartbeatTime": t},
        ]}});
        match nodes
            .patch_status(
                &self.name,
                &PatchParams::default(),
                &Patch::Strategic(patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => {
                warn!(node = %self.name, "the node was deleted; registering it again");
                self.register(nodes).await
            }
            Err(e) => Err(e).context("renewing the node's heartbeat"),
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let workdir = args
        .workdir
        .clone()
        .unwrap_or_else(|| PathBuf::from("/tmp/suanwang-kube-standin").join(&args.node));
    tokio::fs::create_dir_all(&workdir)
        .await
        .with_context(|| format!("--workdir {}: cannot create it", workdir.display()))?;
    let client = connect(&args.kubeconfig).await?;
    let outputs = logs::Outputs::default();
    let log_port = logs::serve(outputs.clone()).await?;
    let node = NodeSpec::from_args(&args, log_port);
    let nodes: Api<Node> = Api::all(client.clone());
    node.register(&nodes).await?;
    info!(node = %node.name, capacity = ?node.capacity, workdir = %workdir.display(), "node Ready");

    let mut sigterm = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    let mut kubelet = pods::Kubelet::new(client.clone(), node.name.clone(), workdir, outputs);
    let pods_api: Api<Pod> = Api::all(client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={}", node.name));
    let mut stream = watcher(pods_api, config).boxed();
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.tick().await;
    let mut watch_errors = 0u32;
    loop {
        tokio::select! {
            _ = sigterm.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = sigint.recv() => { info!("SIGINT: shutting down"); break; }
            _ = beat.tick() => {
                if let Err(e) = node.heartbeat(&nodes).await {
                    warn!("{e:#}");
                }
            }
            event = stream.next() => match event {
                Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => {
                    watch_errors = 0;
                    kubelet.observe(pod).await;
                }
                Some(Ok(watcher::Event::Delete(pod))) => kubelet.gone(&pod),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    // The watcher retries on the next poll; back off a little.
                    watch_errors += 1;
                    warn!("watching pods: {e}");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(watch_errors.min(25)))).await;
                }
                None => return Err(anyhow!("the pod watch ended")),
            },
            Some(done) = kubelet.finished.recv() => kubelet.reap(done),
        }
    }
    kubelet.shutdown().await;
    match nodes.delete(&node.name, &DeleteParams::default()).await {
        Ok(_) => info!(node = %node.name, "node deleted"),
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => error!(node = %node.name, "deleting the node: {e}"),
    }
    Ok(())
}
