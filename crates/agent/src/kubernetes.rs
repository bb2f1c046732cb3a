//! The Kubernetes executor: each lease becomes one batch/v1 Job in the agent's
//! namespace, watched (not polled) through the API server.
//!
//! - **start** creates the Job `suanwang-<job>-<token>` (the name is the lease,
//!   so a retried create finds the Job it made instead of making a second),
//!   labelled with the suanwang job, lease, site and tenant; one pod, never
//!   restarted (`backoffLimit` 0, `restartPolicy` Never: suanwang decides about
//!   retries), requests = limits from the demand, `activeDeadlineSeconds` from
//!   the declared run time ([`job_manifest`]).
//! - Three watches feed in-memory stores: this site's Jobs and pods (by label,
//!   in the namespace), every node, and every pod (for the capacity others
//!   use). One task maps each tracked Job and its pod to a [`Phase`] whenever a
//!   watch moves and sends [`Event`]s on changes: `Queued` with Kubernetes's
//!   reason while a pod waits (`Unschedulable: 0/3 nodes are available: …`),
//!   `Started` when it runs, `Finished` with the container's exit code.
//! - **stop** deletes the Job with its pods (background propagation);
//!   **preempt** orphans the pods, deletes them with the grace period asked
//!   (SIGTERM, grace, SIGKILL by the kubelet), then they are gone.
//! - **capacity** sums, over Ready and schedulable nodes that match the node
//!   selector, each node's allocatable minus what pods suanwang does not own
//!   here request, in whole cores, GiB and cards (per node, since one pod
//!   cannot span nodes).
//! - **recover**: after a restart the Jobs labelled with this site are found and
//!   their leases asked back from the control plane, so that work in flight
//!   goes on (and a finished Job's result is still reported).
//!
//! `docs/KUBERNETES.md` maps every field and state.

use crate::{Assignment, Event, Executor};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, Node, Pod, PodSpec, PodTemplateSpec, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams, PropagationPolicy};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use suanwang_api::Telemetry;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Label: who manages the object.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label: the suanwang job id.
pub const LABEL_JOB: &str = "suanwang.io/job";
/// Label: the lease's fencing token.
pub const LABEL_LEASE: &str = "suanwang.io/lease";
/// Label: the suanwang site the agent serves.
pub const LABEL_SITE: &str = "suanwang.io/site";
/// Label: the owning tenant's id.
pub const LABEL_TENANT: &str = "suanwang.io/tenant";

/// The image a job runs in when the agent names none.
pub const DEFAULT_IMAGE: &str = "busybox:1.36";

/// How to reach the cluster and what to make there.
#[derive(Debug, Clone)]
pub struct KubeOptions {
    /// A kubeconfig file; `None`: `KUBECONFIG`, `~/.kube/config`, or the
    /// in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// The namespace Jobs go to; `None`: the kubeconfig context's (else
    /// `default`).
    pub namespace: Option<String>,
    /// The suanwang site this agent serves (a label on everything it makes).
    pub site: String,
    /// The container image of every Job.
    pub image: String,
    /// Accelerator class → the extended resource its cards are requested by
    /// (`a100` → `nvidia.com/gpu`); classes not named here get their family's
    /// ([`default_resource`]).
    pub resources: BTreeMap<String, String>,
    /// Only nodes with all these labels count, and Jobs are pinned to them.
    pub node_selector: BTreeMap<String, String>,
    /// Seconds a finished Job is kept (`ttlSecondsAfterFinished`, honoured by
    /// clusters whose TTL controller runs).
    pub ttl_after_finished: Option<i32>,
    /// How long to wait for the first listing of nodes, pods and Jobs.
    pub sync_timeout: Duration,
    /// Units offered in the classes named instead of what the nodes have free
    /// (`--capacity`).
    pub capacity_overrides: BTreeMap<String, u64>,
}

impl KubeOptions {
    /// Defaults for `site`: the current kubeconfig, its namespace, busybox,
    /// family resource names, every node, finished Jobs kept a day.
    pub fn new(site: &str) -> KubeOptions {
        KubeOptions {
            kubeconfig: None,
            namespace: None,
            site: site.to_string(),
            image: DEFAULT_IMAGE.to_string(),
            resources: BTreeMap::new(),
            node_selector: BTreeMap::new(),
            ttl_after_finished: Some(86_400),
            sync_timeout: Duration::from_secs(30),
            capacity_overrides: BTreeMap::new(),
        }
    }
}

/// Why the executor cannot start.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The kubeconfig does not read.
    #[error("kubeconfig {path}: {reason}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The API server does not answer.
    #[error("cannot reach the Kubernetes API server at {url}: {reason}")]
    Unreachable {
        /// Its address.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The agent's identity may not do what it needs.
    #[error(
        "the agent's Kubernetes identity may not {what}: {reason} (apply deploy/kubernetes/agent-rbac.yaml to namespace {namespace})"
    )]
    Forbidden {
        /// What it tried.
        what: String,
        /// The namespace.
        namespace: String,
        /// The API server's answer.
        reason: String,
    },
    /// A flag's value is wrong.
    #[error("{0}")]
    Config(String),
}

/// The extended resource a family's cards are requested by, as the vendors'
/// device plugins name them.
pub fn default_resource(family: &str) -> Option<&'static str> {
    let name = match family {
        f if f.starts_with("nvidia") => "nvidia.com/gpu",
        f if f.starts_with("ascend") => "huawei.com/Ascend910",
        f if f.starts_with("amd") => "amd.com/gpu",
        f if f.starts_with("hygon") => "hygon.com/dcu",
        f if f.starts_with("cambricon") => "cambricon.com/mlu",
        f if f.starts_with("kunlun") => "kunlunxin.com/xpu",
        _ => return None,
    };
    Some(name)
}

/// A Kubernetes quantity (`500m`, `8Gi`, `1.5`, `2e3`) in base units.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    // `1e3` is an exponent, `1E` (exa) a suffix: an `e`/`E` with digits after it
    // belongs to the number.
    let (number, suffix) = match number.find(['e', 'E']) {
        Some(i) if number[i + 1..].is_empty() => (&number[..i], &number[i..]),
        _ => (number, suffix),
    };
    let value: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    (value.is_finite() && value >= 0.0).then_some(value * scale)
}

/// How a class is counted in Kubernetes: its resource name and how many base
/// units make one suanwang unit.
#[derive(Debug, Clone, PartialEq)]
struct Mapping {
    resource: String,
    per_unit: f64,
}

/// Class → resource for every class this agent offers: `cpu`, `mem_gib`, and
/// each accelerator class named or mapped by family. Two classes on one
/// resource cannot be told apart on a node: refused.
fn mappings(options: &KubeOptions) -> Result<BTreeMap<String, Mapping>, KubeError> {
    let mut out = BTreeMap::new();
    out.insert(
        "cpu".to_string(),
        Mapping {
            resource: "cpu".into(),
            per_unit: 1.0,
        },
    );
    out.insert(
        "mem_gib".to_string(),
        Mapping {
            resource: "memory".into(),
            per_unit: 1024f64.powi(3),
        },
    );
    let mut by_resource: BTreeMap<String, String> = BTreeMap::new();
    for (class, resource) in &options.resources {
        let parsed = suanwang_model::ResourceClass::parse(class).ok_or_else(|| {
            KubeError::Config(format!(
                "--k8s-resource {class}={resource}: unknown class {class:?} (known: {})",
                suanwang_model::ResourceClass::known_names()
            ))
        })?;
        let name = parsed.name().to_string();
        if name == "cpu" || name == "mem_gib" {
            return Err(KubeError::Config(format!(
                "--k8s-resource {class}={resource}: cpu and memory are Kubernetes's own `cpu` and `memory`"
            )));
        }
        let resource = if resource.is_empty() {
            default_resource(parsed.info().family)
                .ok_or_else(|| {
                    KubeError::Config(format!(
                        "--k8s-resource {class}: no known resource name for family {:?}; give one, e.g. {class}=example.com/card",
                        parsed.info().family
                    ))
                })?
                .to_string()
        } else {
            resource.clone()
        };
        if let Some(other) = by_resource.insert(resource.clone(), name.clone()) {
            return Err(KubeError::Config(format!(
                "--k8s-resource: classes {other} and {name} both map to {resource}; a node's {resource} cannot be told apart (run one agent per model with --k8s-node-selector)"
            )));
        }
        out.insert(
            name,
            Mapping {
                resource,
                per_unit: 1.0,
            },
        );
    }
    Ok(out)
}

/// What the executor knows about one of its Jobs.
#[derive(Debug)]
struct Tracked {
    name: String,
    token: i64,
    events: mpsc::UnboundedSender<Event>,
    /// Whether the Job has been seen in the watch (a Job never seen is not yet
    /// "gone").
    seen: bool,
    /// The last `Queued` reason sent.
    queued: Option<String>,
    started: bool,
    finished: bool,
    /// When pods/log last failed for it (a cluster whose kubelets cannot serve
    /// logs): not asked again for a minute.
    logs_failed: Option<Instant>,
}

/// Where a Job stands, as the executor sees it (the table in
/// `docs/KUBERNETES.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Not running yet; why, when Kubernetes says.
    Waiting(Option<String>),
    /// Its pod will never start (an image name that cannot parse, a container
    /// that cannot be created): to be deleted and reported failed.
    Hopeless(String),
    /// Running.
    Running,
    /// Ended, with the exit code and, for a failure, why.
    Done {
        /// Exit code (0 is success).
        exit_code: i32,
        /// Why it failed.
        message: Option<String>,
    },
}

/// Container waiting reasons after which the pod never starts.
const HOPELESS_WAITING: &[&str] = &[
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// Maps a Job and its pods to a phase. `None` for the Job: not (yet) seen.
pub fn phase(job: Option<&Job>, pods: &[&Pod]) -> Phase {
    let condition = |kind: &str| {
        job.and_then(|j| j.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == kind && c.status == "True"))
    };
    // The newest pod speaks for the Job (there is one: backoffLimit 0).
    let pod = pods
        .iter()
        .max_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .copied();
    let status = pod.and_then(|p| p.status.as_ref());
    let container = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first());
    let terminated = container
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref());
    let pod_phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
    let pod_why = status.and_then(|s| {
        let reason = s.reason.as_deref()?;
        Some(match s.message.as_deref() {
            Some(m) if !m.is_empty() => format!("{reason}: {m}"),
            _ => reason.to_string(),
        })
    });
    let failure = |headline: String| {
        let exit_code = terminated.map(|t| t.exit_code).filter(|&c| c != 0);
        let mut message = headline;
        if let Some(why) = &pod_why {
            message.push_str(&format!("; pod {why}"));
        }
        if let Some(t) = terminated
            && let Some(reason) = t.reason.as_deref()
        {
            message.push_str(&format!("; container {reason}"));
            if let Some(m) = t.message.as_deref().filter(|m| !m.is_empty()) {
                message.push_str(&format!(": {m}"));
            }
        }
        Phase::Done {
            // A failure must never read as success.
            exit_code: exit_code.unwrap_or(1),
            message: Some(message),
        }
    };
    if condition("Complete").is_some() {
        return Phase::Done {
            exit_code: 0,
            message: None,
        };
    }
    if let Some(c) = condition("Failed") {
        let reason = c.reason.as_deref().unwrap_or("Failed");
        let mut headline = format!("kubernetes job {reason}");
        if let Some(m) = c.message.as_deref().filter(|m| !m.is_empty()) {
            headline.push_str(&format!(": {m}"));
        }
        return failure(headline);
    }
    match pod_phase {
        "Succeeded" => {
            return Phase::Done {
                exit_code: 0,
                message: None,
            };
        }
        "Failed" => return failure("pod failed".into()),
        "Running" => return Phase::Running,
        _ => {}
    }
    if container
        .and_then(|c| c.state.as_ref())
        .is_some_and(|s| s.running.is_some())
    {
        return Phase::Running;
    }
    if let Some(waiting) = container
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.waiting.as_ref())
        && let Some(reason) = waiting.reason.as_deref()
    {
        let why = match waiting.message.as_deref() {
            Some(m) if !m.is_empty() => format!("{reason}: {m}"),
            _ => reason.to_string(),
        };
        if HOPELESS_WAITING.contains(&reason) {
            return Phase::Hopeless(why);
        }
        if reason != "ContainerCreating" {
            return Phase::Waiting(Some(why));
        }
    }
    let unscheduled = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| {
            c.iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        })
        .map(|c| {
            let reason = c.reason.as_deref().unwrap_or("NotScheduled");
            match c.message.as_deref() {
                Some(m) if !m.is_empty() => format!("{reason}: {m}"),
                _ => reason.to_string(),
            }
        });
    Phase::Waiting(unscheduled)
}

/// The Job for a lease ([`Kubernetes::start`] creates it). `Err` names what in
/// the job cannot be expressed.
pub fn job_manifest(job: &Assignment, name: &str, options: &KubeOptions) -> Result<Job, String> {
    let spec = &job.spec;
    if spec.command.is_empty() {
        return Err("the job has no command".into());
    }
    if spec.gang > 1 {
        return Err(format!(
            "a gang of {} pods needs all-or-nothing scheduling (Volcano), which this executor does not do yet",
            spec.gang
        ));
    }
    let classes = mappings(options).map_err(|e| e.to_string())?;
    let mut quantities = BTreeMap::new();
    for (class, count) in crate::simulated::demand(spec) {
        if count == 0 {
            continue;
        }
        let quantity = match class.as_str() {
            "cpu" => count.to_string(),
            "mem_gib" => format!("{count}Gi"),
            other => match classes.get(other) {
                Some(_) => count.to_string(),
                None => {
                    return Err(format!(
                        "it asks for {count} {other} but this agent maps no Kubernetes resource to {other} (--k8s-resource {other}=RESOURCE)"
                    ));
                }
            },
        };
        let resource = classes
            .get(&class)
            .map_or_else(|| class.clone(), |m| m.resource.clone());
        quantities.insert(resource, Quantity(quantity));
    }
    let declared = crate::simulated::declared_secs(spec)?;
    let mut labels = BTreeMap::from([
        (MANAGED_BY.to_string(), "suanwang".to_string()),
        (LABEL_JOB.to_string(), job.job.to_string()),
        (LABEL_LEASE.to_string(), job.token.to_string()),
        (LABEL_SITE.to_string(), options.site.clone()),
    ]);
    if let Some(tenant) = job.tenant {
        labels.insert(LABEL_TENANT.to_string(), tenant.to_string());
    }
    let mut env: Vec<EnvVar> = spec
        .env
        .iter()
        .map(|(name, value)| EnvVar {
            name: name.clone(),
            value: Some(value.clone()),
            ..EnvVar::default()
        })
        .collect();
    for (key, value) in [
        ("SUANWANG_JOB_ID", job.job.to_string()),
        ("SUANWANG_LEASE", job.token.to_string()),
    ] {
        env.push(EnvVar {
            name: key.into(),
            value: Some(value),
            ..EnvVar::default()
        });
    }
    let container = Container {
        name: "job".into(),
        image: Some(options.image.clone()),
        command: Some(spec.command.clone()),
        env: Some(env),
        working_dir: spec.workdir.clone(),
        resources: Some(ResourceRequirements {
            requests: Some(quantities.clone()),
            limits: Some(quantities),
            ..ResourceRequirements::default()
        }),
        ..Container::default()
    };
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([(
                "suanwang.io/description".to_string(),
                format!("suanwang job {} lease {}", job.job, job.token),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            // The declared run time, rounded up to a minute as Slurm's limit is.
            active_deadline_seconds: Some(
                crate::slurm::time_limit_minutes(declared).saturating_mul(60),
            ),
            ttl_seconds_after_finished: options.ttl_after_finished,
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    containers: vec![container],
                    node_selector: (!options.node_selector.is_empty())
                        .then(|| options.node_selector.clone()),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        status: None,
    })
}

/// The Job's name for a lease: a DNS label, the same for every retry.
pub fn job_name(job: i64, token: i64) -> String {
    format!("suanwang-{job}-{token}")
}

/// The executor. Dropping it ends its watches.
pub struct Kubernetes {
    options: KubeOptions,
    namespace: String,
    url: String,
    classes: BTreeMap<String, Mapping>,
    jobs_api: Api<Job>,
    pods_api: Api<Pod>,
    jobs: Store<Job>,
    own_pods: Store<Pod>,
    nodes: Store<Node>,
    all_pods: Store<Pod>,
    tracked: Arc<Mutex<BTreeMap<i64, Tracked>>>,
    wake: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Kubernetes {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Finished jobs kept for their log tails.
const KEPT_FINISHED: usize = 256;

impl Kubernetes {
    /// Connects: reads the kubeconfig, checks the API server and the agent's
    /// rights, starts the watches and waits for their first listing.
    pub async fn connect(options: KubeOptions) -> Result<Kubernetes, KubeError> {
        let classes = mappings(&options)?;
        let config = match &options.kubeconfig {
            Some(path) => {
                let bad = |reason: String| KubeError::Kubeconfig {
                    path: path.display().to_string(),
                    reason,
                };
                let file =
                    kube::config::Kubeconfig::read_from(path).map_err(|e| bad(error_chain(&e)))?;
                kube::Config::from_custom_kubeconfig(
                    file,
                    &kube::config::KubeConfigOptions::default(),
                )
                .await
                .map_err(|e| bad(error_chain(&e)))?
            }
            None => kube::Config::infer()
                .await
                .map_err(|e| KubeError::Kubeconfig {
                    path: "(KUBECONFIG, ~/.kube/config or in-cluster)".into(),
                    reason: error_chain(&e),
                })?,
        };
        let url = config.cluster_url.to_string();
        let namespace = options
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = kube::Client::try_from(config).map_err(|e| KubeError::Unreachable {
            url: url.clone(),
            reason: error_chain(&e),
        })?;
        let version = client
            .apiserver_version()
            .await
            .map_err(|e| KubeError::Unreachable {
                url: url.clone(),
                reason: error_chain(&e),
            })?;
        tracing::info!(%url, version = %version.git_version, %namespace, "Kubernetes API server reached");
        let jobs_api: Api<Job> = Api::namespaced(client.clone(), &namespace);
        let pods_api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        let forbidden = |what: &str, e: kube::Error| KubeError::Forbidden {
            what: what.to_string(),
            namespace: namespace.clone(),
            reason: error_chain(&e),
        };
        let probe = ListParams::default().limit(1);
        jobs_api
            .list(&probe)
            .await
            .map_err(|e| forbidden(&format!("list Jobs in namespace {namespace}"), e))?;
        Api::<Node>::all(client.clone())
            .list(&probe)
            .await
            .map_err(|e| forbidden("list nodes", e))?;

        let selector = format!("{MANAGED_BY}=suanwang,{LABEL_SITE}={}", options.site);
        let wake = Arc::new(Notify::new());
        let labelled = || watcher::Config::default().labels(&selector);
        let (jobs, jobs_task) = watched("jobs", jobs_api.clone(), labelled(), &wake);
        let (own_pods, pods_task) = watched("pods", pods_api.clone(), labelled(), &wake);
        let (nodes, nodes_task) = watched(
            "nodes",
            Api::<Node>::all(client.clone()),
            watcher::Config::default(),
            &wake,
        );
        let (all_pods, all_task) = watched(
            "all pods",
            Api::<Pod>::all(client.clone()),
            // Pods that ended hold nothing.
            watcher::Config::default().fields("status.phase!=Succeeded,status.phase!=Failed"),
            &wake,
        );
        let tasks = vec![jobs_task, pods_task, nodes_task, all_task];
        let ready = async {
            for store in [&own_pods, &all_pods] {
                store.wait_until_ready().await.ok();
            }
            jobs.wait_until_ready().await.ok();
            nodes.wait_until_ready().await.ok();
        };
        if tokio::time::timeout(options.sync_timeout, ready)
            .await
            .is_err()
        {
            for task in &tasks {
                task.abort();
            }
            return Err(KubeError::Unreachable {
                url,
                reason: format!(
                    "the first listing of nodes, pods and Jobs took longer than {:?}",
                    options.sync_timeout
                ),
            });
        }
        let tracked = Arc::new(Mutex::new(BTreeMap::new()));
        let mut executor = Kubernetes {
            options,
            namespace,
            url,
            classes,
            jobs_api,
            pods_api,
            jobs,
            own_pods,
            nodes,
            all_pods,
            tracked,
            wake,
            tasks,
        };
        executor.tasks.push(tokio::spawn(sync_loop(
            executor.jobs.clone(),
            executor.own_pods.clone(),
            executor.jobs_api.clone(),
            executor.namespace.clone(),
            executor.tracked.clone(),
            executor.wake.clone(),
        )));
        Ok(executor)
    }

    /// The namespace Jobs go to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The API server's address.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Units per class on one node: allocatable minus what `others` (pods
    /// not this agent's) request there.
    fn free_on(&self, node: &Node, others: &[Arc<Pod>]) -> BTreeMap<String, u64> {
        let name = node.metadata.name.as_deref().unwrap_or("");
        let allocatable = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()));
        let mut out = BTreeMap::new();
        for (class, mapping) in &self.classes {
            let total = allocatable
                .and_then(|a| a.get(&mapping.resource))
                .and_then(|q| parse_quantity(&q.0))
                .unwrap_or(0.0);
            let used: f64 = others
                .iter()
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name))
                .map(|p| pod_request(p, &mapping.resource))
                .sum();
            let free = ((total - used) / mapping.per_unit + 1e-9).floor().max(0.0);
            out.insert(class.clone(), free as u64);
        }
        out
    }

    /// Whether a pod is one of this agent's.
    fn owns(&self, pod: &Pod) -> bool {
        pod.metadata.namespace.as_deref() == Some(self.namespace.as_str())
            && pod
                .metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.get(LABEL_SITE) == Some(&self.options.site))
    }

    /// Nodes that count: matching the selector, Ready, schedulable, without a
    /// NoSchedule or NoExecute taint.
    fn usable_nodes(&self) -> Vec<Arc<Node>> {
        self.nodes
            .state()
            .into_iter()
            .filter(|n| {
                let labels = n.metadata.labels.clone().unwrap_or_default();
                let selected = self
                    .options
                    .node_selector
                    .iter()
                    .all(|(k, v)| labels.get(k) == Some(v));
                let spec = n.spec.as_ref();
                let cordoned = spec.and_then(|s| s.unschedulable).unwrap_or(false);
                let tainted = spec.and_then(|s| s.taints.as_ref()).is_some_and(|t| {
                    t.iter()
                        .any(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
                });
                let ready = n
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                selected && ready && !cordoned && !tainted
            })
            .collect()
    }

    /// What this agent's live pods request, per class.
    fn busy(&self) -> BTreeMap<String, u64> {
        let mine: Vec<Arc<Pod>> = self
            .all_pods
            .state()
            .into_iter()
            .filter(|p| self.owns(p))
            .collect();
        self.classes
            .iter()
            .map(|(class, m)| {
                let used: f64 = mine.iter().map(|p| pod_request(p, &m.resource)).sum();
                (class.clone(), (used / m.per_unit + 1e-9).floor() as u64)
            })
            .collect()
    }

    fn pod_of(&self, name: &str) -> Option<Arc<Pod>> {
        pods_of(&self.own_pods.state(), name)
            .max_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .cloned()
    }

    fn track(&self, job: i64, name: &str, token: i64, events: mpsc::UnboundedSender<Event>) {
        let Ok(mut tracked) = self.tracked.lock() else {
            return;
        };
        tracked.insert(
            job,
            Tracked {
                name: name.to_string(),
                token,
                events,
                seen: false,
                queued: None,
                started: false,
                finished: false,
                logs_failed: None,
            },
        );
        let finished: Vec<i64> = tracked
            .iter()
            .filter(|(_, t)| t.finished)
            .map(|(id, _)| *id)
            .collect();
        for id in finished
            .iter()
            .take(finished.len().saturating_sub(KEPT_FINISHED))
        {
            tracked.remove(id);
        }
        drop(tracked);
        self.wake.notify_one();
    }

    /// Stops watching `job`; its Job's name, if it was tracked.
    fn untrack(&self, job: i64) -> Option<String> {
        self.tracked.lock().ok()?.remove(&job).map(|t| t.name)
    }

    async fn delete(&self, name: &str, policy: PropagationPolicy) {
        let params = DeleteParams {
            propagation_policy: Some(policy),
            ..DeleteParams::default()
        };
        match self.jobs_api.delete(name, &params).await {
            Ok(_) => tracing::info!(job = %name, "kubernetes job deleted"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                tracing::warn!(job = %name, error = %error_chain(&e), "cannot delete the kubernetes job")
            }
        }
    }
}

/// What a pod requests of `resource` (its containers' requests, or limits
/// where no request is given), base units.
fn pod_request(pod: &Pod, resource: &str) -> f64 {
    let Some(spec) = &pod.spec else {
        return 0.0;
    };
    spec.containers
        .iter()
        .filter_map(|c| c.resources.as_ref())
        .filter_map(|r| {
            r.requests
                .as_ref()
                .and_then(|q| q.get(resource))
                .or_else(|| r.limits.as_ref().and_then(|q| q.get(resource)))
        })
        .filter_map(|q| parse_quantity(&q.0))
        .sum()
}

/// A watch of `api` kept in a store, waking the sync loop on each event
/// (retried with backoff when it fails).
fn watched<K>(
    what: &'static str,
    api: Api<K>,
    config: watcher::Config,
    wake: &Arc<Notify>,
) -> (Store<K>, JoinHandle<()>)
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config));
    let wake = wake.clone();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream.default_backoff());
        while let Some(event) = stream.next().await {
            if let Err(e) = event {
                tracing::warn!(watch = what, error = %error_chain(&e), "kubernetes watch failed; retrying");
            }
            wake.notify_one();
        }
    });
    (store, task)
}

/// The pods of the Job named `name` (the Job controller labels them
/// `job-name`).
fn pods_of<'a>(pods: &'a [Arc<Pod>], name: &'a str) -> impl Iterator<Item = &'a Arc<Pod>> {
    pods.iter().filter(move |p| {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("job-name"))
            .map(String::as_str)
            == Some(name)
    })
}

/// Maps each tracked Job to its phase whenever a watch moves (and every few
/// seconds), and sends the events its changes mean.
async fn sync_loop(
    jobs: Store<Job>,
    pods: Store<Pod>,
    jobs_api: Api<Job>,
    namespace: String,
    tracked: Arc<Mutex<BTreeMap<i64, Tracked>>>,
    wake: Arc<Notify>,
) {
    loop {
        let _ = tokio::time::timeout(Duration::from_secs(5), wake.notified()).await;
        let all_pods = pods.state();
        let mut hopeless = Vec::new();
        {
            let Ok(mut tracked) = tracked.lock() else {
                return;
            };
            for (&id, t) in tracked.iter_mut().filter(|(_, t)| !t.finished) {
                let job = jobs.get(&ObjectRef::new(&t.name).within(&namespace));
                let mine: Vec<&Pod> = pods_of(&all_pods, &t.name).map(|p| p.as_ref()).collect();
                if job.is_some() {
                    t.seen = true;
                }
                let now = match job.as_deref() {
                    None if t.seen => Phase::Done {
                        exit_code: 1,
                        message: Some(format!(
                            "kubernetes job {} was deleted outside suanwang",
                            t.name
                        )),
                    },
                    job => phase(job, &mine),
                };
                let send = |event: Event| {
                    let _ = t.events.send(event);
                };
                match now {
                    Phase::Waiting(Some(reason)) if !t.started => {
                        if t.queued.as_ref() != Some(&reason) {
                            send(Event::Queued {
                                job: id,
                                reason: reason.clone(),
                            });
                            t.queued = Some(reason);
                        }
                    }
                    Phase::Waiting(_) => {}
                    Phase::Running => {
                        if !t.started {
                            t.started = true;
                            send(Event::Started(id));
                        }
                    }
                    Phase::Hopeless(reason) => {
                        t.finished = true;
                        hopeless.push(t.name.clone());
                        send(Event::Finished {
                            job: id,
                            exit_code: 1,
                            message: Some(format!(
                                "kubernetes job {}: its pod can never start: {reason}",
                                t.name
                            )),
                        });
                    }
                    Phase::Done { exit_code, message } => {
                        t.finished = true;
                        send(Event::Finished {
                            job: id,
                            exit_code,
                            message: message.map(|m| format!("kubernetes job {}: {m}", t.name)),
                        });
                    }
                }
            }
        }
        for name in hopeless {
            let params = DeleteParams::background();
            if let Err(e) = jobs_api.delete(&name, &params).await {
                tracing::warn!(job = %name, error = %error_chain(&e), "cannot delete a hopeless kubernetes job");
            }
        }
    }
}

/// An error and its causes, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

impl Executor for Kubernetes {
    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    fn capacity(&self) -> BTreeMap<String, u64> {
        let others: Vec<Arc<Pod>> = self
            .all_pods
            .state()
            .into_iter()
            .filter(|p| !self.owns(p))
            .collect();
        let mut total: BTreeMap<String, u64> =
            self.classes.keys().map(|c| (c.clone(), 0)).collect();
        for node in self.usable_nodes() {
            for (class, units) in self.free_on(&node, &others) {
                *total.entry(class).or_insert(0) += units;
            }
        }
        crate::override_classes(total, &self.options.capacity_overrides)
    }

    async fn start(
        &self,
        job: &Assignment,
        events: mpsc::UnboundedSender<Event>,
    ) -> Result<(), String> {
        let name = job_name(job.job, job.token);
        let manifest = job_manifest(job, &name, &self.options)?;
        match self
            .jobs_api
            .create(&PostParams::default(), &manifest)
            .await
        {
            Ok(_) => {
                tracing::info!(job = job.job, kubernetes_job = %name, namespace = %self.namespace, "kubernetes job created")
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                // A retried start: the Job of this very lease exists already.
                let existing = self.jobs_api.get(&name).await.map_err(|e| {
                    format!(
                        "kubernetes job {name} exists but cannot be read: {}",
                        error_chain(&e)
                    )
                })?;
                let labels = existing.metadata.labels.clone().unwrap_or_default();
                if labels.get(LABEL_LEASE) != Some(&job.token.to_string())
                    || existing.metadata.deletion_timestamp.is_some()
                {
                    return Err(format!(
                        "kubernetes job {name} exists and is not this lease's (or is being deleted)"
                    ));
                }
                tracing::info!(job = job.job, kubernetes_job = %name, "kubernetes job exists already: watching it");
            }
            Err(e) => {
                return Err(format!(
                    "kubernetes refused job {name}: {}",
                    error_chain(&e)
                ));
            }
        }
        self.track(job.job, &name, job.token, events);
        Ok(())
    }

    async fn stop(&self, job: i64) {
        if let Some(name) = self.untrack(job) {
            self.delete(&name, PropagationPolicy::Background).await;
        }
    }

    async fn preempt(&self, job: i64, grace: Duration) {
        let Some(name) = self.untrack(job) else {
            return;
        };
        // The Job first, leaving its pod (so the controller makes no other),
        // then the pod with the grace asked: SIGTERM, grace, SIGKILL.
        self.delete(&name, PropagationPolicy::Orphan).await;
        let params = DeleteParams {
            grace_period_seconds: Some(grace.as_secs().min(u64::from(u32::MAX)) as u32),
            ..DeleteParams::default()
        };
        let pods: Vec<String> = pods_of(&self.own_pods.state(), &name)
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        for pod in pods {
            match self.pods_api.delete(&pod, &params).await {
                Ok(_) => {
                    tracing::info!(job, %pod, grace_secs = grace.as_secs(), "pod deleted with its grace: preempted")
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    tracing::warn!(job, %pod, error = %error_chain(&e), "cannot delete the preempted job's pod")
                }
            }
        }
    }

    async fn recover(&self, events: mpsc::UnboundedSender<Event>) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        for job in self.jobs.state() {
            if job.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let labels = job.metadata.labels.clone().unwrap_or_default();
            let parsed = labels
                .get(LABEL_JOB)
                .and_then(|j| j.parse::<i64>().ok())
                .zip(labels.get(LABEL_LEASE).and_then(|t| t.parse::<i64>().ok()));
            let (Some((id, token)), Some(name)) = (parsed, job.metadata.name.clone()) else {
                continue;
            };
            let already = self
                .tracked
                .lock()
                .map(|t| t.get(&id).is_some_and(|t| t.token == token))
                .unwrap_or(false);
            if !already {
                self.track(id, &name, token, events.clone());
            }
            out.push((id, token));
        }
        if !out.is_empty() {
            tracing::info!(
                jobs = out.len(),
                "kubernetes jobs of an earlier agent found"
            );
        }
        out
    }

    async fn telemetry(&self) -> Telemetry {
        let capacity = self.capacity();
        let busy = self.busy();
        let running = self
            .tracked
            .lock()
            .map(|t| t.values().filter(|t| t.started && !t.finished).count())
            .unwrap_or(0);
        let utilisation = busy
            .iter()
            .filter_map(|(class, &used)| {
                let offered = capacity.get(class).copied().unwrap_or(0) + used;
                (offered > 0).then(|| (class.clone(), used as f64 / offered as f64))
            })
            .collect();
        Telemetry {
            source: "kubernetes".into(),
            executor: Some("kubernetes".into()),
            running_jobs: Some(running as u64),
            busy,
            capacity,
            utilisation,
            ..Telemetry::default()
        }
    }

    async fn log_tail(&self, job: i64, max: usize) -> Option<String> {
        let name = {
            let tracked = self.tracked.lock().ok()?;
            let t = tracked.get(&job)?;
            if t.logs_failed
                .is_some_and(|at| at.elapsed() < Duration::from_secs(60))
            {
                return None;
            }
            t.name.clone()
        };
        let pod = self.pod_of(&name)?;
        let pod_name = pod.metadata.name.clone()?;
        let params = LogParams {
            tail_lines: Some(1000),
            ..LogParams::default()
        };
        let answer = tokio::time::timeout(
            Duration::from_secs(3),
            self.pods_api.logs(&pod_name, &params),
        )
        .await;
        match answer {
            Ok(Ok(text)) => {
                let start = text.len().saturating_sub(max);
                let start = (start..=text.len())
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(text.len());
                Some(text[start..].to_string())
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => error_chain(&e),
                    _ => "timed out".into(),
                };
                tracing::debug!(job, pod = %pod_name, error = %why, "pod logs not served");
                if let Ok(mut tracked) = self.tracked.lock()
                    && let Some(t) = tracked.get_mut(&job)
                {
                    t.logs_failed = Some(Instant::now());
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(command: &[&str], demand: &[(&str, i64)]) -> Assignment {
        let mut spec = suanwang_api::JobSubmission::new(
            demand
                .iter()
                .map(|&(class, count)| suanwang_api::DemandIn {
                    class: class.into(),
                    count,
                })
                .collect(),
            suanwang_api::DurationValue::Seconds(90),
        );
        spec.command = command.iter().map(|s| s.to_string()).collect();
        Assignment {
            job: 7,
            token: 3,
            tenant: Some(2),
            spec,
        }
    }

    #[test]
    fn a_lease_becomes_a_job_with_its_requests_labels_and_deadline() {
        let mut options = KubeOptions::new("hami");
        options.resources.insert("a800".into(), String::new());
        options
            .node_selector
            .insert("suanwang.io/pool".into(), "p".into());
        let job = lease(
            &["sh", "-c", "exit 3"],
            &[("cpu", 2), ("mem_gib", 4), ("a800", 1)],
        );
        let made = job_manifest(&job, &job_name(7, 3), &options).unwrap();
        assert_eq!(made.metadata.name.as_deref(), Some("suanwang-7-3"));
        let labels = made.metadata.labels.as_ref().unwrap();
        assert_eq!(
            (
                &labels[LABEL_JOB][..],
                &labels[LABEL_LEASE][..],
                &labels[LABEL_TENANT][..]
            ),
            ("7", "3", "2")
        );
        let spec = made.spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(0));
        assert_eq!(
            spec.active_deadline_seconds,
            Some(120),
            "90 s rounds up to 2 min"
        );
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(pod.node_selector.unwrap()["suanwang.io/pool"], "p");
        let resources = pod.containers[0].resources.clone().unwrap();
        let requests = resources.requests.unwrap();
        assert_eq!(requests["cpu"].0, "2");
        assert_eq!(requests["memory"].0, "4Gi");
        assert_eq!(
            requests["nvidia.com/gpu"].0, "1",
            "the family's device plugin"
        );
        assert_eq!(resources.limits.unwrap(), requests);
        let env = pod.containers[0].env.clone().unwrap();
        assert!(
            env.iter()
                .any(|e| e.name == "SUANWANG_LEASE" && e.value.as_deref() == Some("3"))
        );

        let e = job_manifest(&lease(&["true"], &[("h20", 1)]), "n", &options).unwrap_err();
        assert!(e.contains("maps no Kubernetes resource to h20"), "{e}");
        let e = job_manifest(&lease(&[], &[("cpu", 1)]), "n", &options).unwrap_err();
        assert!(e.contains("no command"), "{e}");
        let mut gang = lease(&["true"], &[("cpu", 1)]);
        gang.spec.gang = 2;
        assert!(
            job_manifest(&gang, "n", &options)
                .unwrap_err()
                .contains("gang of 2")
        );
    }

    #[test]
    fn two_classes_on_one_resource_and_unknown_classes_are_refused() {
        let mut options = KubeOptions::new("hami");
        options.resources.insert("a800".into(), String::new());
        options
            .resources
            .insert("h20".into(), "nvidia.com/gpu".into());
        let e = mappings(&options).unwrap_err().to_string();
        assert!(e.contains("both map to nvidia.com/gpu"), "{e}");
        let mut options = KubeOptions::new("hami");
        options.resources.insert("tpu".into(), String::new());
        let e = mappings(&options).unwrap_err().to_string();
        assert!(e.contains("unknown class \"tpu\""), "{e}");
        let mut options = KubeOptions::new("hami");
        options.resources.insert("ascend910b".into(), String::new());
        assert_eq!(
            mappings(&options).unwrap()["ascend910b"].resource,
            "huawei.com/Ascend910"
        );
    }

    /// A Job and a pod from their JSON, as the API server sends them.
    fn objects(job_status: serde_json::Value, pod_status: serde_json::Value) -> (Job, Pod) {
        let job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "suanwang-7-3"}, "status": job_status
        }))
        .unwrap();
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "suanwang-7-3-abcde", "creationTimestamp": "2026-12-03T10:00:00Z"},
            "status": pod_status
        }))
        .unwrap();
        (job, pod)
    }

    #[test]
    fn kubernetes_states_map_to_phases_with_kubernetes_reasons() {
        use serde_json::json;
        let cases = [
            (
                json!({}),
                json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                    "reason": "Unschedulable", "message": "0/2 nodes are available: 2 Insufficient cpu."}]}),
                Phase::Waiting(Some(
                    "Unschedulable: 0/2 nodes are available: 2 Insufficient cpu.".into(),
                )),
            ),
            (
                json!({}),
                json!({"phase": "Pending", "containerStatuses": [{"name": "job", "image": "x", "imageID": "",
                    "ready": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x\""}}}]}),
                Phase::Waiting(Some("ImagePullBackOff: Back-off pulling image \"x\"".into())),
            ),
            (
                json!({}),
                json!({"phase": "Pending", "containerStatuses": [{"name": "job", "image": "x", "imageID": "",
                    "ready": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "InvalidImageName"}}}]}),
                Phase::Hopeless("InvalidImageName".into()),
            ),
            (json!({}), json!({"phase": "Running"}), Phase::Running),
            (
                json!({"conditions": [{"type": "Complete", "status": "True"}]}),
                json!({"phase": "Succeeded"}),
                Phase::Done { exit_code: 0, message: None },
            ),
            (
                json!({"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                    "message": "Job was active longer than specified deadline"}]}),
                json!({"phase": "Running"}),
                Phase::Done {
                    exit_code: 1,
                    message: Some(
                        "kubernetes job DeadlineExceeded: Job was active longer than specified deadline"
                            .into(),
                    ),
                },
            ),
            (
                json!({}),
                json!({"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory.",
                    "containerStatuses": [{"name": "job", "image": "x", "imageID": "", "ready": false,
                    "restartCount": 0, "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
                Phase::Done {
                    exit_code: 137,
                    message: Some(
                        "pod failed; pod Evicted: The node was low on resource: memory.; container OOMKilled"
                            .into(),
                    ),
                },
            ),
        ];
        for (job_status, pod_status, want) in cases {
            let (job, pod) = objects(job_status, pod_status.clone());
            assert_eq!(phase(Some(&job), &[&pod]), want, "{pod_status}");
        }
        assert_eq!(
            phase(None, &[]),
            Phase::Waiting(None),
            "a Job not yet seen waits"
        );
    }

    #[test]
    fn quantities_read_in_base_units() {
        assert_eq!(parse_quantity("4"), Some(4.0));
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("8Gi"), Some(8.0 * 1024f64.powi(3)));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        assert_eq!(parse_quantity("2e3"), Some(2000.0));
        assert_eq!(parse_quantity("1.5"), Some(1.5));
        assert_eq!(parse_quantity("3E"), Some(3e18));
        assert_eq!(parse_quantity("129624Ki"), Some(129624.0 * 1024.0));
        assert_eq!(parse_quantity("x"), None);
        assert_eq!(parse_quantity("4Qi"), None);
        assert_eq!(parse_quantity("-1"), None);
    }
}
