//! The agent protocol: how a site's agent joins the network, says it is alive,
//! takes work and reports on it. The agent dials out; the control plane never
//! calls it.

use crate::jobs::JobSubmission;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use suanwang_model::HeldVerdict;

/// Most leases handed out in one call.
pub const MAX_LEASES: u32 = 1000;
/// Longest long poll of a lease call, ms.
pub const MAX_LEASE_WAIT_MS: u64 = 30_000;
/// Longest output tail kept per job, bytes.
pub const MAX_LOG_TAIL: usize = 64 * 1024;

/// An agent introducing itself (`POST /v1/agents`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The site it runs work for (a site of the topology).
    pub site: String,
    /// Units it offers per resource class, as measured at the site.
    #[serde(default)]
    #[schema(schema_with = units_per_class)]
    pub capacity: BTreeMap<String, u64>,
    /// Its executor: `local`, `slurm`, `simulated`…
    #[schema(min_length = 1, max_length = 64)]
    pub executor: String,
    /// Its version.
    #[serde(default)]
    pub version: Option<String>,
    /// The host it runs on.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Results of its verification probe (`suanwang agent --probe`), one per
    /// class probed; empty when it ran none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 64)]
    pub probes: Vec<Probe>,
    /// Leases an agent that restarted found still alive in its engine (a
    /// Kubernetes Job it had made, labelled with its lease): the control plane
    /// hands each to this agent when it is still the job's current lease at this
    /// site, so that the work goes on instead of running twice. `resumed` in the
    /// answer lists those taken over; the agent stops the others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 10000)]
    pub resume: Vec<ResumeLease>,
}

/// A lease an agent asks to take over at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeLease {
    /// Job id.
    pub job: i64,
    /// The lease's fencing token, as the engine's record of the job names it.
    pub token: i64,
}

/// Whether a probe ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeStatus {
    /// It ran; `gflops` is what it measured.
    Ran,
    /// It could not run here (no device, no library); `note` says why.
    NotRun,
}

/// One verification probe: a short benchmark on the units the agent offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// The class probed (`cpu`, or an accelerator model).
    #[schema(max_length = 64)]
    pub class: String,
    /// Whether it ran.
    pub status: ProbeStatus,
    /// Units it ran on (cores, cards).
    pub units: u64,
    /// Measured throughput over those units, GFLOPS; absent unless it ran.
    #[serde(default)]
    pub gflops: Option<f64>,
    /// What ran: kernel, precision, size, threads, time.
    #[schema(max_length = 400)]
    pub method: String,
    /// Why it did not run, or anything worth knowing.
    #[serde(default)]
    #[schema(max_length = 400)]
    pub note: Option<String>,
    /// When it ran, unix seconds (the agent's clock).
    pub at: i64,
}

/// Units per resource class: an object whose keys are class names.
pub(crate) fn units_per_class() -> utoipa::openapi::Object {
    suanwang_model::ResourceClass::all()
        .fold(utoipa::openapi::ObjectBuilder::new(), |object, class| {
            object.property(
                class.name(),
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::Integer)
                    .minimum(Some(0))
                    .maximum(Some(u64::MAX as usize)),
            )
        })
        // The classes known when the document is made (a server's document
        // also lists the models its catalogue gained).
        .additional_properties(Some(
            utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
        ))
        .description(Some(
            "units per resource class (cpu, mem_gib, or an accelerator model of the catalogue, `GET /v1/accelerators`)",
        ))
        .build()
}

/// What an agent said about itself at registration.
pub type AgentInfo = Registration;

/// The answer to a registration.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Registered {
    /// The agent's id, for the other calls.
    pub agent_id: String,
    /// Its site.
    pub site: String,
    /// How often to heartbeat, wall milliseconds.
    pub heartbeat_interval_ms: u64,
    /// How long a lease lasts without renewal, wall milliseconds.
    pub lease_ttl_ms: u64,
    /// How many network seconds pass per wall second (1 except in a demo).
    pub speed: f64,
    /// Network time now, unix seconds.
    pub now: i64,
    /// The jobs of `resume` whose leases are now this agent's (renewed from
    /// now); the others are no longer those leases'.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed: Vec<i64>,
}

/// A lease the agent holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeldLease {
    /// Job id.
    pub job: i64,
    /// The lease's fencing token.
    pub token: i64,
    /// The tail of the job's output, when it changed since the last heartbeat
    /// (kept only if the lease is renewed; the last 64 KiB).
    #[serde(default)]
    pub log_tail: Option<String>,
}

/// Host CPU use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CpuSample {
    /// Logical cores.
    pub cores: u64,
    /// Busy share of all cores, 0..1.
    pub utilisation: f64,
    /// Load average over a minute.
    pub load_1m: f64,
}

/// Host memory use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemorySample {
    /// Installed, GiB.
    pub total_gib: f64,
    /// In use, GiB.
    pub used_gib: f64,
    /// Used share, 0..1.
    pub utilisation: f64,
}

/// One GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GpuSample {
    /// Index on the host.
    pub index: u32,
    /// Model as the driver names it.
    pub model: String,
    /// The resource class it counts as, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Busy share, 0..1.
    pub utilisation: Option<f64>,
    /// Memory, MiB.
    pub memory_total_mib: Option<u64>,
    /// Memory in use, MiB.
    pub memory_used_mib: Option<u64>,
    /// Board power, W.
    pub power_w: Option<f64>,
}

/// Power drawn by the site's machines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PowerSample {
    /// Watts.
    pub watts: f64,
    /// How it was found: `rapl`, `nvml`, `rapl+nvml` (measured) or `estimated`.
    pub source: String,
    /// The power model, for an estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Measured parts, W, by meter (`rapl_w`, `nvml_w`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parts: BTreeMap<String, f64>,
}

/// Totals of a Slurm partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlurmTotals {
    /// All.
    pub total: u64,
    /// Allocated to jobs.
    pub allocated: u64,
    /// Idle (CPUs) or free (memory).
    #[serde(default, alias = "idle")]
    pub free: u64,
}

/// One Slurm node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlurmNode {
    /// Node name.
    pub name: String,
    /// Slurm's state.
    pub state: String,
    /// Slurm's state flags.
    #[serde(default)]
    pub flags: Vec<String>,
    /// Why it is down or drained.
    #[serde(default)]
    pub reason: Option<String>,
    /// CPUs.
    pub cpus: u64,
    /// CPUs allocated.
    pub alloc_cpus: u64,
    /// Memory, MB.
    pub memory_mb: u64,
    /// Memory allocated, MB.
    pub alloc_memory_mb: u64,
}

/// What a Slurm cluster says of its partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlurmSample {
    /// The partition the agent runs jobs in.
    pub partition: String,
    /// CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<SlurmTotals>,
    /// Memory, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<SlurmTotals>,
    /// Its nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<SlurmNode>,
    /// Nodes that cannot take jobs (down, drained).
    #[serde(default)]
    pub unusable_nodes: u64,
    /// Why the cluster could not be read, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A telemetry sample: what an agent measures at its site. Every part is
/// optional, since agents measure what their executor can see.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Telemetry {
    /// Where the numbers come from: `host` (the agent's machine), `slurm`,
    /// `simulated`…
    pub source: String,
    /// The agent's executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    /// Jobs it runs now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_jobs: Option<u64>,
    /// Units its jobs hold now, per class.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub busy: BTreeMap<String, u64>,
    /// Units it offers, per class.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity: BTreeMap<String, u64>,
    /// Busy share per class, 0..1.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub utilisation: BTreeMap<String, f64>,
    /// Host CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuSample>,
    /// Host memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemorySample>,
    /// How GPUs were read: `nvml`, `nvidia-smi` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_reader: Option<String>,
    /// GPUs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<GpuSample>,
    /// Power.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<PowerSample>,
    /// A Slurm cluster's partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmSample>,
}

/// A heartbeat (`POST /v1/agents/{id}/heartbeat`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// A telemetry sample, kept as the site's latest.
    #[serde(default)]
    pub telemetry: Option<Telemetry>,
    /// The leases it holds (jobs dispatched to it and not yet reported final).
    #[serde(default)]
    pub held: Vec<HeldLease>,
}

/// What to do with one held lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeldAnswer {
    /// Job id.
    pub job: i64,
    /// Token as sent.
    pub token: i64,
    /// `renewed` (keep running), `cancel` (the job was cancelled: stop it),
    /// `preempt` (stopped for a job of a higher class: signal it, wait
    /// `grace_secs`, kill it, report nothing more for this attempt) or `stale`
    /// (the lease is no longer yours: stop it, report nothing more).
    pub verdict: HeldVerdict,
    /// With `preempt`: seconds between the stop signal and the kill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_secs: Option<u64>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeartbeatAnswer {
    /// Network time now, unix seconds.
    pub now: i64,
    /// Renewed leases last until then, unix seconds.
    pub lease_until: i64,
    /// One answer per held lease, in order.
    pub held: Vec<HeldAnswer>,
}

/// A request for work (`POST /v1/agents/{id}/lease`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// At most this many jobs.
    #[schema(minimum = 1, maximum = 1000)]
    pub max: u32,
    /// When nothing is due, wait up to this long (ms) for the scheduler to place
    /// something instead of answering empty at once (a long poll: work reaches the
    /// agent when it is placed, not at its next beat).
    #[serde(default)]
    #[schema(maximum = 30000)]
    pub wait_ms: u64,
}

/// A job handed to an agent.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Lease {
    /// Job id.
    pub job: i64,
    /// Fencing token: send it with every report and heartbeat for this job.
    pub token: i64,
    /// The lease lasts until then unless renewed, unix seconds.
    pub lease_until: i64,
    /// Planned start, unix seconds.
    pub start_at: Option<i64>,
    /// Owning tenant.
    pub tenant_id: i64,
    /// The job as submitted (normalised): command, environment, resources,
    /// duration. [`Lease::submission`] reads it.
    #[schema(value_type = JobSubmission)]
    pub spec: Box<RawValue>,
}

impl Lease {
    /// The job's specification.
    pub fn submission(&self) -> Result<JobSubmission, serde_json::Error> {
        serde_json::from_str(self.spec.get())
    }
}

/// Work for an agent.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Leases {
    /// The jobs, earliest planned start first.
    pub leases: Vec<Lease>,
}

/// The states an agent reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ReportState {
    /// Its engine accepted it but holds it before starting it (a Kubernetes
    /// pod that fits no node, an image still being pulled): `message` says why
    /// in the engine's words, shown by `explain`. The job stays Dispatched.
    Queued,
    /// It started.
    Running,
    /// It ended with exit code 0.
    Succeeded,
    /// It ended otherwise, or could not start.
    Failed,
}

/// An agent's report on a job (`POST /v1/agents/{id}/report`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Job id.
    pub job: i64,
    /// The lease's fencing token.
    pub token: i64,
    /// The job's new state.
    pub state: ReportState,
    /// Exit code, for a finished job.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Why it failed, or anything worth keeping (shown by explain; the first
    /// 4,000 characters).
    #[serde(default)]
    pub message: Option<String>,
    /// The tail of the job's output (kept only if the report is accepted).
    #[serde(default)]
    pub log_tail: Option<String>,
}

/// An agent as the API shows it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentDoc {
    /// Id.
    pub id: String,
    /// Site.
    pub site: String,
    /// Whether it heartbeated within the lease time.
    pub live: bool,
    /// Last heartbeat, unix seconds.
    pub last_seen: i64,
    /// Registered, unix seconds.
    pub registered_at: i64,
    /// What it said at registration.
    pub info: AgentInfo,
    /// Its latest telemetry sample.
    pub telemetry: Option<Telemetry>,
}
