//! The Slurm executor: runs each job as a Slurm batch job, submitted to
//! `slurmrestd` (REST API v0.0.38) over its unix socket, and watches it by polling
//! until it reaches a final state. It owns the translation both ways — a job spec
//! into a batch script and a submit request, Slurm's job state and raw wait status
//! into an [`Event`] — and one spool directory that holds the jobs' output files.
//!
//! It must not decide anything Slurm decides (placement on nodes, queueing, time
//! limits are Slurm's), and it never submits a job twice for one lease: each
//! submit carries a name unique to the lease, so that an unclear answer is
//! resolved by looking the name up rather than by submitting again. See
//! `docs/SLURM.md` for the API facts this relies on.

use crate::{Assignment, Event, Executor};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use suanwang_api::Telemetry;
use suanwang_api::agents::{SlurmNode, SlurmSample, SlurmTotals};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The REST API version this executor speaks (the newest Slurm 22.05 offers).
pub const API_VERSION: &str = "v0.0.38";

/// The `PATH` a job gets unless its spec sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Slurm's error number for "Invalid job id specified": the job never existed or
/// was purged (`MinJobAge`; without slurmdbd there is no history).
const INVALID_JOB_ID: i64 = 2017;

/// Finished jobs whose records (Slurm id, output file) are kept for `log_tail`.
const KEPT_FINISHED: usize = 1024;

/// How the executor reaches and uses the cluster.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    /// Partition to submit to; the cluster's default partition when `None`.
    pub partition: Option<String>,
    /// Directory for the jobs' output files (and the working directory of jobs
    /// that name none). Jobs run as the user slurmrestd runs as, so it must be
    /// writable by that user: it is created with mode 1777.
    pub spool: PathBuf,
    /// Time between two looks at a running job.
    pub poll: Duration,
    /// Timeout of each request to slurmrestd.
    pub request_timeout: Duration,
}

impl Default for SlurmOptions {
    /// The default partition, spool `/tmp/suanwang-slurm`, a look every 0.5 s,
    /// 10 s request timeouts.
    fn default() -> SlurmOptions {
        SlurmOptions {
            partition: None,
            spool: PathBuf::from("/tmp/suanwang-slurm"),
            poll: Duration::from_millis(500),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a call to Slurm failed.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    /// slurmrestd could not be reached over its socket (missing socket, daemon
    /// down, timeout).
    #[error("cannot reach slurmrestd at {socket} ({request}): {reason}")]
    Unreachable {
        /// The socket path.
        socket: PathBuf,
        /// The request, e.g. `GET /ping`.
        request: String,
        /// What went wrong, with its causes.
        reason: String,
    },
    /// slurmrestd answered with an error status or a non-empty `errors` array.
    #[error("slurmrestd at {socket} answered {request} with {status}: {message}")]
    Api {
        /// The socket path.
        socket: PathBuf,
        /// The request, e.g. `POST /job/submit`.
        request: String,
        /// HTTP status.
        status: u16,
        /// Slurm's first error number, if it gave one.
        code: Option<i64>,
        /// Slurm's own error text.
        message: String,
    },
    /// slurmrestd answered something this executor does not understand.
    #[error("slurmrestd at {socket} gave an unexpected answer to {request}: {detail}")]
    Malformed {
        /// The socket path.
        socket: PathBuf,
        /// The request.
        request: String,
        /// What was wrong with it.
        detail: String,
    },
    /// The partition asked for does not exist, or the cluster has none.
    #[error("slurm at {socket} has no partition {partition:?}")]
    NoPartition {
        /// The socket path.
        socket: PathBuf,
        /// The partition asked for (empty: the default one).
        partition: String,
    },
    /// The spool directory could not be created.
    #[error("cannot create the spool directory {path}: {source}")]
    Spool {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The job's spec cannot be turned into a Slurm job.
    #[error("job {job}: {reason}")]
    Spec {
        /// Job id.
        job: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// Slurm refused the job, or accepted it with errors (then it was cancelled).
    #[error("slurm refused job {job} (slurm name {name}): {message}")]
    Rejected {
        /// Job id.
        job: i64,
        /// The Slurm job name of this attempt.
        name: String,
        /// Slurm's own error text.
        message: String,
    },
}

impl SlurmError {
    /// Slurm's error number, for API errors that carry one.
    pub fn code(&self) -> Option<i64> {
        match self {
            SlurmError::Api { code, .. } => *code,
            _ => None,
        }
    }
}

/// What Slurm says about one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    /// Slurm's job id.
    pub slurm_id: u64,
    /// `job_state`, e.g. `RUNNING`, `TIMEOUT`.
    pub state: String,
    /// `state_reason`, e.g. `None`, `TimeLimit`.
    pub reason: String,
    /// The batch script's raw wait status (`768` is exit 3), when given.
    pub wait_status: Option<i64>,
}

impl JobStatus {
    fn from_json(job: &Value) -> Option<JobStatus> {
        Some(JobStatus {
            slurm_id: job["job_id"].as_u64()?,
            state: job["job_state"].as_str()?.to_string(),
            reason: job["state_reason"].as_str().unwrap_or("").to_string(),
            wait_status: job["exit_code"].as_i64(),
        })
    }
}

/// Where a Slurm job stands, as the executor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Not running yet.
    Waiting,
    /// Pending for a reason that never clears (asks for more than the partition
    /// has): to be cancelled and reported failed.
    Hopeless,
    /// Running (or finishing: `COMPLETING` is transient).
    Running,
    /// Ended, with the exit code to report and, for a failure, why.
    Done {
        exit_code: i32,
        message: Option<String>,
    },
}

/// Pending reasons after which a job never runs.
const HOPELESS_REASONS: &[&str] = &[
    "PartitionConfig",
    "BadConstraints",
    "PartitionNodeLimit",
    "PartitionTimeLimit",
    "InvalidAccount",
    "InvalidQOS",
];

/// An exit code from a raw wait status: the code, or 128 + the signal.
pub fn exit_code_of(wait_status: i64) -> i32 {
    let signal = wait_status & 0x7f;
    if signal == 0 {
        ((wait_status >> 8) & 0xff) as i32
    } else {
        128 + signal as i32
    }
}

/// `STATE (Reason)`, or `STATE` when Slurm gives no reason.
fn describe(status: &JobStatus) -> String {
    match status.reason.as_str() {
        "" | "None" => status.state.clone(),
        reason => format!("{} ({reason})", status.state),
    }
}

/// Maps a job's Slurm state to a phase (the table in `docs/SLURM.md`).
fn phase(status: &JobStatus) -> Phase {
    let exit = status.wait_status.map(exit_code_of);
    match status.state.as_str() {
        "PENDING" if HOPELESS_REASONS.contains(&status.reason.as_str()) => Phase::Hopeless,
        "PENDING" | "CONFIGURING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED"
        | "RESV_DEL_HOLD" => Phase::Waiting,
        "RUNNING" | "COMPLETING" | "SUSPENDED" | "STOPPED" | "SIGNALING" | "STAGE_OUT"
        | "RESIZING" => Phase::Running,
        "COMPLETED" => match exit.unwrap_or(0) {
            0 => Phase::Done {
                exit_code: 0,
                message: None,
            },
            code => Phase::Done {
                exit_code: code,
                message: Some(describe(status)),
            },
        },
        "FAILED" | "TIMEOUT" | "OUT_OF_MEMORY" | "NODE_FAIL" | "BOOT_FAIL" | "DEADLINE"
        | "PREEMPTED" | "SPECIAL_EXIT" | "CANCELLED" => Phase::Done {
            // A failure must never read as success, whatever the wait status.
            exit_code: exit.filter(|&code| code != 0).unwrap_or(1),
            message: Some(describe(status)),
        },
        // A state this table does not know (a newer Slurm): keep watching.
        _ => Phase::Waiting,
    }
}

/// `s` quoted for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The batch script that runs `argv`: the shell replaced by the command, so that
/// Slurm's signals (cancel, time limit) reach it directly.
pub fn batch_script(argv: &[String]) -> Result<String, String> {
    if argv.is_empty() {
        return Err("the job has no command".into());
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err("the job's command contains a NUL byte".into());
    }
    let quoted: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
    Ok(format!("#!/bin/sh\nexec {}\n", quoted.join(" ")))
}

/// The job's time limit in Slurm's minutes: the declared run time rounded up,
/// at least one.
pub fn time_limit_minutes(declared_secs: i64) -> i64 {
    ((declared_secs.max(1) + 59) / 60).max(1)
}

/// GPU classes in a node's `gres` string (`gpu:a800:8(S:0-1),gpu:2`), class →
/// (count, the gres name to request them by). Entries that do not parse are left
/// out.
fn parse_gres(gres: &str) -> BTreeMap<String, (u64, String)> {
    let mut out: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for item in gres.split(',') {
        let item = item.split('(').next().unwrap_or("").trim();
        let parts: Vec<&str> = item.split(':').collect();
        let (class, name, count) = match parts.as_slice() {
            ["gpu", count] => ("gpu".to_string(), "gpu".to_string(), count),
            ["gpu", kind, count] => (kind.to_lowercase(), format!("gpu:{kind}"), count),
            _ => continue,
        };
        let Ok(count) = count.parse::<u64>() else {
            continue;
        };
        let entry = out.entry(class).or_insert((0, name));
        entry.0 += count;
    }
    out
}

/// Whether a node can take work (not drained, down or failed).
fn usable(node: &Value) -> bool {
    let flags = node["state_flags"].as_array().into_iter().flatten();
    let drained = flags
        .filter_map(Value::as_str)
        .any(|f| f.eq_ignore_ascii_case("DRAIN") || f.eq_ignore_ascii_case("FAIL"));
    let state = node["state"].as_str().unwrap_or("").to_lowercase();
    !drained && !matches!(state.as_str(), "down" | "fail" | "future" | "unknown")
}

/// Whether a node belongs to `partition`.
fn in_partition(node: &Value, partition: &str) -> bool {
    node["partitions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| p.as_str() == Some(partition))
}

/// Capacity offered by the usable nodes of a partition, and the gres name of
/// each GPU class.
fn capacity_of(
    nodes: &[Value],
    partition: &str,
) -> (BTreeMap<String, u64>, BTreeMap<String, String>) {
    let mut capacity = BTreeMap::new();
    let mut gres_names = BTreeMap::new();
    let (mut cpus, mut mem_mb) = (0u64, 0u64);
    for node in nodes
        .iter()
        .filter(|n| in_partition(n, partition) && usable(n))
    {
        cpus += node["cpus"].as_u64().unwrap_or(0);
        mem_mb += node["real_memory"].as_u64().unwrap_or(0);
        for (class, (count, name)) in parse_gres(node["gres"].as_str().unwrap_or("")) {
            *capacity.entry(class.clone()).or_insert(0) += count;
            gres_names.insert(class, name);
        }
    }
    capacity.insert("cpu".to_string(), cpus);
    capacity.insert("mem_gib".to_string(), mem_mb / 1024);
    (capacity, gres_names)
}

/// A job this executor submitted.
#[derive(Debug)]
struct Record {
    slurm_id: u64,
    output: PathBuf,
    /// The task watching it; `None` once stopped.
    poller: Option<JoinHandle<()>>,
}

impl Record {
    fn watched(&self) -> bool {
        self.poller.as_ref().is_some_and(|p| !p.is_finished())
    }
}

/// The connection to slurmrestd, shared with the pollers.
#[derive(Debug)]
struct Rest {
    socket: PathBuf,
    http: reqwest::Client,
    base: String,
}

impl Rest {
    /// Sends a request; the HTTP status and the JSON answer.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), SlurmError> {
        let request = format!("{method} {path}");
        let mut builder = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            builder = builder.json(body);
        }
        let unreachable = |e: reqwest::Error| SlurmError::Unreachable {
            socket: self.socket.clone(),
            request: request.clone(),
            reason: error_chain(&e),
        };
        let answer = builder.send().await.map_err(unreachable)?;
        let status = answer.status().as_u16();
        let text = answer.text().await.map_err(unreachable)?;
        let value = serde_json::from_str(&text).map_err(|e| SlurmError::Malformed {
            socket: self.socket.clone(),
            request: request.clone(),
            detail: format!("{status}, not JSON ({e}): {}", clip(&text, 200)),
        })?;
        Ok((status, value))
    }

    /// Sends a request and insists on a 200 with an empty `errors` array.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, SlurmError> {
        let request = format!("{method} {path}");
        let (status, value) = self.send(method, path, body).await?;
        match errors_of(&value) {
            None if status == 200 => Ok(value),
            found => {
                let (code, message) = found.unwrap_or((None, format!("HTTP {status}")));
                Err(SlurmError::Api {
                    socket: self.socket.clone(),
                    request,
                    status,
                    code,
                    message,
                })
            }
        }
    }

    async fn job(&self, slurm_id: u64) -> Result<JobStatus, SlurmError> {
        let path = format!("/job/{slurm_id}");
        let answer = self.call(Method::GET, &path, None).await?;
        answer["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(JobStatus::from_json)
            .find(|j| j.slurm_id == slurm_id)
            .ok_or_else(|| SlurmError::Malformed {
                socket: self.socket.clone(),
                request: format!("GET {path}"),
                detail: "no such job in the answer".into(),
            })
    }

    /// The newest job called `name`, if any.
    async fn find_by_name(&self, name: &str) -> Result<Option<u64>, SlurmError> {
        let answer = self.call(Method::GET, "/jobs", None).await?;
        Ok(answer["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|j| j["name"].as_str() == Some(name))
            .filter_map(|j| j["job_id"].as_u64())
            .max())
    }

    /// Sends `signal` (e.g. `SIGTERM`) to every process of a job, the batch
    /// script included, without cancelling it (`scancel --full --signal`); a
    /// job Slurm no longer knows has nothing left to signal.
    async fn signal(&self, slurm_id: u64, signal: &str) -> Result<(), SlurmError> {
        match self
            .call(
                Method::DELETE,
                &format!("/job/{slurm_id}?signal={signal}&flags=FULL_JOB"),
                None,
            )
            .await
        {
            Err(e) if e.code() == Some(INVALID_JOB_ID) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Cancels a job; a job Slurm no longer knows counts as cancelled.
    async fn cancel(&self, slurm_id: u64) -> Result<(), SlurmError> {
        match self
            .call(Method::DELETE, &format!("/job/{slurm_id}"), None)
            .await
        {
            Err(e) if e.code() == Some(INVALID_JOB_ID) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    async fn nodes(&self) -> Result<Vec<Value>, SlurmError> {
        let answer = self.call(Method::GET, "/nodes", None).await?;
        Ok(answer["nodes"].as_array().cloned().unwrap_or_default())
    }
}

/// The first entry of a non-empty `errors` array: its number and its text.
fn errors_of(answer: &Value) -> Option<(Option<i64>, String)> {
    let errors = answer["errors"].as_array().filter(|e| !e.is_empty())?;
    let code = errors.iter().find_map(|e| {
        e["error_number"]
            .as_i64()
            .or_else(|| e["error_code"].as_i64())
    });
    let texts: Vec<String> = errors
        .iter()
        .map(|e| {
            let text = e["error"].as_str().unwrap_or("error");
            let number = e["error_number"]
                .as_i64()
                .or_else(|| e["error_code"].as_i64());
            let mut line = match number {
                Some(n) => format!("{text} (error {n})"),
                None => text.to_string(),
            };
            if let Some(d) = e["description"].as_str().filter(|d| !d.is_empty()) {
                line.push_str(": ");
                line.push_str(d);
            }
            line
        })
        .collect();
    Some((code, texts.join("; ")))
}

/// An error and its causes, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

fn clip(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// Runs jobs on a Slurm cluster through slurmrestd.
#[derive(Debug)]
pub struct Slurm {
    rest: Arc<Rest>,
    partition: String,
    spool: PathBuf,
    poll: Duration,
    capacity: BTreeMap<String, u64>,
    /// GPU class → the gres name to request it by.
    gres_names: BTreeMap<String, String>,
    jobs: Mutex<BTreeMap<i64, Record>>,
}

impl Slurm {
    /// Stops watching job `job` (so that no event follows) and returns its
    /// Slurm id; the record stays, its output still worth a tail. `None` for a
    /// job it does not run.
    async fn unwatch(&self, job: i64) -> Option<u64> {
        let (slurm_id, poller) = self
            .jobs
            .lock()
            .ok()
            .and_then(|mut jobs| jobs.get_mut(&job).map(|r| (r.slurm_id, r.poller.take())))?;
        if let Some(poller) = poller {
            poller.abort();
            // Once it is gone (with its sender), no event can follow.
            let _ = poller.await;
        }
        Some(slurm_id)
    }

    /// Connects to slurmrestd on `socket`: checks that it answers and that the
    /// controller is up, picks the partition, reads the capacity of its nodes and
    /// prepares the spool directory.
    pub async fn connect(socket: PathBuf, options: SlurmOptions) -> Result<Slurm, SlurmError> {
        let http = reqwest::Client::builder()
            .unix_socket(socket.as_path())
            .timeout(options.request_timeout)
            .build()
            .map_err(|e| SlurmError::Unreachable {
                socket: socket.clone(),
                request: "building the HTTP client".into(),
                reason: error_chain(&e),
            })?;
        let rest = Rest {
            socket: socket.clone(),
            http,
            base: format!("http://localhost/slurm/{API_VERSION}"),
        };
        let ping = rest.call(Method::GET, "/ping", None).await?;
        let up = ping["pings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["ping"].as_str() == Some("UP"));
        if !up {
            return Err(SlurmError::Malformed {
                socket,
                request: "GET /ping".into(),
                detail: format!("no controller answers UP: {}", ping["pings"]),
            });
        }
        let partitions = rest.call(Method::GET, "/partitions", None).await?;
        let partitions = partitions["partitions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let is_default = |p: &Value| {
            p["flags"].as_array().into_iter().flatten().any(|f| {
                f.as_str()
                    .is_some_and(|f| f.eq_ignore_ascii_case("default"))
            })
        };
        let chosen = match &options.partition {
            Some(name) => partitions.iter().find(|p| p["name"].as_str() == Some(name)),
            None => partitions
                .iter()
                .find(|p| is_default(p))
                .or_else(|| partitions.first()),
        };
        let Some(partition) = chosen.and_then(|p| p["name"].as_str()).map(str::to_string) else {
            return Err(SlurmError::NoPartition {
                socket,
                partition: options.partition.unwrap_or_default(),
            });
        };
        let (capacity, gres_names) = capacity_of(&rest.nodes().await?, &partition);
        prepare_spool(&options.spool).await?;
        tracing::info!(socket = %socket.display(), %partition, ?capacity, "connected to slurm");
        Ok(Slurm {
            rest: Arc::new(rest),
            partition,
            spool: options.spool,
            poll: options.poll,
            capacity,
            gres_names,
            jobs: Mutex::new(BTreeMap::new()),
        })
    }

    /// Replaces the capacity read from the cluster in the classes `overrides`
    /// names (`suanwang agent --capacity`); the others stay as read.
    pub fn override_capacity(&mut self, overrides: &BTreeMap<String, u64>) {
        self.capacity = crate::override_classes(std::mem::take(&mut self.capacity), overrides);
    }

    /// The partition jobs go to.
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// Slurm's id for a job this executor submitted.
    pub fn slurm_id(&self, job: i64) -> Option<u64> {
        self.jobs.lock().ok()?.get(&job).map(|r| r.slurm_id)
    }

    /// What Slurm says about one of its jobs now.
    pub async fn status(&self, slurm_id: u64) -> Result<JobStatus, SlurmError> {
        self.rest.job(slurm_id).await
    }

    /// Jobs being watched now.
    pub fn running(&self) -> usize {
        self.jobs
            .lock()
            .map_or(0, |j| j.values().filter(|r| r.watched()).count())
    }

    /// The submit request for a job: the request body, and its output file.
    fn submit_request(&self, job: &Assignment, name: &str) -> Result<(Value, PathBuf), String> {
        submit_body(job, name, &self.partition, &self.spool, &self.gres_names)
    }

    /// Submits a job once; its Slurm id. A job Slurm created but flagged with
    /// errors is cancelled; after an unclear answer the job is looked up by name.
    async fn submit(&self, job: &Assignment, name: &str, body: &Value) -> Result<u64, SlurmError> {
        let rejected = |message: String| SlurmError::Rejected {
            job: job.job,
            name: name.to_string(),
            message,
        };
        match self
            .rest
            .send(Method::POST, "/job/submit", Some(body))
            .await
        {
            Ok((status, answer)) => {
                let errors = errors_of(&answer);
                let slurm_id = answer["job_id"].as_u64();
                match (status, slurm_id, errors) {
                    (200, Some(id), None) => Ok(id),
                    (_, id, errors) => {
                        let message = errors.map_or(format!("HTTP {status}"), |(_, m)| m);
                        // A job may exist although the submit failed (more CPUs
                        // than the partition has: 200 with errors; more memory:
                        // 500 and no id): make sure it does not linger.
                        let id = match id {
                            Some(id) => Some(id),
                            None => self.rest.find_by_name(name).await.ok().flatten(),
                        };
                        if let Some(id) = id
                            && let Err(e) = self.rest.cancel(id).await
                        {
                            tracing::warn!(job = job.job, slurm_id = id, error = %e, "cannot cancel a refused job");
                        }
                        Err(rejected(message))
                    }
                }
            }
            Err(e @ SlurmError::Unreachable { .. }) => {
                // The submit may or may not have landed: the name tells.
                tracing::warn!(job = job.job, %name, error = %e, "unclear submit answer; looking the job up");
                match self.rest.find_by_name(name).await {
                    Ok(Some(id)) => Ok(id),
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// The submit request for a job (`POST /job/submit`): the body, and the job's
/// output file. The demand is per node: one task per node holds a node's share
/// (`cpus_per_task`, `memory_per_node`, `gres`). A gang of N asks `nodes` N with
/// `tasks` N, `tasks_per_node` 1 (`sbatch --nodes=N --ntasks-per-node=1`): its
/// command runs as the batch script on the first node, and `srun` inside it
/// starts one task on each node.
pub fn submit_body(
    job: &Assignment,
    name: &str,
    partition: &str,
    spool: &Path,
    gres_names: &BTreeMap<String, String>,
) -> Result<(Value, PathBuf), String> {
    let script = batch_script(&job.spec.command)?;
    let minutes = time_limit_minutes(crate::simulated::declared_secs(&job.spec)?);

    let mut environment = serde_json::Map::new();
    environment.insert("PATH".into(), json!(DEFAULT_PATH));
    for (key, value) in &job.spec.env {
        environment.insert(key.clone(), json!(value));
    }
    environment.insert("SUANWANG_JOB_ID".into(), json!(job.job.to_string()));
    environment.insert("SUANWANG_LEASE".into(), json!(job.token.to_string()));

    let workdir = job
        .spec
        .workdir
        .as_deref()
        .map_or_else(|| spool.to_path_buf(), PathBuf::from);
    let output = spool.join(format!("{name}.out"));
    let gang = job.spec.gang.max(1);
    let mut request = json!({
        "name": name,
        "partition": partition,
        "comment": format!("suanwang job {} lease {}", job.job, job.token),
        "current_working_directory": workdir.to_string_lossy(),
        "standard_output": output.to_string_lossy(),
        "environment": environment,
        "time_limit": minutes,
        "tasks": gang,
    });
    if gang > 1 {
        request["nodes"] = json!(gang);
        request["tasks_per_node"] = json!(1);
    }
    let mut gres = Vec::new();
    for (class, count) in crate::simulated::demand(&job.spec) {
        match class.as_str() {
            _ if count == 0 => {}
            "cpu" => request["cpus_per_task"] = json!(count),
            "mem_gib" => request["memory_per_node"] = json!(count * 1024),
            other => match gres_names.get(other) {
                Some(name) => gres.push(format!("{name}:{count}")),
                None => {
                    return Err(format!(
                        "it asks for {count} {other} but partition {} offers none",
                        partition
                    ));
                }
            },
        }
    }
    if !gres.is_empty() {
        request["gres"] = json!(gres.join(","));
    }
    Ok((json!({"job": request, "script": script}), output))
}

/// Creates the spool directory, writable by every user (sticky, like /tmp):
/// jobs run as slurmrestd's user, not the agent's.
async fn prepare_spool(spool: &Path) -> Result<(), SlurmError> {
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::create_dir_all(spool)
        .await
        .map_err(|source| SlurmError::Spool {
            path: spool.to_path_buf(),
            source,
        })?;
    let mode = std::fs::Permissions::from_mode(0o1777);
    if let Err(e) = tokio::fs::set_permissions(spool, mode).await {
        // Someone else's directory: fine if jobs can write to it already.
        tracing::warn!(spool = %spool.display(), error = %e, "cannot make the spool directory world-writable");
    }
    Ok(())
}

/// Watches one Slurm job until it ends, sending `Started` and `Finished`.
async fn watch(
    rest: Arc<Rest>,
    job: i64,
    slurm_id: u64,
    poll: Duration,
    events: mpsc::UnboundedSender<Event>,
) {
    let mut started = false;
    let mut queued: Option<String> = None;
    let mut failures = 0u32;
    loop {
        tokio::time::sleep(poll).await;
        if events.is_closed() {
            return;
        }
        let status = match rest.job(slurm_id).await {
            Ok(status) => {
                failures = 0;
                status
            }
            Err(e) if e.code() == Some(INVALID_JOB_ID) => {
                tracing::error!(job, slurm_id, error = %e, "slurm lost the job");
                if !started {
                    let _ = events.send(Event::Started(job));
                }
                let _ = events.send(Event::Finished {
                    job,
                    exit_code: 1,
                    message: Some(format!("slurm job {slurm_id} vanished: {e}")),
                });
                return;
            }
            Err(e) => {
                // slurmrestd restarting, or slow: the job runs on regardless.
                failures += 1;
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(job, slurm_id, failures, error = %e, "cannot read the job's state");
                }
                continue;
            }
        };
        match phase(&status) {
            Phase::Waiting => {
                // Why Slurm holds it (`PENDING (Resources)`), once per change.
                let reason = (!started && !matches!(status.reason.as_str(), "" | "None"))
                    .then(|| format!("slurm job {slurm_id}: {}", describe(&status)));
                if let Some(reason) = reason
                    && queued.as_ref() != Some(&reason)
                {
                    queued = Some(reason.clone());
                    let _ = events.send(Event::Queued { job, reason });
                }
            }
            Phase::Running => {
                if !started {
                    started = true;
                    tracing::info!(job, slurm_id, "slurm job running");
                    let _ = events.send(Event::Started(job));
                }
            }
            Phase::Hopeless => {
                if let Err(e) = rest.cancel(slurm_id).await {
                    tracing::warn!(job, slurm_id, error = %e, "cannot cancel a job that will never run");
                }
                let _ = events.send(Event::Started(job));
                let _ = events.send(Event::Finished {
                    job,
                    exit_code: 1,
                    message: Some(format!(
                        "slurm job {slurm_id}: {} will never run; cancelled",
                        describe(&status)
                    )),
                });
                return;
            }
            Phase::Done { exit_code, message } => {
                if !started {
                    let _ = events.send(Event::Started(job));
                }
                tracing::info!(job, slurm_id, state = %status.state, exit_code, "slurm job ended");
                let _ = events.send(Event::Finished {
                    job,
                    exit_code,
                    message: message.map(|m| format!("slurm job {slurm_id}: {m}")),
                });
                return;
            }
        }
    }
}

impl Executor for Slurm {
    fn kind(&self) -> &'static str {
        "slurm"
    }

    fn capacity(&self) -> BTreeMap<String, u64> {
        self.capacity.clone()
    }

    async fn start(
        &self,
        job: &Assignment,
        events: mpsc::UnboundedSender<Event>,
    ) -> Result<(), String> {
        let name = format!("suanwang-{}-{}", job.job, job.token);
        let (body, output) = self.submit_request(job, &name).map_err(|reason| {
            SlurmError::Spec {
                job: job.job,
                reason,
            }
            .to_string()
        })?;
        let slurm_id = self
            .submit(job, &name, &body)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(job = job.job, slurm_id, %name, "submitted to slurm");
        let poller = tokio::spawn(watch(
            self.rest.clone(),
            job.job,
            slurm_id,
            self.poll,
            events,
        ));
        let record = Record {
            slurm_id,
            output,
            poller: Some(poller),
        };
        if let Ok(mut jobs) = self.jobs.lock() {
            if let Some(old) = jobs.insert(job.job, record)
                && let Some(poller) = old.poller
            {
                poller.abort();
            }
            // Forget the oldest finished jobs beyond what log tails need.
            let finished: Vec<i64> = jobs
                .iter()
                .filter(|(_, r)| !r.watched())
                .map(|(id, _)| *id)
                .collect();
            for id in finished
                .iter()
                .take(finished.len().saturating_sub(KEPT_FINISHED))
            {
                jobs.remove(id);
            }
        }
        Ok(())
    }

    async fn preempt(&self, job: i64, grace: Duration) {
        let Some(slurm_id) = self.unwatch(job).await else {
            return;
        };
        // The signal first, so that the job can checkpoint and exit; the cancel
        // after the grace period ends what is left.
        match self.rest.signal(slurm_id, "SIGTERM").await {
            Ok(()) => tracing::info!(job, slurm_id, "slurm job signalled (SIGTERM): preempted"),
            Err(e) => tracing::warn!(job, slurm_id, error = %e, "cannot signal the slurm job"),
        }
        let rest = Arc::clone(&self.rest);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            match rest.cancel(slurm_id).await {
                Ok(()) => {
                    tracing::info!(job, slurm_id, "slurm job cancelled after its grace period")
                }
                Err(e) => tracing::error!(job, slurm_id, error = %e, "cannot cancel the slurm job"),
            }
        });
    }

    async fn stop(&self, job: i64) {
        let Some(slurm_id) = self.unwatch(job).await else {
            return;
        };
        match self.rest.cancel(slurm_id).await {
            Ok(()) => tracing::info!(job, slurm_id, "slurm job cancelled"),
            Err(e) => tracing::error!(job, slurm_id, error = %e, "cannot cancel the slurm job"),
        }
    }

    async fn telemetry(&self) -> Telemetry {
        let base = Telemetry {
            source: "slurm".into(),
            executor: Some("slurm".into()),
            running_jobs: Some(self.running() as u64),
            capacity: self.capacity.clone(),
            ..Telemetry::default()
        };
        let nodes = match self.rest.nodes().await {
            Ok(nodes) => nodes,
            Err(e) => {
                return Telemetry {
                    slurm: Some(SlurmSample {
                        partition: self.partition.clone(),
                        error: Some(e.to_string()),
                        ..SlurmSample::default()
                    }),
                    ..base
                };
            }
        };
        let mine: Vec<&Value> = nodes
            .iter()
            .filter(|n| in_partition(n, &self.partition))
            .collect();
        let sum = |key: &str| mine.iter().filter_map(|n| n[key].as_u64()).sum::<u64>();
        let text = |v: &Value| v.as_str().map(str::to_string);
        let nodes = mine
            .iter()
            .map(|n| SlurmNode {
                name: text(&n["name"]).unwrap_or_default(),
                state: text(&n["state"]).unwrap_or_default(),
                flags: n["state_flags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(text)
                    .collect(),
                reason: text(&n["reason"]).filter(|r| !r.is_empty()),
                cpus: n["cpus"].as_u64().unwrap_or(0),
                alloc_cpus: n["alloc_cpus"].as_u64().unwrap_or(0),
                memory_mb: n["real_memory"].as_u64().unwrap_or(0),
                alloc_memory_mb: n["alloc_memory"].as_u64().unwrap_or(0),
            })
            .collect();
        Telemetry {
            slurm: Some(SlurmSample {
                partition: self.partition.clone(),
                cpus: Some(SlurmTotals {
                    total: sum("cpus"),
                    allocated: sum("alloc_cpus"),
                    free: sum("idle_cpus"),
                }),
                memory_mb: Some(SlurmTotals {
                    total: sum("real_memory"),
                    allocated: sum("alloc_memory"),
                    free: sum("free_memory"),
                }),
                nodes,
                unusable_nodes: mine.iter().filter(|n| !usable(n)).count() as u64,
                error: None,
            }),
            ..base
        }
    }

    async fn log_tail(&self, job: i64, max: usize) -> Option<String> {
        let output = self.jobs.lock().ok()?.get(&job)?.output.clone();
        match crate::local::tail(&output, max) {
            Some(text) => Some(text),
            // Not written yet: the job is still pending.
            None if !output.exists() => Some(String::new()),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: &str, reason: &str, wait_status: i64) -> JobStatus {
        JobStatus {
            slurm_id: 7,
            state: state.into(),
            reason: reason.into(),
            wait_status: Some(wait_status),
        }
    }

    #[test]
    fn wait_statuses_decode_to_exit_codes() {
        assert_eq!(exit_code_of(0), 0);
        assert_eq!(exit_code_of(768), 3);
        assert_eq!(exit_code_of(36608), 143);
        assert_eq!(exit_code_of(15), 143);
        assert_eq!(exit_code_of(9), 137);
        // A launch failure (`scontrol` shows 0:53).
        assert_eq!(exit_code_of(4021), 181);
    }

    #[test]
    fn states_map_to_phases() {
        assert_eq!(phase(&status("PENDING", "Resources", 0)), Phase::Waiting);
        assert_eq!(
            phase(&status("PENDING", "PartitionConfig", 0)),
            Phase::Hopeless
        );
        assert_eq!(phase(&status("COMPLETING", "None", 0)), Phase::Running);
        assert_eq!(
            phase(&status("COMPLETED", "None", 0)),
            Phase::Done {
                exit_code: 0,
                message: None
            }
        );
        assert_eq!(
            phase(&status("FAILED", "NonZeroExitCode", 768)),
            Phase::Done {
                exit_code: 3,
                message: Some("FAILED (NonZeroExitCode)".into())
            }
        );
        assert_eq!(
            phase(&status("TIMEOUT", "TimeLimit", 15)),
            Phase::Done {
                exit_code: 143,
                message: Some("TIMEOUT (TimeLimit)".into())
            }
        );
        // A pending job cancelled reads exit 0: still not a success.
        assert_eq!(
            phase(&status("CANCELLED", "None", 0)),
            Phase::Done {
                exit_code: 1,
                message: Some("CANCELLED".into())
            }
        );
        assert_eq!(phase(&status("SOMETHING_NEW", "", 0)), Phase::Waiting);
    }

    #[test]
    fn commands_become_safely_quoted_scripts() {
        let argv: Vec<String> = ["sh", "-c", "echo 'hi' $HOME; rm -rf /x", ""]
            .map(String::from)
            .to_vec();
        let script = batch_script(&argv).unwrap();
        assert_eq!(
            script,
            "#!/bin/sh\nexec sh -c 'echo '\\''hi'\\'' $HOME; rm -rf /x' ''\n"
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &script.replace("exec sh", "exec printf '[%s]' ")])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "[-c][echo 'hi' $HOME; rm -rf /x][]"
        );
        assert!(batch_script(&[]).is_err());
        assert!(batch_script(&["a\0b".to_string()]).is_err());
    }

    fn spec(gang: u32) -> Assignment {
        let spec = serde_json::json!({
            "demand": [{"class": "cpu", "count": 16}, {"class": "mem_gib", "count": 64},
                       {"class": "a800", "count": 8}],
            "gang": gang,
            "duration": 600,
            "command": ["srun", "hostname"],
        });
        Assignment {
            tenant: None,
            job: 9,
            token: 4,
            spec: serde_json::from_value(spec).unwrap(),
        }
    }

    #[test]
    fn a_gang_asks_for_its_nodes_with_one_task_per_node() {
        let gres = BTreeMap::from([("a800".to_string(), "gpu:a800".to_string())]);
        let spool = Path::new("/spool");
        let (body, output) = submit_body(&spec(4), "suanwang-9-4", "main", spool, &gres).unwrap();
        assert_eq!(output, Path::new("/spool/suanwang-9-4.out"));
        let job = &body["job"];
        assert_eq!(job["nodes"], 4);
        assert_eq!(job["tasks"], 4);
        assert_eq!(job["tasks_per_node"], 1);
        // The demand is per node: one task per node holds all of it.
        assert_eq!(job["cpus_per_task"], 16);
        assert_eq!(job["memory_per_node"], 64 * 1024);
        assert_eq!(job["gres"], "gpu:a800:8");
        assert_eq!(job["partition"], "main");
        assert_eq!(body["script"], "#!/bin/sh\nexec srun hostname\n");
        // A plain job asks one task and says nothing of nodes.
        let (body, _) = submit_body(&spec(1), "suanwang-9-4", "main", spool, &gres).unwrap();
        assert_eq!(body["job"]["tasks"], 1);
        assert!(body["job"].get("nodes").is_none());
        assert!(body["job"].get("tasks_per_node").is_none());
        assert_eq!(body["job"]["cpus_per_task"], 16);
        // A class the partition lacks is refused before anything is sent.
        let err = submit_body(&spec(2), "n", "main", spool, &BTreeMap::new()).unwrap_err();
        assert!(err.contains("8 a800") && err.contains("main"), "{err}");
    }

    #[test]
    fn time_limits_round_up_to_minutes() {
        assert_eq!(time_limit_minutes(0), 1);
        assert_eq!(time_limit_minutes(60), 1);
        assert_eq!(time_limit_minutes(61), 2);
        assert_eq!(time_limit_minutes(7200), 120);
    }

    #[test]
    fn gpus_parse_from_gres_strings() {
        let gres = parse_gres("gpu:a800:8(S:0-1),gpu:2,mps:100,gpu:bad:x");
        assert_eq!(gres["a800"], (8, "gpu:a800".to_string()));
        assert_eq!(gres["gpu"], (2, "gpu".to_string()));
        assert_eq!(gres.len(), 2);
        assert!(parse_gres("").is_empty());
        let nodes = vec![
            json!({"name": "a", "partitions": ["main"], "cpus": 4, "real_memory": 8192,
                   "state": "idle", "state_flags": [], "gres": "gpu:a800:2"}),
            json!({"name": "b", "partitions": ["main"], "cpus": 4, "real_memory": 8192,
                   "state": "idle", "state_flags": ["DRAIN"], "gres": ""}),
            json!({"name": "c", "partitions": ["other"], "cpus": 4, "real_memory": 8192,
                   "state": "idle", "state_flags": [], "gres": ""}),
        ];
        let (capacity, names) = capacity_of(&nodes, "main");
        assert_eq!(
            capacity,
            BTreeMap::from([("cpu".into(), 4), ("mem_gib".into(), 8), ("a800".into(), 2)])
        );
        assert_eq!(names["a800"], "gpu:a800");
    }

    #[test]
    fn slurm_errors_are_read_from_the_answer() {
        let answer = json!({"errors": [{"error_number": 2017, "error": "Invalid job id specified",
            "description": "Unable to find JobId=9"}]});
        let (code, message) = errors_of(&answer).unwrap();
        assert_eq!(code, Some(2017));
        assert_eq!(
            message,
            "Invalid job id specified (error 2017): Unable to find JobId=9"
        );
        assert!(errors_of(&json!({"errors": []})).is_none());
    }
}
