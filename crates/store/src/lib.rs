//! The durable store of suanwang: tenants, API tokens (as digests), jobs with their
//! state machine and idempotency keys, and scheduling decisions.
//!
//! One [`Store`] trait, two backends — [`SqliteStore`] (embedded, WAL, the default)
//! and [`PostgresStore`] — sharing the same SQL and checked by one shared test suite
//! ([`suite`]). The database is the truth: every state change is one statement or
//! one transaction, and transitions are validated in pure code ([`JobState`])
//! before they reach SQL.
//!
//! Architecture invariant: this crate owns every SQL statement of the project;
//! nothing else talks to the database. It knows nothing of HTTP or scheduling.

pub mod audit;
mod backend;
pub mod suite;

use serde::{Deserialize, Serialize};
use std::future::Future;

pub use audit::{Actor, AuditEntry, AuditFilter, Change, Subject, Verifier};
pub use backend::{PostgresStore, SqliteStore};
pub use suanwang_model::control::{HeldVerdict, JobState, Role};

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
}

/// A stored API token: its digest, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Hex digest of the token.
    pub digest: String,
    /// Tenant it acts for (tenant role).
    pub tenant_id: Option<i64>,
    /// Role.
    pub role: Role,
    /// Provider it acts for (provider role; for an agent's token, the provider
    /// that issued it, if one did).
    pub provider_id: Option<i64>,
    /// The one site it acts for (agent role).
    pub site: Option<String>,
}

/// A provider: a company that owns sites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// The sites it owns, sorted.
    pub sites: Vec<String>,
}

/// A stored token as an admin sees it: never the token, only its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The record.
    #[serde(flatten)]
    pub record: TokenRecord,
    /// Unix seconds.
    pub created_at: i64,
}

/// An operator's edit to the topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyEdit {
    /// `site` or `link`.
    pub kind: String,
    /// Site id, or `A--B` for a link.
    pub key: String,
    /// The site or link (JSON).
    pub body: String,
    /// Unix seconds.
    pub updated_at: i64,
}

/// A drained site: it takes no new work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drain {
    /// Site id.
    pub site: String,
    /// Since, unix seconds.
    pub since: i64,
    /// Why, as the operator said.
    pub reason: Option<String>,
}

/// One quota row: the most units of `class` that tenant `tenant_id`'s jobs may
/// hold at once, network-wide (`site: None`) or at one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaRecord {
    /// Tenant id.
    pub tenant_id: i64,
    /// Tenant name.
    pub tenant: String,
    /// The site it caps, or `None` for the whole network.
    pub site: Option<String>,
    /// Resource class name (as the catalogue spells it).
    pub class: String,
    /// Most units held at once.
    pub units: i64,
    /// Last set, unix seconds.
    pub updated_at: i64,
}

/// A tenant's place in the fair-share tree, and its usage as the scheduler
/// last saved it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareRecord {
    /// Tenant id.
    pub tenant_id: i64,
    /// Tenant name.
    pub tenant: String,
    /// Weight among its siblings (1 unless set).
    pub weight: f64,
    /// The tenant that groups it, if any: (id, name).
    pub parent: Option<(i64, String)>,
    /// Decayed usage (dominant share × seconds) and when, if saved.
    pub usage: Option<(f64, i64)>,
}

/// A job stopped for a job of a higher class (one per stopped attempt).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreemptionRecord {
    /// The job stopped.
    pub job_id: i64,
    /// Its attempt that was stopped (its lease token then; 0: placed, never
    /// handed out).
    pub attempt: i64,
    /// The job it was stopped for.
    pub by_job: i64,
    /// The site.
    pub site: String,
    /// When, unix seconds.
    pub at: i64,
    /// The stopped job's class.
    pub class: String,
    /// The class of the job it was stopped for.
    pub by_class: String,
    /// How long it had run: the work lost, seconds.
    pub ran_secs: i64,
    /// What that run cost at the site's compute price, CNY.
    pub lost_cny: f64,
}

/// Which preemptions to read.
#[derive(Debug, Clone, Default)]
pub struct PreemptionFilter {
    /// Those of or by this job.
    pub job: Option<i64>,
    /// Those at or after this time.
    pub since: Option<i64>,
}

/// A tenant's default spill-over list and its own provider, as an admin set
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpillRecord {
    /// Tenant id.
    pub tenant_id: i64,
    /// Tenant name.
    pub tenant: String,
    /// The choices, most wanted first (as written: `site:hami`); empty: none.
    pub spill: Vec<String>,
    /// The provider that names this tenant as its own: (id, name).
    pub own_provider: Option<(i64, String)>,
}

/// A telemetry sample from an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Site.
    pub site: String,
    /// Agent that sent it.
    pub agent: String,
    /// Unix seconds.
    pub at: i64,
    /// The sample (JSON object).
    pub body: String,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Id, assigned by the store.
    pub id: i64,
    /// Owning tenant.
    pub tenant_id: i64,
    /// The submitter's idempotency key.
    pub idempotency_key: Option<String>,
    /// The job as submitted (JSON).
    pub spec: String,
    /// Current state.
    pub state: JobState,
    /// Site, once placed.
    pub site: Option<String>,
    /// Planned or actual start, unix seconds.
    pub start_at: Option<i64>,
    /// Exit code, once finished.
    pub exit_code: Option<i32>,
    /// Incremented by every change (optimistic concurrency).
    pub version: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// Fencing token of the current (or last) lease: grows by one every time the
    /// job is handed to an agent; 0 before the first hand-out.
    pub lease_token: i64,
    /// The agent holding (or that last held) the lease.
    pub lease_agent: Option<String>,
    /// When the lease ends unless renewed by a heartbeat, unix seconds.
    pub lease_expires_at: Option<i64>,
    /// When it started running, unix seconds.
    pub started_at: Option<i64>,
    /// When it ended, unix seconds.
    pub finished_at: Option<i64>,
}

/// A registered site agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Id, given by the control plane at registration.
    pub id: String,
    /// The site it runs work for.
    pub site: String,
    /// What it said about itself at registration (JSON: capacity, executor, version).
    pub info: String,
    /// Unix seconds.
    pub registered_at: i64,
    /// Last heartbeat, unix seconds.
    pub last_seen: i64,
    /// Last telemetry sample (JSON), if any.
    pub telemetry: Option<String>,
}

/// A job to submit with [`Store::submit_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// Who submits it (recorded in the audit log).
    pub actor: Actor,
    /// Owning tenant.
    pub tenant_id: i64,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// The job (JSON).
    pub spec: String,
}

/// Which jobs to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only this state.
    pub state: Option<JobState>,
    /// Only this site.
    pub site: Option<String>,
    /// Only this tenant.
    pub tenant_id: Option<i64>,
    /// Only ids greater than this (the cursor of the previous oldest-first page).
    pub after_id: Option<i64>,
    /// Only jobs submitted at or after this, unix seconds.
    pub created_after: Option<i64>,
    /// Newest first (by id descending) rather than oldest first.
    pub newest_first: bool,
    /// Only ids smaller than this (the cursor of the previous newest-first
    /// page). With `after_id`, the jobs between the two, in either order.
    pub before_id: Option<i64>,
    /// At most this many (capped at 1,000).
    pub limit: u32,
}

/// A state change to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The state the caller saw.
    pub from: JobState,
    /// The state to move to.
    pub to: JobState,
    /// Set the site (None leaves it).
    pub site: Option<String>,
    /// Set the start (None leaves it).
    pub start_at: Option<i64>,
    /// Set the exit code (None leaves it).
    pub exit_code: Option<i32>,
}

/// A stored scheduling decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Job.
    pub job_id: i64,
    /// Unix seconds.
    pub at: i64,
    /// The decision with its reasons (JSON).
    pub body: String,
}

/// How many reasons a job's wait history keeps (the newest).
pub const WAIT_HISTORY: i64 = 50;

/// A pending job's current reason, as the scheduler last recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitRecord {
    /// Job.
    pub job_id: i64,
    /// The reason's one-word code.
    pub code: String,
    /// What a change is judged by (the scheduler's summary of the reason).
    pub key: String,
    /// Since when, unix seconds.
    pub at: i64,
    /// The reason in full (JSON).
    pub body: String,
}

/// A changed reason to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitChange {
    /// Job.
    pub job_id: i64,
    /// The reason's one-word code.
    pub code: String,
    /// What a change is judged by.
    pub key: String,
    /// The reason in full (JSON).
    pub body: String,
}

/// One entry of a job's wait history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitEntry {
    /// The entry's id (for paging).
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// The reason in full (JSON).
    pub body: String,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such job, tenant or token.
    #[error("{what} {id} not found")]
    NotFound {
        /// What was looked for.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A site asked for belongs to another provider.
    #[error("site {site} belongs to provider {owner}")]
    SiteTaken {
        /// The site.
        site: String,
        /// The provider that owns it.
        owner: String,
    },
    /// The transition is not allowed from the job's current state.
    #[error("job {job} is {actual}, cannot go from {from} to {to}")]
    Conflict {
        /// Job id.
        job: i64,
        /// The state it is in.
        actual: JobState,
        /// The state the caller expected.
        from: JobState,
        /// The state asked for.
        to: JobState,
    },
    /// A value read back from the database is not valid.
    #[error("corrupt value in column {column}: {value:?}")]
    Corrupt {
        /// Column.
        column: &'static str,
        /// Value.
        value: String,
    },
    /// A report came under a lease that is not the job's current one.
    #[error("job {job}: lease {token} is stale (the job is {state} under lease {current})")]
    StaleLease {
        /// Job id.
        job: i64,
        /// The token reported.
        token: i64,
        /// The job's current token.
        current: i64,
        /// The job's current state.
        state: JobState,
    },
    /// The database failed.
    #[error("database: {0}")]
    Database(#[source] sqlx::Error),
    /// A migration failed.
    #[error("migration: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether the database could not be reached or did not answer in time (the
    /// pool timed out, the connection broke): worth trying again later, unlike a
    /// refused statement.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            )
        )
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        StoreError::Database(e)
    }
}

/// Result of store operations.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The store. Every method is one transaction. Every method that changes state
/// takes the [`Actor`] making the change and appends what it did to the audit log
/// in the same transaction ([`audit`]).
pub trait Store: Send + Sync {
    /// The tenant named `name`, created if new.
    fn tenant(&self, name: &str, now: i64) -> impl Future<Output = Result<Tenant>> + Send;
    /// Stores a token digest with its role.
    fn insert_token(
        &self,
        actor: &Actor,
        token: &TokenRecord,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The token with this digest.
    fn token(&self, digest: &str) -> impl Future<Output = Result<Option<TokenRecord>>> + Send;
    /// Stores a new Pending job, or — when `idempotency_key` was used before by the
    /// same tenant — returns the job stored then. The flag says whether it is new.
    fn submit(
        &self,
        actor: &Actor,
        tenant_id: i64,
        idempotency_key: Option<&str>,
        spec: &str,
        now: i64,
    ) -> impl Future<Output = Result<(JobRecord, bool)>> + Send;
    /// [`Store::submit`] for many jobs in one transaction (group commit): one
    /// durable write for the whole batch. Results are in input order. The new
    /// jobs are audited as runs: one `job.submit` entry per run of consecutive
    /// ids by one actor for one tenant (docs/AUDIT.md).
    fn submit_many(
        &self,
        jobs: &[NewJob],
        now: i64,
    ) -> impl Future<Output = Result<Vec<(JobRecord, bool)>>> + Send;
    /// The job with this id.
    fn job(&self, id: i64) -> impl Future<Output = Result<JobRecord>> + Send;
    /// Jobs matching `filter`, by id.
    fn list_jobs(&self, filter: &JobFilter) -> impl Future<Output = Result<Vec<JobRecord>>> + Send;
    /// Up to `limit` (at most 10000) pending jobs for a scheduler pass, by id.
    /// When more are pending, the oldest `window` are taken in turns among
    /// their tenants (each one's oldest, then each one's second oldest, …), so
    /// that one tenant's flood does not keep the others' jobs out of the pass.
    fn pending_for_pass(
        &self,
        limit: u32,
        window: u32,
    ) -> impl Future<Output = Result<Vec<JobRecord>>> + Send;
    /// Applies `change` if the job is still in `change.from` and the transition is
    /// legal; returns the updated job.
    fn transition(
        &self,
        actor: &Actor,
        id: i64,
        change: &Transition,
        now: i64,
    ) -> impl Future<Output = Result<JobRecord>> + Send;
    /// Applies many decided changes in one transaction: for each (job, change,
    /// decision), the change if the job is still in `change.from` (and the
    /// transition is legal), and then its decision. Returns, in order, whether
    /// each change was applied; a job that moved meanwhile is skipped. The
    /// changes are audited as runs: one entry per run of consecutive job ids of
    /// one tenant with the same change (action, from, to, site).
    fn decide_many(
        &self,
        actor: &Actor,
        items: &[(i64, Transition, String)],
        now: i64,
    ) -> impl Future<Output = Result<Vec<bool>>> + Send;
    /// Stores a decision for a job.
    fn record_decision(
        &self,
        job_id: i64,
        body: &str,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The decisions stored for a job, oldest first.
    fn decisions(&self, job_id: i64) -> impl Future<Output = Result<Vec<DecisionRecord>>> + Send;
    /// The current reasons of those of `job_ids` that have one (any order).
    fn waits(&self, job_ids: &[i64]) -> impl Future<Output = Result<Vec<WaitRecord>>> + Send;
    /// Records changed reasons in one transaction: each replaces its job's
    /// current reason and is appended to its history, which keeps the last
    /// [`WAIT_HISTORY`] per job.
    fn record_waits(
        &self,
        changes: &[WaitChange],
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// A job's reasons, newest first: at most `limit`, older than the entry
    /// `before` when given (entries' `id`s page the list).
    fn wait_history(
        &self,
        job_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<WaitEntry>>> + Send;

    /// A site's telemetry samples at or after `since`, oldest first, at most
    /// `limit` (the newest ones when there are more).
    fn samples(
        &self,
        site: &str,
        since: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Sample>>> + Send;
    /// Forgets samples older than `before`; returns how many.
    fn prune_samples(&self, before: i64) -> impl Future<Output = Result<u64>> + Send;

    /// Stores the latest output tail of jobs, replacing what was there.
    fn put_logs(
        &self,
        tails: &[(i64, String)],
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The latest output tail of a job and when it came, if any.
    fn logs(&self, job: i64) -> impl Future<Output = Result<Option<(String, i64)>>> + Send;

    /// Every tenant, by id.
    fn tenants(&self) -> impl Future<Output = Result<Vec<Tenant>>> + Send;
    /// Every token's record, newest first.
    fn tokens(&self) -> impl Future<Output = Result<Vec<TokenInfo>>> + Send;
    /// Deletes the one token whose digest starts with `prefix` (at least 12 hex
    /// digits); `NotFound` if none, `Ambiguous`-as-NotFound is impossible at 12
    /// digits in practice but is refused as well. Returns the removed record.
    fn revoke_token(
        &self,
        actor: &Actor,
        prefix: &str,
        now: i64,
    ) -> impl Future<Output = Result<TokenRecord>> + Send;
    /// The provider named `name`, created (owning no site) if new.
    fn provider(
        &self,
        actor: &Actor,
        name: &str,
        now: i64,
    ) -> impl Future<Output = Result<Provider>> + Send;
    /// Makes `sites` the sites of provider `id`, replacing those it had; refused
    /// with `SiteTaken` (changing nothing) if another provider owns one of them.
    fn set_provider_sites(
        &self,
        actor: &Actor,
        id: i64,
        sites: &[String],
        now: i64,
    ) -> impl Future<Output = Result<Provider>> + Send;
    /// Every provider with its sites, by id.
    fn providers(&self) -> impl Future<Output = Result<Vec<Provider>>> + Send;
    /// The sites provider `id` owns, sorted.
    fn provider_sites(&self, id: i64) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// Stores (replacing) an operator's topology edit.
    fn put_topology_edit(
        &self,
        actor: &Actor,
        edit: &TopologyEdit,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Every topology edit, oldest first.
    fn topology_edits(&self) -> impl Future<Output = Result<Vec<TopologyEdit>>> + Send;
    /// Drains a site (`Some(reason)`, keeping the first `since`) or undrains it (`None`).
    fn set_drained(
        &self,
        actor: &Actor,
        site: &str,
        drain: Option<&str>,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The drained sites.
    fn drained(&self) -> impl Future<Output = Result<Vec<Drain>>> + Send;
    /// Replaces tenant `tenant_id`'s quotas for one scope (`site: None`: the
    /// whole network) with `caps` (class, units); empty `caps` clears the scope.
    /// Audited as `quota.set` in the same transaction.
    fn set_quota(
        &self,
        actor: &Actor,
        tenant_id: i64,
        site: Option<&str>,
        caps: &[(String, i64)],
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Every quota row, by tenant name, site (network-wide first) and class.
    fn quotas(&self) -> impl Future<Output = Result<Vec<QuotaRecord>>> + Send;
    /// Sets tenant `tenant_id`'s fair-share weight and the tenant that groups
    /// it (`None`: none). Audited as `share.set` in the same transaction.
    fn set_share(
        &self,
        actor: &Actor,
        tenant_id: i64,
        weight: f64,
        parent: Option<i64>,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Every tenant's fair-share weight, group and saved usage, by name.
    fn shares(&self) -> impl Future<Output = Result<Vec<ShareRecord>>> + Send;
    /// Sets tenant `tenant_id`'s priority class (the highest its jobs run at).
    /// Audited as `class.set` in the same transaction.
    fn set_class(
        &self,
        actor: &Actor,
        tenant_id: i64,
        class: suanwang_model::PriorityClass,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Every tenant's priority class: (tenant id, name, class), by name.
    fn classes(
        &self,
    ) -> impl Future<Output = Result<Vec<(i64, String, suanwang_model::PriorityClass)>>> + Send;
    /// Stops job `stop.job_id` for `stop.by_job`: in one transaction the job goes
    /// back to `Pending` (only while it is still placed, handed out or running
    /// under lease token `stop.attempt`; its next lease counts the next
    /// attempt; `from` is the state the scheduler saw, for the audit), the
    /// preemption is recorded (so that the agent's next heartbeat for that
    /// attempt is answered `preempt`), `body` is stored as its decision and the
    /// change audited (`job.preempt`). False when the job had moved meanwhile.
    fn preempt(
        &self,
        actor: &Actor,
        stop: &PreemptionRecord,
        from: JobState,
        body: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Preemptions matching `filter`, oldest first.
    fn preemptions(
        &self,
        filter: &PreemptionFilter,
    ) -> impl Future<Output = Result<Vec<PreemptionRecord>>> + Send;
    /// Sets tenant `tenant_id`'s default spill-over list (empty: none) and the
    /// provider that names it as its own (`None`: none), replacing both.
    /// Audited as `spill.set` in the same transaction.
    fn set_spill(
        &self,
        actor: &Actor,
        tenant_id: i64,
        spill: &[String],
        own_provider: Option<i64>,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Every tenant's default spill-over list and own provider, by name.
    fn spills(&self) -> impl Future<Output = Result<Vec<SpillRecord>>> + Send;
    /// Saves the scheduler's decayed usage per tenant (tenant id, usage) as of
    /// `as_of`. Derived bookkeeping, not a change anyone made: not audited.
    fn save_usage(
        &self,
        usage: &[(i64, f64)],
        as_of: i64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// How many jobs are in each state (states with none are absent).
    fn count_by_state(
        &self,
    ) -> impl Future<Output = Result<std::collections::BTreeMap<JobState, i64>>> + Send;

    /// Stores a new agent, or updates one with the same id.
    fn register_agent(
        &self,
        actor: &Actor,
        agent: &AgentRecord,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The agent with this id.
    fn agent(&self, id: &str) -> impl Future<Output = Result<Option<AgentRecord>>> + Send;
    /// Forgets agents last seen before `before` (an agent that restarts
    /// registers anew, so old ids pile up); returns how many.
    fn forget_agents(&self, before: i64) -> impl Future<Output = Result<u64>> + Send;
    /// Every agent, by site then id.
    fn agents(&self) -> impl Future<Output = Result<Vec<AgentRecord>>> + Send;
    /// Hands leases that a restarted agent found still alive in its engine to
    /// that agent, in one transaction: each `(job, token)` moves to `agent`, its
    /// lease renewed until `lease_until`, when the token is the job's current one,
    /// the job is placed at `site` and is Dispatched or Running. Returns the jobs
    /// handed over (audited `job.resume`); the others are no longer that lease's
    /// and their work must be stopped.
    fn resume_leases(
        &self,
        actor: &Actor,
        agent: &str,
        site: &str,
        held: &[(i64, i64)],
        lease_until: i64,
        now: i64,
    ) -> impl Future<Output = Result<Vec<i64>>> + Send;
    /// A heartbeat, in one transaction: records that the agent was seen (and its
    /// telemetry, as its latest and as a sample of its site's history), and for each `(job, token)` it holds, renews the lease until
    /// `lease_until` if the lease is still its own and the job live, or says why
    /// not. Verdicts are in input order. An unknown agent is `NotFound`.
    fn heartbeat(
        &self,
        agent: &str,
        telemetry: Option<&str>,
        held: &[(i64, i64)],
        lease_until: i64,
        now: i64,
    ) -> impl Future<Output = Result<Vec<HeldVerdict>>> + Send;
    /// Hands at most `max` placed jobs of `site` whose start has come to `agent`,
    /// earliest start first, in one transaction: each becomes Dispatched under a
    /// new lease (its token one more than before) that ends at `lease_until`.
    fn lease(
        &self,
        actor: &Actor,
        agent: &str,
        site: &str,
        max: u32,
        lease_until: i64,
        now: i64,
    ) -> impl Future<Output = Result<Vec<JobRecord>>> + Send;
    /// An agent's report on a job it holds: `to` is Running, Succeeded or Failed.
    /// Refused with `StaleLease` unless `(agent, token)` is the job's current
    /// lease; a report of the state the job is already in is answered with the job
    /// (a retried report is harmless); Dispatched may go straight to a final state
    /// (a job shorter than a heartbeat).
    // Each argument is one fact of the report; a struct for one call would only
    // rename them.
    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        actor: &Actor,
        agent: &str,
        job: i64,
        token: i64,
        to: JobState,
        exit_code: Option<i32>,
        now: i64,
    ) -> impl Future<Output = Result<JobRecord>> + Send;
    /// Every Dispatched or Running job whose lease ended before `now` becomes
    /// Lost, with a stored decision saying so; returns them.
    fn expire_leases(
        &self,
        actor: &Actor,
        now: i64,
    ) -> impl Future<Output = Result<Vec<JobRecord>>> + Send;
    /// Sends a Lost or Placed job back to Pending to be placed again (forgetting
    /// its site and start), with a stored decision `body`; false if the job was no
    /// longer in `from`.
    fn requeue(
        &self,
        actor: &Actor,
        job: i64,
        from: JobState,
        body: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Appends one entry to the audit log on its own (a refusal, which changes
    /// nothing else); returns it.
    fn append_audit(
        &self,
        change: Change,
        now: i64,
    ) -> impl Future<Output = Result<AuditEntry>> + Send;
    /// Audit entries matching `filter`, by seq. With a job, the entries about
    /// it alone and the runs that cover it.
    fn audit(&self, filter: &AuditFilter) -> impl Future<Output = Result<Vec<AuditEntry>>> + Send;
    /// The audit log's head: the last seq given and its hash (0 and
    /// [`audit::GENESIS`] when empty).
    fn audit_head(&self) -> impl Future<Output = Result<(i64, String)>> + Send;
    /// The seq of the entry whose hash is `hash`, if one is stored (for
    /// telling a reordered entry from an edited one; a scan, used once).
    fn audit_seq_of_hash(&self, hash: &str) -> impl Future<Output = Result<Option<i64>>> + Send;
}
