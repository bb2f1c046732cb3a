//! The scheduler loop: on a tick and whenever a job is submitted, read the pending
//! jobs and the booked ones from the store, run the pure scheduling core on that
//! snapshot (off the async workers), and write the decisions back — the placement
//! as a state change, the reasons as a stored decision.
//!
//! Live time maps onto the core's `SimTime` as seconds since the loop's epoch (the
//! day it started, UTC); the topology's series give prices and carbon, and the
//! forecast the core sees is the series itself (a forecast service is future work).

use std::sync::Arc;
use std::time::Duration;
use suanwang_api::{
    Decision, DurationValue, JobSubmission, PassedOverDoc, PendingReason, PreemptionDoc,
    SiteWaitCode, SiteWaitDoc, WaitCode,
};
use suanwang_model::{
    ClassMap, DataRef, Demand, Job, JobId, Jurisdiction, LatencyTarget, LocationId, PriorityClass,
    ResourceClass, SimDuration, SimTime, SiteId, SpillChoice,
};
use suanwang_sched::fairshare::{average_share, decay, entitlements};
use suanwang_sched::{
    Calendar, FairShare, Outcome, Policy, PolicyKind, Request, ShareNode, Snapshot, TenantShare,
};
use suanwang_sim::world::World;
use suanwang_store::{
    Actor, JobFilter, JobRecord, JobState, PreemptionFilter, PreemptionRecord, Store, Transition,
};
use suanwang_topology::{SeriesModel, Topology};
use tokio::sync::Notify;

/// Calendar slot, seconds.
const SLOT: i64 = 900;
/// Calendar horizon, slots (7 days).
const HORIZON: usize = 672;
/// Most pending jobs considered in one pass (the oldest first); the rest wait for
/// the next pass, so that a flood of submissions cannot make one pass unbounded.
pub const MAX_PER_PASS: u32 = 2_000;
/// With fair share and more pending jobs than a pass takes, how many of the
/// oldest are read in turns among their tenants (a deeper backlog is reached as
/// the oldest are placed; the read costs time in proportion to it).
const FAIR_READ_WINDOW: u32 = 10_000;
/// Decisions written per transaction.
const DECISION_CHUNK: usize = 64;
/// How long telemetry samples, and agents that stopped heartbeating, are kept,
/// network seconds.
pub const TELEMETRY_RETENTION: i64 = 24 * 3600;
/// Least time between two passes, so that a stream of submissions is handled in
/// batches rather than one pass per job (more after a slow pass: eight times
/// its length).
const MIN_GAP: Duration = Duration::from_millis(250);

/// How often the scheduler saves each tenant's decayed usage, network seconds
/// (a crash loses at most this much of it; usage only orders tenants).
const USAGE_SAVE_EVERY: i64 = 60;

/// How the scheduler shares the network among tenants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FairSharePolicy {
    /// Half-life of past usage, network seconds; `None`: no fair share (jobs
    /// are considered by priority and the policy's order alone).
    pub half_life_secs: Option<i64>,
}

impl Default for FairSharePolicy {
    /// Fair share with a 7-day half-life (as Slurm's default decay).
    fn default() -> Self {
        FairSharePolicy {
            half_life_secs: Some(7 * 86400),
        }
    }
}

/// When and how fast the scheduler may preempt (see [`suanwang_sched::preempt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreemptionPolicy {
    /// Seconds from the stop signal to the kill; the preempting job starts
    /// after it. Sent to the agent with each `preempt` verdict.
    pub grace_secs: i64,
    /// Most jobs stopped per site within `window_secs`; 0: no preemption.
    pub per_site: u32,
    /// The rate limit's window, seconds.
    pub window_secs: i64,
}

impl Default for PreemptionPolicy {
    /// A 30 s grace period (Slurm's default `KillWait`, Kubernetes' default
    /// termination grace), at most 10 jobs stopped per site in 10 minutes.
    fn default() -> Self {
        PreemptionPolicy {
            grace_secs: 30,
            per_site: 10,
            window_secs: 600,
        }
    }
}

impl PreemptionPolicy {
    /// No preemption.
    pub fn off() -> PreemptionPolicy {
        PreemptionPolicy {
            per_site: 0,
            ..PreemptionPolicy::default()
        }
    }

    /// Whether jobs may be preempted at all.
    pub fn is_on(&self) -> bool {
        self.per_site > 0
    }
}

/// Each tenant's usage, integrated over time with decay (dominant share ×
/// seconds), kept between passes and saved now and then.
#[derive(Debug, Default)]
struct UsageLedger {
    /// Whether the saved usage was read (at the first pass).
    loaded: bool,
    /// By tenant key.
    usage: std::collections::HashMap<u32, f64>,
    /// When `usage` was last brought up to date, unix seconds.
    as_of: Option<i64>,
    /// When it was last saved.
    saved_at: Option<i64>,
}

/// Wakes the loop early (after a submission).
#[derive(Debug, Default)]
pub struct Wakeup(Notify);

impl Wakeup {
    /// Asks for a pass soon.
    pub fn poke(&self) {
        self.0.notify_one();
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    /// Pending jobs read for this pass (at most [`MAX_PER_PASS`]).
    pub considered: usize,
    /// Jobs placed.
    pub placed: usize,
    /// Jobs refused for good.
    pub rejected: usize,
    /// Jobs still waiting.
    pub waiting: usize,
    /// Jobs whose lease expired (their site fell silent).
    pub lost: usize,
    /// Lost or stranded jobs sent back to be placed again.
    pub requeued: usize,
    /// Jobs stopped for a job of a higher class.
    pub preempted: usize,
    /// How long those had run, seconds (the work lost).
    pub preempted_secs: u64,
}

/// The core's key of a tenant (its quotas and its jobs' requests): the store's id.
fn tenant_key(tenant_id: i64) -> u32 {
    u32::try_from(tenant_id).unwrap_or(u32::MAX)
}

/// The stored quotas as the core's rows: class names the catalogue knows and
/// sites the topology has (a row naming neither binds nothing and is skipped).
fn quota_rows(world: &World, quotas: &[suanwang_store::QuotaRecord]) -> Vec<suanwang_sched::Quota> {
    quotas
        .iter()
        .filter_map(|q| {
            let class = suanwang_model::ResourceClass::parse(&q.class)?.index();
            let site = match &q.site {
                Some(id) => Some(world.sites.iter().position(|s| &s.id == id)?),
                None => None,
            };
            Some(suanwang_sched::Quota {
                tenant: tenant_key(q.tenant_id),
                class,
                site,
                cap: u32::try_from(q.units.max(0)).unwrap_or(u32::MAX),
            })
        })
        .collect()
}

/// A booked job as the calendar needs it.
#[derive(Debug, Clone, Copy)]
struct Booking {
    id: i64,
    tenant: u32,
    site: usize,
    need: suanwang_sched::Need,
    duration: SimDuration,
    start_at: i64,
    started_at: Option<i64>,
    state: JobState,
    /// Class rank and whether it may be preempted.
    class: u8,
    preemptible: bool,
    /// Its lease token (the attempt a preemption stops).
    token: i64,
}

/// The booked jobs (placed, dispatched, running), kept between passes: a pass
/// re-reads only the jobs marked changed since the last one, and everything
/// every [`FULL_RESYNC`] (so that a missed mark cannot leak capacity for long).
#[derive(Debug, Default)]
struct Bookings {
    jobs: std::collections::HashMap<i64, Booking>,
    synced: Option<std::time::Instant>,
}

/// How often the booked jobs are read again in full.
const FULL_RESYNC: Duration = Duration::from_secs(30);

/// Jobs changed outside the scheduler (reports, cancels, hand-outs), for the
/// next pass to read again.
#[derive(Debug, Default)]
pub struct Changed(std::sync::Mutex<std::collections::HashSet<i64>>);

impl Changed {
    /// Marks a job changed.
    pub fn mark(&self, job: i64) {
        if let Ok(mut set) = self.0.lock() {
            set.insert(job);
        }
    }

    fn take(&self) -> Vec<i64> {
        self.0
            .lock()
            .map(|mut set| set.drain().collect())
            .unwrap_or_default()
    }
}

/// The loop's fixed context.
pub struct Scheduler {
    epoch_unix: i64,
    world: Arc<World>,
    policy: Policy,
    lease_secs: i64,
    /// The topology to follow, and the generation the world was built from.
    follow: Option<(Arc<crate::TopologyCell>, u64)>,
    /// Told after a pass that placed work.
    placed: Option<Arc<tokio::sync::watch::Sender<u64>>>,
    /// Booked jobs kept between passes.
    bookings: std::sync::Mutex<Bookings>,
    /// Jobs changed elsewhere since the last pass, when the API marks them.
    changed: Option<Arc<Changed>>,
    /// Told of every job a pass changes, for live updates.
    feed: Option<Arc<crate::live::Feed>>,
    /// The API's single writer, which decisions go through when set.
    writer: Option<crate::commit::GroupCommit>,
    /// Agents' records parsed for their capacity, kept between passes.
    parsed_agents: crate::capacity::ParseCache,
    /// The capacity planned per site at the last pass, to notice a change.
    last_planned: std::sync::Mutex<Option<Vec<ClassMap<u32>>>>,
    /// How tenants share the network.
    fair: FairSharePolicy,
    /// Tenants' decayed usage.
    usage: std::sync::Mutex<UsageLedger>,
    /// When jobs may be preempted.
    preemption: PreemptionPolicy,
    /// Each tenant's priority class, read at each pass that places work.
    classes: std::sync::Mutex<std::collections::HashMap<i64, PriorityClass>>,
}

fn build_world(topology: Topology, epoch_unix: i64) -> World {
    let series = SeriesModel::new(&topology, epoch_unix, None, 0.0);
    // Actuals for the first 30 days are precomputed; later instants are
    // computed on demand.
    World::new(topology, series, SLOT, 30 * 86400)
}

impl Scheduler {
    /// A scheduler over `topology` whose epoch is the start of the current UTC day.
    pub fn new(topology: Topology, now_unix: i64) -> Scheduler {
        let epoch_unix = now_unix - now_unix.rem_euclid(86400);
        Scheduler {
            epoch_unix,
            world: Arc::new(build_world(topology, epoch_unix)),
            policy: Policy::new(PolicyKind::Balanced),
            lease_secs: 30,
            follow: None,
            placed: None,
            bookings: std::sync::Mutex::new(Bookings::default()),
            changed: None,
            feed: None,
            writer: None,
            parsed_agents: Default::default(),
            last_planned: Default::default(),
            fair: FairSharePolicy::default(),
            usage: Default::default(),
            preemption: PreemptionPolicy::default(),
            classes: Default::default(),
        }
    }

    /// Shares the network among tenants by `fair`.
    pub fn sharing(mut self, fair: FairSharePolicy) -> Scheduler {
        self.fair = fair;
        self
    }

    /// The fair-share standing of the tenants with work in this pass: their
    /// entitlements from the stored weights and groups, their usage decayed to
    /// now plus what their booked jobs hold. Brings the usage ledger up to date
    /// (what the running jobs held since the last pass) and saves it now and
    /// then.
    async fn fair_share<S: Store>(
        &self,
        store: &S,
        booked: &[Booking],
        requests: &[Request],
        now_unix: i64,
    ) -> suanwang_store::Result<FairShare> {
        let Some(half_life) = self.fair.half_life_secs else {
            return Ok(FairShare::off());
        };
        let half_life = half_life as f64;
        let shares = store.shares().await?;
        let mut totals = [0u64; suanwang_model::N_CLASSES];
        for site in &self.world.capacity {
            for (total, units) in totals.iter_mut().zip(&site.units) {
                *total += u64::from(*units);
            }
        }
        let scale = FairShare::new(Vec::new(), &totals);
        // What each tenant holds now (running) and has booked (also placed).
        let mut held: std::collections::HashMap<u32, f64> = Default::default();
        let mut claimed: std::collections::HashMap<u32, f64> = Default::default();
        for b in booked {
            let share = scale.dominant_share(&b.need);
            *claimed.entry(b.tenant).or_default() += share;
            if b.state != JobState::Placed {
                *held.entry(b.tenant).or_default() += share;
            }
        }
        let to_save = {
            let mut ledger = self.usage.lock().unwrap_or_else(|e| e.into_inner());
            if !ledger.loaded {
                ledger.loaded = true;
                for s in &shares {
                    if let Some((usage, as_of)) = s.usage {
                        // Nothing is known of the time the scheduler was down:
                        // the saved usage only decays over it.
                        let value = decay(usage, 0.0, (now_unix - as_of) as f64, half_life);
                        ledger.usage.insert(tenant_key(s.tenant_id), value);
                    }
                }
                ledger.as_of = Some(now_unix);
            }
            let elapsed = (now_unix - ledger.as_of.unwrap_or(now_unix)) as f64;
            if elapsed > 0.0 {
                let mut tenants: Vec<u32> = ledger.usage.keys().copied().collect();
                tenants.extend(held.keys().copied());
                for t in tenants {
                    let h = held.get(&t).copied().unwrap_or(0.0);
                    let entry = ledger.usage.entry(t).or_default();
                    *entry = decay(*entry, h, elapsed, half_life);
                }
                ledger.as_of = Some(now_unix);
            }
            let due = ledger
                .saved_at
                .is_none_or(|at| now_unix - at >= USAGE_SAVE_EVERY);
            due.then(|| {
                ledger.saved_at = Some(now_unix);
                ledger
                    .usage
                    .iter()
                    .filter(|(t, _)| **t != u32::MAX)
                    .map(|(t, u)| (i64::from(*t), *u))
                    .collect::<Vec<_>>()
            })
        };
        if let Some(rows) = to_save
            && !rows.is_empty()
        {
            store.save_usage(&rows, now_unix).await?;
        }
        let nodes: Vec<ShareNode> = shares
            .iter()
            .map(|s| ShareNode {
                tenant: tenant_key(s.tenant_id),
                parent: s.parent.as_ref().map(|(id, _)| tenant_key(*id)),
                weight: s.weight,
            })
            .collect();
        let mut active: Vec<u32> = requests.iter().map(|r| r.tenant).collect();
        active.sort_unstable();
        active.dedup();
        let ledger = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        let standing = entitlements(&nodes, &active)
            .into_iter()
            .map(|(tenant, entitled)| TenantShare {
                tenant,
                entitled,
                usage: average_share(ledger.usage.get(&tenant).copied().unwrap_or(0.0), half_life)
                    + claimed.get(&tenant).copied().unwrap_or(0.0),
            })
            .collect();
        Ok(FairShare::new(standing, &totals))
    }

    /// Reads the jobs marked in `changed` again at each pass (the API marks
    /// what it changes); without it, passes read every booked job.
    /// Preempts under `policy` ([`PreemptionPolicy::off`]: never).
    pub fn preempting(mut self, policy: PreemptionPolicy) -> Scheduler {
        self.preemption = policy;
        self
    }

    pub fn tracking(mut self, changed: Arc<Changed>) -> Scheduler {
        self.changed = Some(changed);
        self
    }

    /// Writes decisions through `writer` (the submits' group commit), so that
    /// the two never wait for each other's lock.
    pub fn writing_through(mut self, writer: crate::commit::GroupCommit) -> Scheduler {
        self.writer = Some(writer);
        self
    }

    /// Tells `feed` of every job a pass changes.
    pub fn feeding(mut self, feed: Arc<crate::live::Feed>) -> Scheduler {
        self.feed = Some(feed);
        self
    }

    fn note(&self, id: i64) {
        if let Some(feed) = &self.feed {
            feed.note(id);
        }
    }

    /// The booked jobs now: in full when due (or when nothing tracks
    /// changes), else the cached ones with the changed jobs read again.
    async fn booked<S: Store>(&self, store: &S) -> suanwang_store::Result<Vec<Booking>> {
        let full = self.changed.is_none()
            || self.bookings.lock().map_or(true, |b| {
                b.synced.is_none_or(|at| at.elapsed() >= FULL_RESYNC)
            });
        let changed = self.changed.as_ref().map(|c| c.take()).unwrap_or_default();
        let mut fresh = Vec::new();
        if full {
            for state in [JobState::Running, JobState::Dispatched, JobState::Placed] {
                fresh.extend(all_jobs(store, state).await?);
            }
        } else {
            for id in &changed {
                match store.job(*id).await {
                    Ok(job) => fresh.push(job),
                    Err(suanwang_store::StoreError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let mut bookings = self.bookings.lock().unwrap_or_else(|e| e.into_inner());
        if full {
            bookings.jobs.clear();
            bookings.synced = Some(std::time::Instant::now());
        }
        for job in fresh {
            self.book(&mut bookings, &job);
        }
        Ok(bookings.jobs.values().copied().collect())
    }

    /// Puts a job's current state into the cache (or takes it out).
    fn book(&self, bookings: &mut Bookings, job: &JobRecord) {
        let live = matches!(
            job.state,
            JobState::Placed | JobState::Dispatched | JobState::Running
        );
        let (Some(site), Some(start_at), true) = (&job.site, job.start_at, live) else {
            bookings.jobs.remove(&job.id);
            return;
        };
        let Some(site) = self.world.sites.iter().position(|s| &s.id == site) else {
            bookings.jobs.remove(&job.id);
            return;
        };
        let (need, duration, class, preemptible) = match bookings.jobs.get(&job.id) {
            Some(b) if b.site == site => (b.need, b.duration, b.class, b.preemptible),
            _ => match self.request(job, &SpillContext::default()) {
                Ok((r, _)) => (r.need, r.duration, r.class, r.preemptible),
                Err(_) => {
                    bookings.jobs.remove(&job.id);
                    return;
                }
            },
        };
        bookings.jobs.insert(
            job.id,
            Booking {
                id: job.id,
                tenant: tenant_key(job.tenant_id),
                site,
                need,
                duration,
                start_at,
                started_at: job.started_at,
                state: job.state,
                class,
                preemptible,
                token: job.lease_token,
            },
        );
    }

    fn unbook(&self, id: i64) {
        if let Ok(mut bookings) = self.bookings.lock() {
            bookings.jobs.remove(&id);
        }
    }

    /// Bumps `placed` after every pass that placed work, so that agents
    /// waiting in a lease call look again at once.
    pub fn notifying(mut self, placed: Arc<tokio::sync::watch::Sender<u64>>) -> Scheduler {
        self.placed = Some(placed);
        self
    }

    /// Follows the topology in `cell`: when an operator edits a site or link,
    /// the next pass runs on the edited topology.
    pub fn following(mut self, cell: Arc<crate::TopologyCell>) -> Scheduler {
        let (generation, topology) = cell.get();
        self.world = Arc::new(build_world((*topology).clone(), self.epoch_unix));
        self.follow = Some((cell, generation));
        self
    }

    fn refresh(&mut self) {
        let Some((cell, seen)) = &self.follow else {
            return;
        };
        let (generation, topology) = cell.get();
        if generation != *seen {
            self.world = Arc::new(build_world((*topology).clone(), self.epoch_unix));
            // Site indices may have moved: read every booked job again.
            if let Ok(mut bookings) = self.bookings.lock() {
                bookings.synced = None;
            }
            self.follow = Some((Arc::clone(cell), generation));
            tracing::info!(generation, "scheduler follows the edited topology");
        }
    }

    /// Sets how long (network seconds) a site may be silent before it counts as
    /// unreachable: the lease time.
    pub fn with_lease_secs(mut self, secs: i64) -> Scheduler {
        self.lease_secs = secs.max(1);
        self
    }

    /// Leases that ran out: their jobs became Lost; a restartable one goes back
    /// to Pending to be placed again, the others stay Lost.
    async fn recover_lost<S: Store>(
        &self,
        store: &S,
        now_unix: i64,
        report: &mut PassReport,
    ) -> suanwang_store::Result<()> {
        for job in store.expire_leases(&Actor::scheduler(), now_unix).await? {
            report.lost += 1;
            self.unbook(job.id);
            self.note(job.id);
            let restartable = serde_json::from_str::<JobSubmission>(&job.spec)
                .map(|s| s.restartable)
                .unwrap_or(false);
            if !restartable {
                continue;
            }
            let body = decision_body(&Decision::Requeued {
                reason: format!(
                    "lost at site {} (lease {} expired); restartable, so placed again",
                    job.site.as_deref().unwrap_or("?"),
                    job.lease_token
                ),
            });
            if store
                .requeue(&Actor::scheduler(), job.id, JobState::Lost, &body, now_unix)
                .await?
            {
                report.requeued += 1;
            }
        }
        Ok(())
    }

    fn sim_time(&self, unix: i64) -> SimTime {
        SimTime(unix - self.epoch_unix)
    }

    /// The core's view of a stored job (at the lower of the class it asked
    /// and its tenant's now), and its spill-over list.
    fn request(
        &self,
        record: &JobRecord,
        spill: &SpillContext,
    ) -> Result<(Request, Vec<SpillChoice>), String> {
        let class = self
            .classes
            .lock()
            .ok()
            .and_then(|c| c.get(&record.tenant_id).copied());
        request_with(&self.world, self.epoch_unix, record, spill, class)
    }

    /// One pass: place what can be placed now.
    pub async fn pass<S: Store>(
        &self,
        store: &S,
        now_unix: i64,
    ) -> suanwang_store::Result<PassReport> {
        let mut report = PassReport::default();
        self.recover_lost(store, now_unix, &mut report).await?;
        store.prune_samples(now_unix - TELEMETRY_RETENTION).await?;
        store.forget_agents(now_unix - TELEMETRY_RETENTION).await?;
        // Sites whose agents all fell silent, and drained sites, take no new
        // work; what was placed there and has not started goes back to be
        // placed again.
        let agents = store.agents().await?;
        let reach = crate::agent::reachability_of(&agents, now_unix, self.lease_secs);
        let drained = store.drained().await?;
        let why_down = |id: &str| {
            if drained.iter().any(|d| d.site == id) {
                Some("is drained")
            } else if reach.get(id) == Some(&false) {
                Some("is unreachable (no agent heartbeat)")
            } else {
                None
            }
        };
        // Why each site takes no new work, for the reasons a pending job gives.
        let down_code: Vec<Option<SiteWaitCode>> = self
            .world
            .sites
            .iter()
            .map(|s| {
                if drained.iter().any(|d| d.site == s.id) {
                    Some(SiteWaitCode::Drained)
                } else if reach.get(&s.id) == Some(&false) {
                    Some(SiteWaitCode::Unreachable)
                } else {
                    None
                }
            })
            .collect();
        let down: Vec<usize> = self
            .world
            .sites
            .iter()
            .enumerate()
            .filter(|(_, s)| why_down(&s.id).is_some())
            .map(|(i, _)| i)
            .collect();
        if !down.is_empty() {
            for record in all_jobs(store, JobState::Placed).await? {
                let Some(site) = record.site.as_deref() else {
                    continue;
                };
                let Some(why) = why_down(site) else {
                    continue;
                };
                let body = decision_body(&Decision::Requeued {
                    reason: format!("site {site} {why}; placed again"),
                });
                if store
                    .requeue(
                        &Actor::scheduler(),
                        record.id,
                        JobState::Placed,
                        &body,
                        now_unix,
                    )
                    .await?
                {
                    self.unbook(record.id);
                    self.note(record.id);
                    report.requeued += 1;
                }
            }
        }
        // With fair share, a deep backlog is read in turns among tenants, so
        // that a tenant's flood cannot keep the others out of every pass.
        let pending = if self.fair.half_life_secs.is_some() {
            store
                .pending_for_pass(MAX_PER_PASS, FAIR_READ_WINDOW)
                .await?
        } else {
            store
                .list_jobs(&JobFilter {
                    state: Some(JobState::Pending),
                    limit: MAX_PER_PASS,
                    ..Default::default()
                })
                .await?
        };
        report.considered = pending.len();
        // What each site can take: the smaller of declared and measured.
        let measured = crate::capacity::measure(
            &agents,
            now_unix,
            self.lease_secs,
            Some(&self.parsed_agents),
        );
        let planned: Vec<ClassMap<u32>> = self
            .world
            .topology
            .sites
            .iter()
            .map(|s| crate::capacity::planned(&s.capacity, measured.get(&s.id.0)).0)
            .collect();
        let capacity_changed = {
            let mut last = self.last_planned.lock().unwrap_or_else(|e| e.into_inner());
            let changed = last.as_ref() != Some(&planned);
            *last = Some(planned.clone());
            changed
        };
        // Nothing to place and no site's capacity moved: nothing to do. When a
        // site's capacity moved, the calendar is rebuilt once so that placed
        // jobs it no longer holds are placed again.
        if pending.is_empty() && !capacity_changed {
            return Ok(report);
        }
        // Each tenant's class caps its jobs' (read before any request is built).
        let classes = store.classes().await?;
        if let Ok(mut map) = self.classes.lock() {
            map.clear();
            map.extend(classes.into_iter().map(|(id, _, class)| (id, class)));
        }
        let shortfall: Vec<Option<String>> = self
            .world
            .topology
            .sites
            .iter()
            .zip(&planned)
            .map(|(s, p)| crate::capacity::shortfall_words(&s.capacity, p))
            .collect();
        // Jobs holding units now first, then placements by start: a placement
        // that a late-starting job has overrun no longer fits, and is placed
        // again rather than overbooking the site.
        let mut booked = self.booked(store).await?;
        booked.sort_by_key(|b| {
            (
                b.state != JobState::Running,
                b.state != JobState::Dispatched,
                b.start_at,
                b.id,
            )
        });
        let now = self.sim_time(now_unix);
        let mut calendar = Calendar::new(self.world.capacity.clone(), SLOT, HORIZON, now);
        // Quotas first, so that every booking below counts against them.
        calendar.set_quotas(quota_rows(&self.world, &store.quotas().await?));
        // The calendar keeps the declared capacity (a job larger than the
        // declaration is refused for good) and books away what the agents do
        // not measure over the whole window, first, so that jobs fit only into
        // what is measured and a job that fits the declaration waits.
        for (site, (declared, plan)) in self
            .world
            .topology
            .sites
            .iter()
            .map(|s| &s.capacity)
            .zip(&planned)
            .enumerate()
        {
            if shortfall[site].is_none() {
                continue;
            }
            let mut need = suanwang_sched::Need::default();
            for (class, units) in declared.iter() {
                need.units[class.index()] = units - plan.get(class);
            }
            if let Err(e) = calendar.reserve(site, &need, calendar.base(), calendar.end()) {
                tracing::error!(site, error = ?e, "cannot book away unmeasured capacity");
            }
        }
        let mut overrun = Vec::new();
        // What preemption may stop: booked jobs whose booking holds (a job
        // that overlaps another holds nothing the calendar could give back).
        let mut held: Vec<suanwang_sched::Held> = Vec::new();
        let mut held_meta: Vec<(i64, JobState, i64)> = Vec::new();
        for b in &booked {
            // A job holds its units from its start for its whole run time: the
            // actual start once it runs, else the planned one (or now, if that
            // has passed and the agent has not started it yet).
            let began = b.started_at.unwrap_or(b.start_at.max(now_unix));
            let start = self.sim_time(began).max(now);
            let end = self.sim_time(began) + b.duration;
            if end <= start {
                continue;
            }
            let from = calendar.slot_of(start.0);
            let to = calendar.slot_of(end.0 - 1) + 1;
            // Work placed or running counts against its tenant's quotas, even
            // past a quota lowered since it was placed.
            calendar.charge_quota(b.tenant, b.site, &b.need, from, to);
            let booked = calendar.reserve(b.site, &b.need, from, to);
            if booked.is_ok() && self.preemption.is_on() && b.preemptible {
                held.push(suanwang_sched::Held {
                    id: JobId(b.id as u64),
                    tenant: b.tenant,
                    site: b.site,
                    need: b.need,
                    class: b.class,
                    preemptible: b.preemptible,
                    started: b.started_at.map(|t| self.sim_time(t)),
                    from,
                    to,
                });
                held_meta.push((b.id, b.state, b.token));
            }
            if let Err(e) = booked {
                if b.state == JobState::Placed {
                    overrun.push((b.id, b.site, e));
                } else {
                    // Both hold units at the site now; its own engine queues.
                    tracing::debug!(job = b.id, error = ?e, "a running job overlaps another");
                }
            }
        }
        for (id, site, e) in overrun {
            let reason = match &shortfall[site] {
                Some(words) => format!(
                    "site {} measures less than it declares ({words}), and its slot no longer fits ({e:?}); placed again",
                    self.world.sites[site].id
                ),
                None => {
                    format!("its slot is taken by jobs that started late ({e:?}); placed again")
                }
            };
            let body = decision_body(&Decision::Requeued { reason });
            if store
                .requeue(&Actor::scheduler(), id, JobState::Placed, &body, now_unix)
                .await?
            {
                self.unbook(id);
                self.note(id);
                report.requeued += 1;
            }
        }
        let mut requests = Vec::new();
        let mut ids = Vec::new();
        let mut tokens = Vec::new();
        // Each job's spill-over list as written, for its explanation.
        let mut lists: Vec<Vec<SpillChoice>> = Vec::new();
        let spill = SpillContext::load(store).await?;
        for record in &pending {
            match self.request(record, &spill) {
                Ok((r, list)) => {
                    requests.push(r);
                    ids.push(record.id);
                    tokens.push(record.lease_token);
                    lists.push(list);
                }
                Err(reason) => {
                    reject(
                        store,
                        record.id,
                        &format!("cannot be scheduled: {reason}"),
                        now_unix,
                    )
                    .await?;
                    self.note(record.id);
                    report.rejected += 1;
                }
            }
        }
        let fair = self.fair_share(store, &booked, &requests, now_unix).await?;
        // Each site's rate limit: what it may still lose in this window.
        let budget: Vec<u32> = if held.is_empty() {
            Vec::new()
        } else {
            let recent = store
                .preemptions(&PreemptionFilter {
                    since: Some(now_unix - self.preemption.window_secs),
                    ..Default::default()
                })
                .await?;
            self.world
                .sites
                .iter()
                .map(|s| {
                    let spent = recent.iter().filter(|p| p.site == s.id).count() as u32;
                    self.preemption.per_site.saturating_sub(spent)
                })
                .collect()
        };
        let grace = SimDuration(self.preemption.grace_secs);
        let classes_of: Vec<u8> = requests.iter().map(|r| r.class).collect();
        let victims_meta = held_meta.clone();
        let world = Arc::clone(&self.world);
        let policy = self.policy;
        let job_ids = ids.clone();
        let epoch_unix = self.epoch_unix;
        let shapes: Vec<(suanwang_sched::Need, SimDuration, u32, u8, bool)> = requests
            .iter()
            .map(|r| (r.need, r.duration, r.tenant, r.class, r.preemptible))
            .collect();
        // The core is pure CPU work: keep it off the async workers.
        let decisions = tokio::task::spawn_blocking(move || {
            let forecast = world.forecast(now.0, calendar.base(), HORIZON, 0.0, 0);
            let mut sites = world.sites.clone();
            for &i in &down {
                sites[i].available = false;
            }
            let snapshot = Snapshot {
                now,
                sites: &sites,
                forecast: &forecast,
                network: &world.net,
            };
            let mut preempt = suanwang_sched::Preempt::new(&held, grace, budget);
            let decisions = suanwang_sched::plan_preempting(
                &snapshot,
                &mut calendar,
                &requests,
                &policy,
                &fair,
                &mut preempt,
            );
            // A site that declares enough for the job but measures less: the
            // job waits on the measurement, and its explanation says so.
            let short_site = |index: usize| {
                let request = &requests[index];
                shortfall.iter().enumerate().find_map(|(site, words)| {
                    let words = words.as_ref()?;
                    suanwang_sched::admits(
                        &sites[site],
                        calendar.capacity(site),
                        &world.net,
                        request,
                        site,
                    )
                    .then(|| {
                        format!(
                            "site {} measures less than it declares: {words}",
                            sites[site].id
                        )
                    })
                })
            };
            decisions
                .into_iter()
                .map(|d| {
                    let docs: Vec<PreemptionDoc> = d
                        .preempts
                        .iter()
                        .map(|v| {
                            let (id, _, token) = victims_meta[v.index];
                            PreemptionDoc {
                                job: id,
                                attempt: token,
                                by_job: job_ids[d.index],
                                site: world.sites[v.site].id.clone(),
                                at: epoch_unix + now.0,
                                class: class_of(v.class),
                                by_class: class_of(classes_of[d.index]),
                                ran_secs: v.ran.0,
                                lost_cny: v.lost_cny,
                            }
                        })
                        .collect();
                    let decision = match &d.outcome {
                        Outcome::Placed(p) => {
                            let list = &lists[d.index];
                            let choice = |tier: usize| {
                                list.get(tier).map_or_else(String::new, ToString::to_string)
                            };
                            Decision::Placed {
                                policy: policy.kind.name().to_string(),
                                weights: policy.weights,
                                explanation: suanwang_sim::report::explain(
                                    &world,
                                    job_ids[d.index] as usize,
                                    policy.kind.name(),
                                    p,
                                ),
                                spill_choice: p.tier.map(choice),
                                passed_over: p
                                    .passed_over
                                    .iter()
                                    .map(|o| PassedOverDoc {
                                        choice: choice(o.tier),
                                        sites: site_wait_docs(
                                            &sites,
                                            &down_code,
                                            policy.kind,
                                            epoch_unix,
                                            &o.sites,
                                        ),
                                    })
                                    .collect(),
                                preempts: docs.clone(),
                            }
                        }
                        Outcome::Pending(wait) => Decision::Pending {
                            reason: with_sites(
                                &sites,
                                &down_code,
                                policy.kind,
                                epoch_unix,
                                d.why.as_deref(),
                                match wait {
                                    suanwang_sched::Wait::NoCapacityInHorizon => {
                                        match short_site(d.index) {
                                            Some(detail) => PendingReason {
                                                reason: WaitCode::MeasuredBelowDeclared,
                                                detail: Some(detail),
                                                earliest_start: None,
                                                sites: Vec::new(),
                                            },
                                            None => PendingReason {
                                                reason: WaitCode::NoCapacityInHorizon,
                                                detail: None,
                                                earliest_start: None,
                                                sites: Vec::new(),
                                            },
                                        }
                                    }
                                    suanwang_sched::Wait::Quota => PendingReason {
                                        reason: WaitCode::Quota,
                                        detail: Some(
                                            "the tenant's quota is booked up over the horizon"
                                                .into(),
                                        ),
                                        earliest_start: None,
                                        sites: Vec::new(),
                                    },
                                    suanwang_sched::Wait::SitesUnavailable => PendingReason {
                                        reason: WaitCode::SitesUnavailable,
                                        detail: None,
                                        earliest_start: None,
                                        sites: Vec::new(),
                                    },
                                },
                            ),
                        },
                        Outcome::Rejected(reason) => Decision::Rejected {
                            reason: reason.to_string(),
                        },
                    };
                    let body = decision_body(&decision);
                    (d, body, docs)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| suanwang_store::StoreError::Corrupt {
            column: "scheduler",
            value: e.to_string(),
        })?;
        // Placements and refusals are written in one transaction (the store's
        // group commit for decisions); a job cancelled meanwhile is skipped.
        let mut batch = Vec::new();
        let mut waiting = Vec::new();
        for (decision, body, docs) in decisions {
            let id = ids[decision.index];
            match &decision.outcome {
                Outcome::Placed(p) => {
                    // The victims are stopped first: a crash before the
                    // placement is written leaves the job pending, with room.
                    for (doc, v) in docs.iter().zip(&decision.preempts) {
                        let (_, from, _) = held_meta[v.index];
                        self.stop_for(store, doc, from, now_unix, &mut report)
                            .await?;
                    }
                    let change = Transition {
                        from: JobState::Pending,
                        to: JobState::Placed,
                        site: Some(self.world.sites[p.site].id.clone()),
                        start_at: Some(p.start.0 + self.epoch_unix),
                        exit_code: None,
                    };
                    let (need, duration, tenant, class, preemptible) = shapes[decision.index];
                    let booking = Booking {
                        id,
                        tenant,
                        site: p.site,
                        need,
                        duration,
                        start_at: p.start.0 + self.epoch_unix,
                        started_at: None,
                        state: JobState::Placed,
                        class,
                        preemptible,
                        token: tokens[decision.index],
                    };
                    batch.push((id, change, body.clone(), Some(booking)));
                }
                Outcome::Rejected(_) => {
                    let change = Transition {
                        from: JobState::Pending,
                        to: JobState::Failed,
                        site: None,
                        start_at: None,
                        exit_code: None,
                    };
                    batch.push((id, change, body.clone(), None));
                }
                Outcome::Pending(_) => {
                    waiting.push((id, body));
                    report.waiting += 1;
                }
            }
        }
        self.record_waits(store, waiting, now_unix).await?;
        let items: Vec<(i64, Transition, String)> = batch
            .iter()
            .map(|(id, change, body, _)| (*id, change.clone(), body.clone()))
            .collect();
        // In chunks, so that submissions (group-committed between them) are not
        // held behind one long write.
        let mut applied = Vec::with_capacity(items.len());
        for chunk in items.chunks(DECISION_CHUNK) {
            applied.extend(match &self.writer {
                Some(writer) => writer.decide(chunk.to_vec(), now_unix).await?,
                None => {
                    store
                        .decide_many(&Actor::scheduler(), chunk, now_unix)
                        .await?
                }
            });
        }
        let mut bookings = self.bookings.lock().unwrap_or_else(|e| e.into_inner());
        for ((id, _, _, booking), done) in batch.iter().zip(applied) {
            if done {
                self.note(*id);
            }
            match (done, booking) {
                (true, Some(booking)) => {
                    bookings.jobs.insert(booking.id, *booking);
                    report.placed += 1;
                }
                (true, None) => report.rejected += 1,
                (false, _) => {}
            }
        }
        drop(bookings);
        if let Some(placed) = &self.placed
            && report.placed > 0
        {
            placed.send_modify(|generation| *generation += 1);
        }
        Ok(report)
    }

    /// Stops one job for a job of a higher class (`doc` says which, where and
    /// the work lost): requeued in the store with the preemption recorded, so
    /// that its agent is told `preempt` at its next heartbeat.
    async fn stop_for<S: Store>(
        &self,
        store: &S,
        doc: &PreemptionDoc,
        from: JobState,
        now_unix: i64,
        report: &mut PassReport,
    ) -> suanwang_store::Result<()> {
        let body = decision_body(&Decision::Preempted {
            preemption: doc.clone(),
            reason: format!(
                "stopped at site {} for job {} ({}), whose deadline no start without preemption meets; \
                 it had run {} s (about {:.2} CNY of work lost) and is placed again to run from the start",
                doc.site, doc.by_job, doc.by_class, doc.ran_secs, doc.lost_cny
            ),
        });
        let record = PreemptionRecord {
            job_id: doc.job,
            attempt: doc.attempt,
            by_job: doc.by_job,
            site: doc.site.clone(),
            at: doc.at,
            class: doc.class.name().to_string(),
            by_class: doc.by_class.name().to_string(),
            ran_secs: doc.ran_secs,
            lost_cny: doc.lost_cny,
        };
        if store
            .preempt(&Actor::scheduler(), &record, from, &body, now_unix)
            .await?
        {
            tracing::info!(
                job = doc.job,
                by = doc.by_job,
                site = %doc.site,
                ran_secs = doc.ran_secs,
                "preempted"
            );
            self.unbook(doc.job);
            self.note(doc.job);
            report.preempted += 1;
            report.preempted_secs += doc.ran_secs.max(0) as u64;
        }
        Ok(())
    }

    /// Records why each of `waiting` (job id, its `Decision::Pending` body)
    /// waits, only where the reason changed since the last pass that recorded
    /// one: its code, its earliest start to the slot or a site's reason. So a
    /// pass over 10,000 waiting jobs in an unchanged world writes nothing. A
    /// job's first reason is also its first stored decision.
    async fn record_waits<S: Store>(
        &self,
        store: &S,
        waiting: Vec<(i64, String)>,
        now_unix: i64,
    ) -> suanwang_store::Result<()> {
        if waiting.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = waiting.iter().map(|(id, _)| *id).collect();
        let known: std::collections::HashMap<i64, String> = store
            .waits(&ids)
            .await?
            .into_iter()
            .map(|w| (w.job_id, w.key))
            .collect();
        let mut changes = Vec::new();
        for (id, body) in waiting {
            let Ok(Decision::Pending { reason }) = serde_json::from_str::<Decision>(&body) else {
                continue;
            };
            let key = wait_signature(&reason);
            if known.get(&id) == Some(&key) {
                continue;
            }
            if !known.contains_key(&id) && store.decisions(id).await?.is_empty() {
                store.record_decision(id, &body, now_unix).await?;
            }
            let reason_body = serde_json::to_string(&reason).map_err(|e| {
                suanwang_store::StoreError::Corrupt {
                    column: "waits.body",
                    value: e.to_string(),
                }
            })?;
            changes.push(suanwang_store::WaitChange {
                job_id: id,
                code: wait_code_name(reason.reason),
                key,
                body: reason_body,
            });
            self.note(id);
        }
        for chunk in changes.chunks(DECISION_CHUNK * 8) {
            store.record_waits(chunk, now_unix).await?;
        }
        Ok(())
    }

    /// Runs passes on every `tick` and on every poke until `stop` resolves,
    /// counting them in `metrics`.
    #[allow(clippy::too_many_arguments)]
    pub async fn run<S: Store>(
        mut self,
        store: S,
        clock: crate::clock::Clock,
        wakeup: Arc<Wakeup>,
        metrics: Arc<crate::metrics::Metrics>,
        tick: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            let now = clock.now();
            self.refresh();
            let began = std::time::Instant::now();
            // One span per pass, so that what the pass logs is tied to it and its
            // counts and duration can be read together.
            let span = tracing::info_span!(
                "scheduler_pass",
                considered = tracing::field::Empty,
                placed = tracing::field::Empty,
                rejected = tracing::field::Empty,
                waiting = tracing::field::Empty,
                lost = tracing::field::Empty,
                requeued = tracing::field::Empty,
                duration_ms = tracing::field::Empty,
            );
            let result =
                tracing::Instrument::instrument(self.pass(&store, now), span.clone()).await;
            let last_pass = std::time::Instant::now();
            // Passes take at most about a ninth of the time: a slow pass (a big
            // backlog) spaces the next one out, so submissions keep their share.
            let gap = MIN_GAP.max((last_pass - began) * 8);
            metrics.passes.inc();
            metrics
                .pass_duration
                .observe((last_pass - began).as_secs_f64());
            if let Ok(r) = &result {
                metrics.placed.inc_by(r.placed as u64);
                metrics.rejected.inc_by(r.rejected as u64);
                metrics.lost.inc_by(r.lost as u64);
                metrics.preemptions.inc_by(r.preempted as u64);
                metrics.preempted_work_seconds.inc_by(r.preempted_secs);
                metrics
                    .queue_depth
                    .set((r.placed + r.rejected + r.waiting) as i64);
            }
            if let Ok(r) = &result {
                span.record("considered", r.considered);
                span.record("placed", r.placed);
                span.record("rejected", r.rejected);
                span.record("waiting", r.waiting);
                span.record("lost", r.lost);
                span.record("requeued", r.requeued);
            }
            span.record(
                "duration_ms",
                (last_pass - began).as_micros() as f64 / 1000.0,
            );
            span.in_scope(|| match result {
                // A pass that changed something is news; an idle one only when
                // debugging.
                Ok(r) if r.placed + r.rejected + r.lost + r.requeued + r.preempted > 0 => {
                    tracing::info!("scheduler pass")
                }
                Ok(_) => tracing::debug!("scheduler pass"),
                Err(e) => tracing::error!(error = %e, "scheduler pass failed"),
            });
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(tick) => {}
                _ = wakeup.0.notified() => {
                    // An idle loop answers at once; a busy one batches what
                    // arrives within MIN_GAP of its last pass.
                    let wait = gap.saturating_sub(last_pass.elapsed());
                    tokio::select! {
                        _ = &mut stop => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }
}

/// What a pass reads to resolve spill-over lists: each tenant's default (its
/// own provider's sites first) and each provider's sites.
#[derive(Debug, Default)]
pub(crate) struct SpillContext {
    /// Tenant id → the list its jobs that name none use (none: no list).
    defaults: std::collections::HashMap<i64, Vec<SpillChoice>>,
    /// Provider name → the sites it owns.
    providers: std::collections::BTreeMap<String, Vec<String>>,
}

impl SpillContext {
    async fn load<S: Store>(store: &S) -> suanwang_store::Result<SpillContext> {
        let mut context = SpillContext::default();
        for record in store.spills().await? {
            // Lists were checked when set; a choice that no longer reads is
            // left out rather than failing the tenant's jobs.
            let choices: Vec<SpillChoice> =
                record.spill.iter().filter_map(|c| c.parse().ok()).collect();
            let own = record.own_provider.as_ref().map(|(_, name)| name.as_str());
            let list = suanwang_model::tenant_spill(&choices, own);
            if !list.is_empty() {
                context.defaults.insert(record.tenant_id, list);
            }
        }
        // Read every pass: a job's own list may name any provider.
        context.providers = store
            .providers()
            .await?
            .into_iter()
            .map(|p| (p.name, p.sites))
            .collect();
        Ok(context)
    }
}

/// The core's view of a stored job, in `world` whose `SimTime(0)` is unix time
/// `epoch_unix`, with the job's own spill-over list only.
pub(crate) fn request(
    world: &World,
    epoch_unix: i64,
    record: &JobRecord,
    tenant_class: Option<PriorityClass>,
) -> Result<Request, String> {
    request_with(
        world,
        epoch_unix,
        record,
        &SpillContext::default(),
        tenant_class,
    )
    .map(|(r, _)| r)
}

/// [`request`], with the job's spill-over list (its own, else its tenant's
/// default from `spill`), which it also returns.
pub(crate) fn request_with(
    world: &World,
    epoch_unix: i64,
    record: &JobRecord,
    spill: &SpillContext,
    tenant_class: Option<PriorityClass>,
) -> Result<(Request, Vec<SpillChoice>), String> {
    let spec: JobSubmission =
        serde_json::from_str(&record.spec).map_err(|e| format!("stored spec: {e}"))?;
    let secs = |d: &DurationValue| match d {
        DurationValue::Seconds(s) => SimDuration(*s),
        DurationValue::Text(t) => SimDuration::parse(t).unwrap_or(SimDuration(1)),
    };
    let release = SimTime(record.created_at - epoch_unix);
    let origin = spec
        .origin
        .clone()
        .or_else(|| world.topology.regions.first().map(|r| r.id.0.clone()))
        .unwrap_or_else(|| world.topology.sites[0].id.0.clone());

    let mut demand = Vec::new();
    for d in &spec.demand {
        let class =
            ResourceClass::parse(&d.class).ok_or_else(|| format!("unknown class {}", d.class))?;
        demand.push(Demand {
            class,
            count: d.count as u32,
        });
    }
    let job = Job {
        id: JobId(record.id as u64),
        tenant: record.tenant_id.to_string(),
        demand,
        gang: spec.gang,
        duration: secs(&spec.duration),
        release,
        deadline: spec.deadline.as_ref().map(|d| release + secs(d)),
        origin: LocationId(origin.clone()),
        data: spec.data.as_ref().map(|d| DataRef {
            size_gib: d.size_gib,
            location: LocationId(d.location.clone()),
        }),
        latency_target: spec.latency_target.as_ref().map(|l| LatencyTarget {
            region: LocationId(l.region.clone()),
            max_ms: l.max_ms,
        }),
        residency: spec
            .residency
            .iter()
            .map(|j| Jurisdiction(j.clone()))
            .collect(),
        priority: spec.priority,
        // The lower of the class asked and the tenant's now (the tenant's
        // when none was asked).
        class: match (spec.class, tenant_class) {
            (Some(asked), Some(tenant)) => asked.min(tenant),
            (Some(asked), None) => asked,
            (None, tenant) => tenant.unwrap_or_default(),
        },
        delayable: spec.delayable,
        preemptible: spec.preemptible && spec.restartable,
        pinned_site: spec.site.clone().map(SiteId),
        spill: if spec.spill.is_empty() {
            spill
                .defaults
                .get(&record.tenant_id)
                .filter(|_| spec.site.is_none())
                .cloned()
                .unwrap_or_default()
        } else {
            spec.spill
                .iter()
                .map(|c| c.parse())
                .collect::<Result<_, _>>()?
        },
    };
    let mut request = world.request_with(&job, &spill.providers)?;
    // The core keys quotas by tenant: the store's tenant id.
    request.tenant = tenant_key(record.tenant_id);
    Ok((request, job.spill))
}

/// A decision as stored (JSON), as `GET /v1/jobs/{id}/explain` shows it.
/// The class of a core's class rank.
fn class_of(rank: u8) -> PriorityClass {
    PriorityClass::ALL
        .get(rank as usize)
        .copied()
        .unwrap_or_default()
}

fn decision_body(decision: &Decision) -> String {
    // Plain structs of strings and numbers: serialising them cannot fail.
    serde_json::to_string(decision).expect("a decision serialises")
}

async fn reject<S: Store>(
    store: &S,
    id: i64,
    reason: &str,
    now: i64,
) -> suanwang_store::Result<()> {
    let change = Transition {
        from: JobState::Pending,
        to: JobState::Failed,
        site: None,
        start_at: None,
        exit_code: None,
    };
    if store
        .transition(&Actor::scheduler(), id, &change, now)
        .await
        .is_ok()
    {
        let body = decision_body(&Decision::Rejected {
            reason: reason.to_string(),
        });
        store.record_decision(id, &body, now).await?;
    }
    Ok(())
}

pub(crate) async fn all_jobs<S: Store>(
    store: &S,
    state: JobState,
) -> suanwang_store::Result<Vec<JobRecord>> {
    all_matching(
        store,
        JobFilter {
            state: Some(state),
            ..Default::default()
        },
    )
    .await
}

/// Every job `filter` matches (its cursor and limit are set here), oldest first,
/// read in pages of 1,000.
pub(crate) async fn all_matching<S: Store>(
    store: &S,
    filter: JobFilter,
) -> suanwang_store::Result<Vec<JobRecord>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_jobs(&JobFilter {
                after_id: after,
                limit: 1000,
                newest_first: false,
                ..filter.clone()
            })
            .await?;
        let full = page.len() == 1000;
        after = page.last().map(|j| j.id);
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// A wait code as written on the wire (`no-capacity-in-horizon`).
fn wait_code_name(code: WaitCode) -> String {
    match serde_json::to_value(code) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{code:?}"),
    }
}

/// What a change of a job's reason is judged by: the code, the earliest start
/// to the slot, and each site's code with its time to the slot.
fn wait_signature(reason: &PendingReason) -> String {
    let slot = |t: Option<i64>| t.map_or("-".to_string(), |t| t.div_euclid(SLOT).to_string());
    let mut key = format!(
        "{}@{}",
        wait_code_name(reason.reason),
        slot(reason.earliest_start)
    );
    for site in &reason.sites {
        key.push_str(&format!(
            " {}:{}@{}",
            site.site,
            site.reason.name(),
            slot(site.until)
        ));
    }
    key
}

/// `reason` with the core's site-by-site account of the wait: each site's
/// binding reason by site id, in words, with times in unix seconds.
fn with_sites(
    sites: &[suanwang_sched::SiteView],
    down: &[Option<SiteWaitCode>],
    policy: PolicyKind,
    epoch_unix: i64,
    why: Option<&suanwang_sched::WhyPending>,
    mut reason: PendingReason,
) -> PendingReason {
    let Some(why) = why else {
        return reason;
    };
    reason.earliest_start = why.earliest.map(|t| t.0 + epoch_unix);
    reason.sites = site_wait_docs(sites, down, policy, epoch_unix, &why.sites);
    reason
}

/// The core's reasons per site as the API shows them: by site id, drained
/// told from unreachable by `down`, times in unix seconds.
fn site_wait_docs(
    sites: &[suanwang_sched::SiteView],
    down: &[Option<SiteWaitCode>],
    policy: PolicyKind,
    epoch_unix: i64,
    waits: &[suanwang_sched::SiteWait],
) -> Vec<SiteWaitDoc> {
    use suanwang_sched::SiteReason;
    let unix = |t: SimTime| t.0 + epoch_unix;
    let horizon_days = HORIZON as i64 * SLOT / 86_400;
    waits
        .iter()
        .map(|s| {
            let (code, until, detail) = match &s.reason {
                SiteReason::Residency => (
                    SiteWaitCode::Residency,
                    None,
                    "outside the job's allowed jurisdictions".to_string(),
                ),
                SiteReason::Latency { ms, max_ms } => (
                    SiteWaitCode::Latency,
                    None,
                    format!("{ms:.1} ms from the job's location, over its {max_ms} ms target"),
                ),
                SiteReason::TooSmall {
                    class,
                    asked,
                    offers,
                } => (
                    SiteWaitCode::TooSmall,
                    None,
                    format!("has {offers} {class}, the job asks {asked}"),
                ),
                SiteReason::PowerCap { watts, cap_watts } => (
                    SiteWaitCode::PowerCap,
                    None,
                    format!("the job draws {watts} W, over the site's {cap_watts} W power cap"),
                ),
                SiteReason::Unavailable => match down.get(s.site).copied().flatten() {
                    Some(SiteWaitCode::Unreachable) => (
                        SiteWaitCode::Unreachable,
                        None,
                        "unreachable: no agent heartbeat".to_string(),
                    ),
                    _ => (
                        SiteWaitCode::Drained,
                        None,
                        "drained: takes no new work".to_string(),
                    ),
                },
                SiteReason::Policy => (
                    SiteWaitCode::Policy,
                    None,
                    format!("the {} policy keeps the job at its home site", policy.name()),
                ),
                SiteReason::Deadline { until, .. } => (
                    SiteWaitCode::Deadline,
                    until.map(unix),
                    match until {
                        Some(_) => "its earliest start there ends after the deadline".to_string(),
                        None => format!(
                            "no start there within {horizon_days} days, so not by the deadline"
                        ),
                    },
                ),
                SiteReason::Capacity { until } => (
                    SiteWaitCode::Capacity,
                    until.map(unix),
                    match until {
                        Some(_) => "full for the job's run until then".to_string(),
                        None => format!("full for the job's run over the next {horizon_days} days"),
                    },
                ),
                SiteReason::Quota { until } => (
                    SiteWaitCode::Quota,
                    until.map(unix),
                    match until {
                        Some(_) => "the tenant's quota is booked up until then".to_string(),
                        None => format!(
                            "room, but the tenant's quota is booked up over the next {horizon_days} days"
                        ),
                    },
                ),
                SiteReason::Open { at } => (
                    SiteWaitCode::Open,
                    Some(unix(*at)),
                    "room for the job from then".to_string(),
                ),
            };
            SiteWaitDoc {
                site: sites[s.site].id.clone(),
                reason: code,
                until,
                detail,
            }
        })
        .collect()
}
