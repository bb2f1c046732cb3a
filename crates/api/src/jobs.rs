//! Jobs: what a tenant submits, how a job is shown, listed and explained.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use suanwang_model::{Explanation, JobState, PriorityClass, Weights};

/// Most units of one class a job may ask for.
pub const MAX_UNITS: u32 = 100_000;
/// Most nodes a job may span.
pub const MAX_GANG: u32 = 10_000;
/// Largest input data, GiB.
pub const MAX_DATA_GIB: f64 = 1e7;
/// Largest page of `GET /v1/jobs`.
pub const MAX_PAGE: u32 = 1000;

/// A duration: whole seconds, or text such as `90s`, `15m`, `2h`, `1d`, `1h30m`.
/// Stored and shown as seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DurationValue {
    /// Seconds.
    Seconds(i64),
    /// Text: a number and a unit (`s`, `m`, `h`, `d`), several in descending order.
    Text(String),
}

/// What a duration's text looks like (whether its value is acceptable, e.g.
/// positive and within a limit, is for the field that takes it).
pub const DURATION_PATTERN: &str = r"^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$";

impl utoipa::__dev::ComposeSchema for DurationValue {
    fn compose(
        _: Vec<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
    ) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Int64,
                    )))
                    .description(Some("seconds")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(DURATION_PATTERN))
                    .description(Some(
                        "a number and a unit (s, m, h, d), several in descending order: 90s, 15m, 2h, 1d, 1h30m",
                    )),
            )
            .description(Some("a duration: seconds, or text such as 90s, 15m, 2h, 1d, 1h30m"))
            .into()
    }
}

impl utoipa::ToSchema for DurationValue {}

impl DurationValue {
    /// The seconds, when already normalised (as the server stores and shows it).
    pub fn seconds(&self) -> Option<i64> {
        match self {
            DurationValue::Seconds(s) => Some(*s),
            DurationValue::Text(_) => None,
        }
    }
}

/// `count` units of a resource class, held for the whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DemandIn {
    /// Class name: `cpu`, `mem_gib`, or an accelerator model (`a800`, `h800`,
    /// `h20`, `l40s`, `rtx4090`, `ascend910b`); common spellings are accepted and
    /// stored in this canonical form.
    pub class: String,
    /// Units.
    #[schema(minimum = 1, maximum = 100_000)]
    pub count: i64,
}

/// Input data the job reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataIn {
    /// Size, GiB.
    #[schema(minimum = 0, maximum = 10_000_000)]
    pub size_gib: f64,
    /// The site or region where it lives.
    pub location: String,
}

/// A bound on the round trip between the job and a region's users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyIn {
    /// Region (or site) of the users.
    pub region: String,
    /// Round-trip bound, ms.
    #[schema(exclusive_minimum = 0)]
    pub max_ms: f64,
}

/// A job submission (`POST /v1/jobs`). A job's `spec` is this, normalised:
/// durations in seconds and class names in their canonical form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSubmission {
    /// Resources held for the whole run (at least one); with `gang` > 1, on each
    /// node.
    #[schema(min_items = 1)]
    pub demand: Vec<DemandIn>,
    /// Nodes the job spans. A gang (more than 1) starts on all of them at once,
    /// holds them whole, and runs only at a site that declares its nodes
    /// (`nodes` in `GET /v1/sites`) with as many nodes, each holding `demand`;
    /// with no such site it is rejected, saying so.
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 10_000, default = 1)]
    pub gang: u32,
    /// Run time (at most 90 days).
    pub duration: DurationValue,
    /// Deadline, from submission; no sooner than the run can end.
    #[serde(default)]
    pub deadline: Option<DurationValue>,
    /// Where it is submitted from (a region or site): its home for the baseline.
    #[serde(default)]
    pub origin: Option<String>,
    /// Input data.
    #[serde(default)]
    pub data: Option<DataIn>,
    /// Latency bound to a region.
    #[serde(default)]
    pub latency_target: Option<LatencyIn>,
    /// Jurisdictions it may run in (any when empty), e.g. `cn-mainland`.
    #[serde(default)]
    pub residency: Vec<String>,
    /// Priority: higher goes first within a scheduler pass (and within a class).
    #[serde(default)]
    pub priority: i32,
    /// Priority class: `batch`, `normal` or `urgent`. At most the tenant's class
    /// (set by admins: `PUT /v1/tenants/{name}/class`), which is also the
    /// default; a job runs at the lower of the two if the tenant's class is
    /// lowered later. A higher class is always considered first, and a job with
    /// a `deadline` that no start meets may preempt `preemptible` jobs of lower
    /// classes (never of its own or a higher class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<PriorityClass>,
    /// Whether the job may be stopped for a job of a higher class: its process
    /// gets SIGTERM, a grace period, then SIGKILL (Slurm: the signal, then a
    /// cancel), and it is requeued to run again from the start as its next
    /// attempt. Needs `restartable`.
    #[serde(default)]
    pub preemptible: bool,
    /// Whether the start may be delayed for cheaper or greener power.
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub delayable: bool,
    /// Run only at this site.
    #[serde(default)]
    pub site: Option<String>,
    /// Ordered spill-over: where the job may go, most wanted first, each
    /// `site:ID`, `provider:NAME` (every site the provider owns),
    /// `jurisdiction:NAME` (every site in it, e.g. `cn-mainland`) or
    /// `anywhere`. The job goes to the best site of the first choice that can
    /// start it by its deadline (within its tenant's quota); a later choice
    /// only when every earlier one cannot; nowhere outside the list. Absent or
    /// empty: the tenant's default list (`PUT /v1/tenants/{name}/spill`), if
    /// any, else anywhere. Not with `site`. At most 16 choices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 16)]
    pub spill: Vec<String>,
    /// Command to run (program and arguments).
    #[serde(default)]
    pub command: Vec<String>,
    /// Environment variables for the command (names non-empty, without `=` or NUL).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory at the site (the agent's default when absent).
    #[serde(default)]
    pub workdir: Option<String>,
    /// May it be started again from the beginning when its site is lost mid-run?
    /// If not, a lost run stays Lost.
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub restartable: bool,
}

impl JobSubmission {
    /// A job holding `demand` for `duration`, with every other field at its
    /// default.
    pub fn new(demand: Vec<DemandIn>, duration: DurationValue) -> JobSubmission {
        JobSubmission {
            demand,
            gang: one(),
            duration,
            deadline: None,
            origin: None,
            data: None,
            latency_target: None,
            residency: Vec::new(),
            priority: 0,
            class: None,
            preemptible: false,
            delayable: yes(),
            site: None,
            spill: Vec::new(),
            command: Vec::new(),
            env: BTreeMap::new(),
            workdir: None,
            restartable: yes(),
        }
    }
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

/// A job as the API shows it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobDoc {
    /// Id.
    pub id: i64,
    /// Owning tenant's id.
    pub tenant_id: i64,
    /// State.
    pub state: JobState,
    /// Site, once placed.
    pub site: Option<String>,
    /// Planned (or actual) start, unix seconds, once placed.
    pub start_at: Option<i64>,
    /// Exit code, once finished.
    pub exit_code: Option<i32>,
    /// The job as submitted, normalised. Sent as stored (not parsed and written
    /// again); [`JobDoc::submission`] reads it.
    #[schema(value_type = JobSubmission)]
    pub spec: Box<RawValue>,
    /// Idempotency key given at submission.
    pub idempotency_key: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// How many times it was handed to an agent: the current lease's fencing token.
    pub attempt: i64,
    /// The agent holding (or that last held) it.
    pub agent: Option<String>,
    /// When its lease ends unless renewed, unix seconds.
    pub lease_expires_at: Option<i64>,
    /// When it started running, unix seconds.
    pub started_at: Option<i64>,
    /// When it ended, unix seconds.
    pub finished_at: Option<i64>,
    /// While pending: why it waits, in one word (`WaitCode`), as the
    /// scheduler last recorded it; absent when the scheduler has not weighed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitCode>,
}

impl JobDoc {
    /// The job's specification.
    pub fn submission(&self) -> Result<JobSubmission, serde_json::Error> {
        serde_json::from_str(self.spec.get())
    }
}

/// Which end of the list a page of jobs starts from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Oldest first (by id); pages go on with `after`.
    #[default]
    Asc,
    /// Newest first; pages go on with `before`.
    Desc,
}

/// Query of `GET /v1/jobs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs at this site.
    pub site: Option<String>,
    /// Only this tenant's jobs (operators and admins; a tenant sees its own only).
    pub tenant_id: Option<i64>,
    /// `asc` (oldest first, the default) or `desc` (newest first).
    pub order: Option<Order>,
    /// Only ids above this: the cursor of an oldest-first page (the `next` of
    /// the previous one).
    pub after: Option<i64>,
    /// Only ids below this: the cursor of a newest-first page (the `next` of the
    /// previous one). With `after`, the jobs between the two, in either order.
    pub before: Option<i64>,
    /// Page size (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// A page of jobs.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobPage {
    /// Jobs, in the order asked.
    pub jobs: Vec<JobDoc>,
    /// Cursor of the next page, if there may be one.
    pub next: Option<i64>,
}

/// The tail of a job's output.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Logs {
    /// Job id.
    pub job: i64,
    /// The last (up to 64 KiB) of its stdout and stderr, as its agent last sent
    /// it; empty when nothing came yet.
    pub tail: String,
    /// When it came, unix seconds.
    pub updated_at: Option<i64>,
    /// Whether the job has ended (no more output will come).
    pub complete: bool,
}

/// Why a job waits, as a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WaitCode {
    /// The scheduler has not weighed it yet.
    NotConsidered,
    /// Every allowed site is full over the whole planning horizon.
    NoCapacityInHorizon,
    /// The job's sites are all drained or unreachable.
    SitesUnavailable,
    /// Every allowed site is full over the horizon, and some allowed site that
    /// declares enough of what the job asks has less measured by its agents:
    /// the scheduler plans with the measured figure.
    MeasuredBelowDeclared,
    /// A site has room, but every start would take the job's tenant past one of
    /// its quotas (`suanwang quota show`).
    Quota,
}

impl WaitCode {
    /// One word for a table column (`suanwang jobs --state Pending`).
    pub fn word(self) -> &'static str {
        match self {
            WaitCode::NotConsidered => "new",
            WaitCode::NoCapacityInHorizon => "capacity",
            WaitCode::SitesUnavailable => "unavailable",
            WaitCode::MeasuredBelowDeclared => "measured",
            WaitCode::Quota => "quota",
        }
    }
}

/// Why a job waits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PendingReason {
    /// The reason's code.
    pub reason: WaitCode,
    /// The reason in words, when there is more to say (which site measures
    /// how much less than it declares).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The earliest start the scheduler's calendar allows anywhere within its
    /// horizon (7 days), unix seconds; absent: none within it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest_start: Option<i64>,
    /// The binding reason at each site the job could be sent to, by site id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<SiteWaitDoc>,
}

/// Why a job does not start at one site: the first rule that rules it out, in
/// the order the codes are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SiteWaitCode {
    /// Outside the job's allowed jurisdictions.
    Residency,
    /// Farther from the job's location than its latency target.
    Latency,
    /// Smaller than the job in some resource class, for good.
    TooSmall,
    /// The job alone would draw more than the site's power cap.
    PowerCap,
    /// Drained by an operator: takes no new work.
    Drained,
    /// No agent heartbeat: takes no new work.
    Unreachable,
    /// Not the job's home site, under a policy that keeps jobs home.
    Policy,
    /// Its earliest start there ends after the job's deadline.
    Deadline,
    /// Full for the job's run until `until` (absent: the whole horizon).
    Capacity,
    /// Room at the site, but the tenant's quota is booked up until `until`
    /// (absent: the whole horizon).
    Quota,
    /// Room from `until`: nothing at this site holds the job back.
    Open,
}

impl SiteWaitCode {
    /// The code as written on the wire.
    pub fn name(self) -> &'static str {
        match self {
            SiteWaitCode::Residency => "residency",
            SiteWaitCode::Latency => "latency",
            SiteWaitCode::TooSmall => "too-small",
            SiteWaitCode::PowerCap => "power-cap",
            SiteWaitCode::Drained => "drained",
            SiteWaitCode::Unreachable => "unreachable",
            SiteWaitCode::Policy => "policy",
            SiteWaitCode::Deadline => "deadline",
            SiteWaitCode::Capacity => "capacity",
            SiteWaitCode::Quota => "quota",
            SiteWaitCode::Open => "open",
        }
    }
}

/// Why a job does not start at one site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteWaitDoc {
    /// Site id.
    pub site: String,
    /// The binding reason.
    pub reason: SiteWaitCode,
    /// For `capacity`, `quota`, `deadline` and `open`: the earliest start
    /// there, unix seconds; absent: none within the horizon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// The reason in words.
    pub detail: String,
}

/// A spill-over choice passed over: none of its sites could start the job by
/// its deadline within its tenant's quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PassedOverDoc {
    /// The choice as written (`site:hami`, `provider:acme`, `anywhere`).
    pub choice: String,
    /// Why each of its sites did not take the job (a site given under an
    /// earlier choice is not repeated; empty: the choice names no site now).
    pub sites: Vec<SiteWaitDoc>,
}

/// A job's reason for waiting, with when the scheduler first gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WaitDoc {
    /// Since when, unix seconds.
    pub at: i64,
    /// The reason.
    #[serde(flatten)]
    pub reason: PendingReason,
}

/// One thing that happened to a job: a scheduler decision or an agent's note.
// A wire type, built once per decision and read once per answer: the size of
// its largest variant costs nothing worth a box in every pattern.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Decision {
    /// Placed on a site and a start time.
    Placed {
        /// The policy that placed it.
        policy: String,
        /// The objective's weights.
        weights: Weights,
        /// The candidates weighed, with their score terms.
        explanation: Explanation,
        /// For a job with a spill-over list (its own or its tenant's): the
        /// choice it was placed from, as written (`site:hami`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        spill_choice: Option<String>,
        /// The earlier choices of its list, passed over, in list order, each
        /// with why its sites did not take the job.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        passed_over: Vec<PassedOverDoc>,
        /// The jobs of lower classes it stopped to start in time (empty unless
        /// it preempted).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        preempts: Vec<PreemptionDoc>,
    },
    /// Stopped for a job of a higher class, and sent back to be placed again.
    Preempted {
        /// Who stopped it, where, and the work lost.
        preemption: PreemptionDoc,
        /// Why, in words.
        reason: String,
    },
    /// Still waiting.
    Pending {
        /// Why.
        reason: PendingReason,
    },
    /// Refused for good.
    Rejected {
        /// Why.
        reason: String,
    },
    /// Its lease was not renewed: its site stopped answering.
    Lost {
        /// What happened.
        reason: String,
    },
    /// Sent back to be placed again.
    Requeued {
        /// Why.
        reason: String,
    },
    /// An agent's message about the job.
    Report {
        /// The state it reported.
        state: JobState,
        /// Its site.
        site: String,
        /// The agent.
        agent: String,
        /// What it said.
        message: String,
    },
}

/// A decision with its time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionDoc {
    /// When, unix seconds.
    pub at: i64,
    /// What.
    #[serde(flatten)]
    pub decision: Decision,
}

/// Why a job is where it is (`GET /v1/jobs/{id}/explain`).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobExplanation {
    /// The job.
    pub job: JobDoc,
    /// The scheduler's decisions and the agents' notes, oldest first; a job the
    /// scheduler has not weighed yet has one `pending` entry, `not-considered`.
    pub decisions: Vec<DecisionDoc>,
    /// While the job is pending: why it waits now, site by site, and its
    /// earliest start; absent once it has left Pending or before the
    /// scheduler's first pass over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitDoc>,
    /// The changes of its reason for waiting, newest first: the last 50.
    #[serde(default)]
    pub wait_history: Vec<WaitDoc>,
    /// Preemptions of this job (it was stopped) and by it (it stopped others),
    /// oldest first.
    #[serde(default)]
    pub preemptions: Vec<PreemptionDoc>,
}

/// One job stopped for a job of a higher class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PreemptionDoc {
    /// The job stopped.
    pub job: i64,
    /// Its attempt that was stopped (0: placed, never started).
    pub attempt: i64,
    /// The job it was stopped for.
    pub by_job: i64,
    /// The site.
    pub site: String,
    /// When, unix seconds.
    pub at: i64,
    /// The stopped job's class.
    pub class: PriorityClass,
    /// The class of the job it was stopped for.
    pub by_class: PriorityClass,
    /// How long it had run: the work lost, seconds.
    pub ran_secs: i64,
    /// What that run cost at the site's compute price, CNY.
    pub lost_cny: f64,
}
