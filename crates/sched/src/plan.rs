//! `plan`: place pending jobs on a site and a start time, with reasons.
//!
//! Contract: pure and deterministic. The same snapshot, calendar, requests and
//! policy give the same decisions, bit for bit. Post-condition (asserted): every
//! placement was reserved in the calendar, so capacity is never exceeded; every
//! placement respects residency, latency targets and the job's release time.

use crate::calendar::{Calendar, NODE_DIM, Need, QuotaDims, SiteCapacity};
use crate::fairshare::FairShare;
use crate::policy::{Policy, PolicyKind};
use crate::preempt::{Preempt, Victim};
use crate::snapshot::{NetView, Request, SiteView, Snapshot, Terms};
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use suanwang_model::{Cny, JobId, KgCo2, Kwh, ResourceClass, SimDuration, SimTime};

/// One candidate (site, start) with its terms and objective value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Site index.
    pub site: usize,
    /// Start.
    pub start: SimTime,
    /// Score terms, on the forecast.
    pub terms: Terms,
    /// Objective value with the policy's weights.
    pub score: f64,
    /// The value the policy ranked by (the score for `balanced`).
    pub key: f64,
    /// Set on an alternative that `balanced`'s Pareto guard refused: it would cost
    /// more money or emit more carbon than running locally now.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guard_rejected: bool,
}

/// A placed job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// Site index.
    pub site: usize,
    /// Start.
    pub start: SimTime,
    /// End.
    pub end: SimTime,
    /// The chosen candidate.
    pub chosen: Candidate,
    /// The best candidates not chosen (best per other site, and the earliest start
    /// at the chosen site when the policy waited), best first.
    pub alternatives: Vec<Candidate>,
    /// Sites skipped because a lower bound on their score was already worse than
    /// the best candidate: (site, bound).
    pub pruned: Vec<(usize, f64)>,
    /// For a job with a spill-over list ([`Request::spill`]): the tier it was
    /// placed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<usize>,
    /// The tiers before it, passed over, each with why its sites did not take
    /// the job, in list order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passed_over: Vec<PassedOver>,
}

/// A tier of a job's spill-over list that was passed over: none of its sites
/// could start the job by its deadline within its tenant's quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassedOver {
    /// Index of the tier in [`Request::spill`].
    pub tier: usize,
    /// The binding reason at each of its sites, in the tier's order; a site
    /// already given under an earlier tier is not repeated (a tier whose
    /// sites are all gone from the topology has none).
    pub sites: Vec<SiteWait>,
}

/// Why a job cannot run anywhere, ever, under its rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Rejection {
    /// No site in the allowed jurisdictions.
    Residency,
    /// No allowed site meets the latency target.
    Latency {
        /// Best latency among allowed sites, ms.
        best_ms: f64,
        /// The target, ms.
        max_ms: f64,
    },
    /// No allowed site has enough units of a class.
    Capacity {
        /// The class.
        class: ResourceClass,
        /// Units asked.
        asked: u32,
        /// Most any allowed site offers.
        largest: u32,
    },
    /// A gang: no allowed site has as many nodes, each holding the job's share
    /// of every class.
    Nodes {
        /// Nodes asked.
        asked: u32,
        /// Most such nodes any allowed site has (0: none declares nodes that fit).
        largest: u32,
    },
    /// The pinned site does not exist.
    UnknownPinnedSite,
    /// No site of the job's spill-over list exists.
    Unlisted,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Residency => write!(f, "no site in the allowed jurisdictions"),
            Rejection::Latency { best_ms, max_ms } => {
                write!(
                    f,
                    "no allowed site within {max_ms} ms (best {best_ms:.1} ms)"
                )
            }
            Rejection::Capacity {
                class,
                asked,
                largest,
            } => {
                write!(
                    f,
                    "asks {asked} {class} but the largest allowed site offers {largest}"
                )
            }
            Rejection::Nodes { asked, largest: 0 } => write!(
                f,
                "a gang of {asked} nodes, but no allowed site declares nodes that hold one node's share"
            ),
            Rejection::Nodes { asked, largest } => write!(
                f,
                "a gang of {asked} nodes, but the largest allowed site has {largest} nodes that hold one node's share"
            ),
            Rejection::UnknownPinnedSite => write!(f, "pinned site is not in the topology"),
            Rejection::Unlisted => write!(f, "no site of the spill-over list is in the topology"),
        }
    }
}

/// Why a job waits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Wait {
    /// Every allowed site is full over the whole horizon.
    NoCapacityInHorizon,
    /// The job's sites are all drained or unreachable.
    SitesUnavailable,
    /// Some allowed site has room within the horizon, but every such start would
    /// take the job's tenant past one of its quotas.
    Quota,
}

/// Why a waiting job does not start, site by site, and the earliest it could
/// start anywhere: computed only for jobs that end a pass pending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhyPending {
    /// The earliest start the calendar allows at any candidate site within the
    /// horizon (capacity and quota both), or none.
    pub earliest: Option<SimTime>,
    /// The binding reason at each site the job could be sent to (a site ruled
    /// out by the job's pin or left out of its spill-over list is left out),
    /// in site order; with a spill-over list, tier by tier, each site once.
    pub sites: Vec<SiteWait>,
}

/// The binding reason at one site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteWait {
    /// Site index.
    pub site: usize,
    /// Why the job does not start there.
    #[serde(flatten)]
    pub reason: SiteReason,
}

/// Why a job does not start at a site: the first rule, in this order, that
/// rules the site out (open to more reasons, such as fair share).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum SiteReason {
    /// Outside the job's allowed jurisdictions.
    Residency,
    /// Farther from the job's location than its latency target.
    Latency {
        /// Latency to the site, ms.
        ms: f64,
        /// The target, ms.
        max_ms: f64,
    },
    /// Smaller than the job for good in one class.
    TooSmall {
        /// The class.
        class: ResourceClass,
        /// Units asked.
        asked: u32,
        /// Units the site has.
        offers: u32,
    },
    /// The job alone would draw more than the site's power cap.
    PowerCap {
        /// Facility watts the job draws there.
        watts: u32,
        /// The cap, W.
        cap_watts: u32,
    },
    /// Drained or unreachable: it takes no new work.
    Unavailable,
    /// Not the job's home site, under a policy that does not move jobs.
    Policy,
    /// The site could run the job, but its earliest start there (or, with none
    /// in the horizon, the horizon's end) ends after the job's deadline.
    Deadline {
        /// The deadline.
        deadline: SimTime,
        /// The earliest start there within the horizon, if any.
        until: Option<SimTime>,
    },
    /// Full for the job's run until `until` (none: over the whole horizon).
    Capacity {
        /// The earliest start there, when within the horizon.
        until: Option<SimTime>,
    },
    /// Room at the site, but the tenant's quota is booked up until `until`
    /// (none: over the whole horizon).
    Quota {
        /// The earliest start there, when within the horizon.
        until: Option<SimTime>,
    },
    /// Room for the job from `at`: nothing at this site holds it back.
    Open {
        /// The earliest start there.
        at: SimTime,
    },
}

/// What happened to one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Placed on a site and start.
    Placed(Placement),
    /// Still pending, for this reason.
    Pending(Wait),
    /// Refused for good.
    Rejected(Rejection),
}

/// The decision for one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The job.
    pub job: JobId,
    /// Index of the job in the `pending` slice.
    pub index: usize,
    /// What was decided.
    pub outcome: Outcome,
    /// For a job left pending: why, site by site (computed only then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<Box<WhyPending>>,
    /// For a job placed by preemption: the jobs it stops (see
    /// [`crate::preempt`]); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preempts: Vec<Victim>,
}

/// Places `pending` jobs under `policy`, booking them in `calendar`, which must
/// cover the snapshot's forecast window. Returns one decision per job, in the order
/// the policy considered them: by priority, then as the policy orders jobs.
pub fn plan(
    snapshot: &Snapshot,
    calendar: &mut Calendar,
    pending: &[Request],
    policy: &Policy,
) -> Vec<Decision> {
    plan_fair(snapshot, calendar, pending, policy, &FairShare::off())
}

/// [`plan`] with weighted fair share: within one priority, the next job
/// considered is the next (in the policy's order) of the tenant whose usage is
/// furthest below its entitlement ([`FairShare`]); each job placed adds its
/// dominant share to its tenant's usage for the rest of the pass. With
/// [`FairShare::off`] this is [`plan`].
pub fn plan_fair(
    snapshot: &Snapshot,
    calendar: &mut Calendar,
    pending: &[Request],
    policy: &Policy,
    fair: &FairShare,
) -> Vec<Decision> {
    plan_preempting(
        snapshot,
        calendar,
        pending,
        policy,
        fair,
        &mut Preempt::off(),
    )
}

/// [`plan_fair`] with preemption: a job with a deadline that no start meets
/// (left pending for capacity, or placed late) may stop preemptible work of
/// lower classes in `preempt` to start in time ([`crate::preempt`] has the
/// rules). Its decision is then a placement that lists the jobs it stops in
/// [`Decision::preempts`]; their bookings are given back from its start on, and
/// `preempt` remembers them (a job is stopped at most once per pass) and
/// spends each site's budget. With [`Preempt::off`] this is [`plan_fair`].
pub fn plan_preempting(
    snapshot: &Snapshot,
    calendar: &mut Calendar,
    pending: &[Request],
    policy: &Policy,
    fair: &FairShare,
    preempt: &mut Preempt,
) -> Vec<Decision> {
    let mut order: Vec<usize> = (0..pending.len()).collect();
    if policy.kind == PolicyKind::Balanced {
        order.sort_by_key(|&i| {
            let r = &pending[i];
            (
                std::cmp::Reverse(r.class),
                -r.priority,
                r.deadline.map_or(i64::MAX, |d| d.0),
                r.release,
                r.id,
            )
        });
    } else {
        order.sort_by_key(|&i| {
            let r = &pending[i];
            (std::cmp::Reverse(r.class), -r.priority, r.release, r.id)
        });
    }
    let mut planner = Planner {
        snapshot,
        policy,
        sites: Vec::with_capacity(snapshot.sites.len()),
        evals: Vec::with_capacity(snapshot.sites.len()),
        order: Vec::with_capacity(snapshot.sites.len()),
        listed: Vec::new(),
    };
    let mut decide = |index: usize, calendar: &mut Calendar| {
        let request = &pending[index];
        let mut outcome = planner.place(calendar, request);
        let mut preempts = Vec::new();
        if !preempt.is_off()
            && crate::preempt::wants(request, &outcome)
            && let Some((placement, victims)) =
                planner.preempt(calendar, request, &outcome, preempt)
        {
            outcome = Outcome::Placed(placement);
            preempts = victims;
        }
        // Only on the pending path: placements pay nothing for it.
        let why = matches!(outcome, Outcome::Pending(_))
            .then(|| Box::new(planner.why_pending(calendar, request)));
        Decision {
            job: request.id,
            index,
            outcome,
            why,
            preempts,
        }
    };
    if fair.is_off() {
        return order
            .into_iter()
            .map(|index| decide(index, calendar))
            .collect();
    }
    let mut decisions = Vec::with_capacity(pending.len());
    let mut usage: std::collections::HashMap<u32, (f64, f64)> = std::collections::HashMap::new();
    let mut queues: Vec<(u32, std::collections::VecDeque<usize>)> = Vec::new();
    let mut queue_of: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    let mut rest = order.as_slice();
    while let Some(&first) = rest.first() {
        // One class and priority at a time: higher ones are served first,
        // whatever their tenants' usage.
        let level_of = |i: usize| (pending[i].class, pending[i].priority);
        let level_key = level_of(first);
        let run = rest
            .iter()
            .position(|&i| level_of(i) != level_key)
            .unwrap_or(rest.len());
        let (level, tail) = rest.split_at(run);
        rest = tail;
        queues.clear();
        queue_of.clear();
        for &i in level {
            let tenant = pending[i].tenant;
            let q = *queue_of.entry(tenant).or_insert_with(|| {
                queues.push((tenant, std::collections::VecDeque::new()));
                queues.len() - 1
            });
            queues[q].1.push_back(i);
        }
        let mut heap = std::collections::BinaryHeap::with_capacity(queues.len());
        for (q, (tenant, _)) in queues.iter().enumerate() {
            let standing = *usage
                .entry(*tenant)
                .or_insert_with(|| fair.standing(*tenant));
            heap.push(std::cmp::Reverse(Turn::new(standing, *tenant, q)));
        }
        while let Some(std::cmp::Reverse(turn)) = heap.pop() {
            let (tenant, queue) = &mut queues[turn.queue];
            let Some(index) = queue.pop_front() else {
                continue;
            };
            let decision = decide(index, calendar);
            let standing = usage
                .get_mut(tenant)
                .expect("every queued tenant has a standing");
            if matches!(decision.outcome, Outcome::Placed(_)) {
                standing.1 += fair.dominant_share(&pending[index].need);
            }
            decisions.push(decision);
            if !queue.is_empty() {
                heap.push(std::cmp::Reverse(Turn::new(*standing, *tenant, turn.queue)));
            }
        }
    }
    decisions
}

/// A tenant's turn: served by usage ÷ entitlement, then by tenant.
#[derive(Debug, Clone, Copy)]
struct Turn {
    key: f64,
    tenant: u32,
    queue: usize,
}

impl Turn {
    fn new((entitled, usage): (f64, f64), tenant: u32, queue: usize) -> Turn {
        Turn {
            key: usage / entitled,
            tenant,
            queue,
        }
    }
}

impl PartialEq for Turn {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Turn {}
impl PartialOrd for Turn {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Turn {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key
            .total_cmp(&other.key)
            .then(self.tenant.cmp(&other.tenant))
    }
}

/// Why `request` would wait under `policy` given `calendar`: the binding reason at
/// each site (see [`SiteReason`]) and its earliest start anywhere. [`plan`] fills
/// [`Decision::why`] with this for the jobs it leaves pending.
pub fn why_pending(
    snapshot: &Snapshot,
    calendar: &Calendar,
    request: &Request,
    policy: &Policy,
) -> WhyPending {
    Planner {
        snapshot,
        policy,
        sites: Vec::new(),
        evals: Vec::new(),
        order: Vec::new(),
        listed: Vec::new(),
    }
    .why_pending(calendar, request)
}

struct Planner<'a> {
    snapshot: &'a Snapshot<'a>,
    policy: &'a Policy,
    sites: Vec<usize>,
    // Buffers reused from job to job.
    evals: Vec<SiteEval>,
    order: Vec<(f64, usize)>,
    /// For a job with a spill-over list: whether each site is in some tier
    /// (empty for a job without one).
    listed: Vec<bool>,
}

/// The non-zero classes of a need, in class order, then for a gang its whole
/// nodes (`(NODE_DIM, nodes)`).
struct Dims {
    dims: [(usize, u32); suanwang_model::N_CLASSES + 1],
    len: usize,
    /// `len`, plus one for a gang's nodes.
    fit_len: usize,
}

impl Dims {
    fn of(need: &Need) -> Dims {
        let mut out = Dims {
            dims: [(0, 0); suanwang_model::N_CLASSES + 1],
            len: 0,
            fit_len: 0,
        };
        for (class, units) in need.classes() {
            out.dims[out.len] = (class, units);
            out.len += 1;
        }
        out.fit_len = out.len;
        if need.nodes > 0 {
            out.dims[out.len] = (NODE_DIM, need.nodes);
            out.fit_len += 1;
        }
        out
    }
    /// The classes only.
    fn as_slice(&self) -> &[(usize, u32)] {
        &self.dims[..self.len]
    }
    /// What the calendar checks: the classes, and a gang's whole nodes.
    fn fit(&self) -> &[(usize, u32)] {
        &self.dims[..self.fit_len]
    }
}

/// The policy's best candidate among some sites, before it is booked.
struct Found {
    /// Whether it ends after the job's deadline.
    late: bool,
    chosen: Candidate,
    /// Facility watts the job draws at the chosen site (see [`SiteEval::watts`]).
    watts: u32,
    /// The best candidate at each site weighed (for the explanation).
    best_per_site: Vec<(bool, Candidate)>,
    /// The earliest start at the chosen site, when the policy waited.
    earliest_at_chosen: Option<Candidate>,
    pruned: Vec<(usize, f64)>,
}

/// Everything about one (job, site) pair that does not depend on the start.
struct SiteEval {
    site: usize,
    /// Facility watts the job draws here (only where the site has a power cap):
    /// the job's units with these watts are its need at this site.
    watts: u32,
    compute_cny: f64,
    compute_per_hour: f64,
    kw: f64,
    transfer: (i64, f64, f64),
    earliest: i64,
}

impl Planner<'_> {
    fn place(&mut self, calendar: &mut Calendar, request: &Request) -> Outcome {
        let dims = Dims::of(&request.need);
        self.list(request);
        if let Some(outcome) = self.allowed_sites(calendar, request, &dims) {
            return outcome;
        }
        if !request.spill.is_empty() {
            return self.place_spill(calendar, request, &dims);
        }
        match self.search(calendar, request, &dims) {
            Ok(found) => self.commit(calendar, request, found, None, Vec::new()),
            Err(wait) => Outcome::Pending(wait),
        }
    }

    /// Marks the sites of a job's spill-over list in `self.listed` (left empty
    /// for a job without one).
    fn list(&mut self, request: &Request) {
        self.listed.clear();
        if request.spill.is_empty() {
            return;
        }
        self.listed.resize(self.snapshot.sites.len(), false);
        for &site in request.spill.iter().flatten() {
            if let Some(listed) = self.listed.get_mut(site) {
                *listed = true;
            }
        }
    }

    /// Whether `site` is out of the job's reach by its pin or its spill-over
    /// list (see [`Planner::list`]).
    fn excluded(&self, request: &Request, site: usize) -> bool {
        request.pinned.is_some_and(|p| p != site) || (!self.listed.is_empty() && !self.listed[site])
    }

    /// A job with a spill-over list: the policy's best candidate within the
    /// first tier that has one on time, else the least late in any tier, else
    /// pending. `self.sites` holds the allowed sites of every tier.
    fn place_spill(&mut self, calendar: &mut Calendar, request: &Request, dims: &Dims) -> Outcome {
        let allowed = std::mem::take(&mut self.sites);
        let mut late: Option<(usize, Found)> = None;
        let mut quota_bound = false;
        let mut chosen = None;
        for (tier, sites) in request.spill.iter().enumerate() {
            self.sites.clear();
            self.sites
                .extend(allowed.iter().copied().filter(|s| sites.contains(s)));
            if self.sites.is_empty() {
                continue;
            }
            match self.search(calendar, request, dims) {
                Ok(found) if !found.late => {
                    chosen = Some((tier, found));
                    break;
                }
                Ok(found) => {
                    if late.as_ref().is_none_or(|(_, best)| {
                        rank(true, &found.chosen) < rank(true, &best.chosen)
                    }) {
                        late = Some((tier, found));
                    }
                }
                Err(wait) => quota_bound |= wait == Wait::Quota,
            }
        }
        // No tier meets the deadline: the least late, wherever it is.
        let Some((tier, found)) = chosen.or(late) else {
            self.sites = allowed;
            return Outcome::Pending(if quota_bound {
                Wait::Quota
            } else {
                Wait::NoCapacityInHorizon
            });
        };
        // Why each earlier tier was passed over, from the calendar as it was
        // weighed (before this job is booked).
        let mut seen = vec![false; self.snapshot.sites.len()];
        let passed_over = request.spill[..tier]
            .iter()
            .enumerate()
            .map(|(i, sites)| PassedOver {
                tier: i,
                sites: self
                    .reasons_among(calendar, request, Some(sites), &mut seen)
                    .sites,
            })
            .collect();
        self.sites = allowed;
        self.commit(calendar, request, found, Some(tier), passed_over)
    }

    /// The policy's best candidate among `self.sites` (the job's allowed sites,
    /// or a tier of them), without booking it; or why there is none.
    fn search(
        &mut self,
        calendar: &Calendar,
        request: &Request,
        dims: &Dims,
    ) -> Result<Found, Wait> {
        let kind = self.policy.kind;
        if !kind.moves_in_space() {
            let home = self.home_site(request);
            self.sites.retain(|s| *s == home);
        }
        let mut evals = std::mem::take(&mut self.evals);
        evals.clear();
        evals.extend(
            self.sites
                .iter()
                .map(|&site| self.site_eval(calendar, request, dims, site)),
        );
        let guard = if kind == PolicyKind::Balanced && self.policy.pareto_guard {
            self.reference(calendar, request, dims, &evals)
        } else {
            None
        };
        let weights = &self.policy.weights;
        let forecast = self.snapshot.forecast;
        let bound = |e: &SiteEval| -> f64 {
            let rate = forecast.min_rate(e.site, weights.energy, weights.carbon_cny_per_kg());
            weights.price * e.compute_cny
                + weights.transfer * e.transfer.1
                + e.kw * request.duration.0 as f64 / 3600.0 * rate
                + e.compute_per_hour * weights.wait * (e.earliest - request.release.0).max(0) as f64
                    / 3600.0
        };
        // Balanced visits sites in order of a lower bound on their score, so that
        // it can stop at the first whose bound is no better than the best found.
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        if kind == PolicyKind::Balanced {
            order.extend(evals.iter().enumerate().map(|(i, e)| (bound(e), i)));
        } else {
            order.extend((0..evals.len()).map(|i| (f64::NEG_INFINITY, i)));
        }
        // Usually only the first few sites are scanned: order those fully and the
        // rest only if the search gets that far.
        let by_bound = |a: &(f64, usize), b: &(f64, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
        const HEAD: usize = 8;
        if order.len() > HEAD {
            order.select_nth_unstable_by(HEAD, by_bound);
            order[..HEAD].sort_unstable_by(by_bound);
        } else {
            order.sort_unstable_by(by_bound);
        }
        let mut tail_sorted = order.len() <= HEAD;
        let mut best_per_site: Vec<(bool, Candidate)> = Vec::with_capacity(evals.len());
        let mut pruned = Vec::new();
        let mut earliest_at_chosen: Option<Candidate> = None;
        let mut best: Option<(bool, Candidate)> = None;
        let mut n = 0;
        while n < order.len() {
            if n == HEAD && !tail_sorted {
                order[HEAD..].sort_unstable_by(by_bound);
                tail_sorted = true;
            }
            let (lb, i) = order[n];
            n += 1;
            let eval = &evals[i];
            if let Some((false, b)) = &best
                && lb >= b.score
            {
                // Sites come in bound order: every later one is pruned too. Keep the
                // most competitive few for the explanation.
                let keep = self.policy.explain_top;
                if keep == 0 {
                    break;
                }
                if !tail_sorted && n - 1 + keep > HEAD {
                    order[HEAD..].sort_unstable_by(by_bound);
                }
                pruned.extend(
                    order[n - 1..]
                        .iter()
                        .take(keep)
                        .map(|&(lb, i)| (evals[i].site, lb)),
                );
                break;
            }
            // The best on-time key so far bounds the scan at the next site.
            let bound = match &best {
                Some((false, b)) => Some(b.key),
                _ => None,
            };
            let Some((late, candidate, earliest)) =
                self.best_at_site(calendar, request, dims, eval, guard, bound)
            else {
                continue;
            };
            best_per_site.push((late, candidate));
            if candidate.guard_rejected {
                continue;
            }
            let better = match &best {
                None => true,
                Some((best_late, b)) => rank(late, &candidate) < rank(*best_late, b),
            };
            if better {
                best = Some((late, candidate));
                earliest_at_chosen = earliest;
            }
        }
        let Some((late, chosen)) = best else {
            // Refused only by the tenant's quota: some site has room without it.
            let quota_bound = !calendar.quotas().is_empty()
                && evals.iter().any(|e| {
                    let mut fits = false;
                    feasible_starts_dims(
                        calendar,
                        dims.fit(),
                        e.watts,
                        &[],
                        e.site,
                        e.earliest,
                        calendar.end() * calendar.slot_secs(),
                        request.duration.0,
                        |_, _, _| {
                            fits = true;
                            ControlFlow::Break(())
                        },
                    );
                    fits
                });
            self.evals = evals;
            self.order = order;
            return Err(if quota_bound {
                Wait::Quota
            } else {
                Wait::NoCapacityInHorizon
            });
        };
        let watts = evals
            .iter()
            .find(|e| e.site == chosen.site)
            .expect("chosen site was evaluated")
            .watts;
        self.evals = evals;
        self.order = order;
        Ok(Found {
            late,
            chosen,
            watts,
            best_per_site,
            earliest_at_chosen,
            pruned,
        })
    }

    /// Books `found` in the calendar and makes it a placement.
    fn commit(
        &self,
        calendar: &mut Calendar,
        request: &Request,
        found: Found,
        tier: Option<usize>,
        passed_over: Vec<PassedOver>,
    ) -> Outcome {
        let Found {
            chosen,
            watts,
            best_per_site,
            earliest_at_chosen,
            pruned,
            ..
        } = found;
        let end = chosen.start + request.duration;
        let slot = calendar.slot_secs();
        let from = chosen.start.0.div_euclid(slot);
        let to = (end.0 - 1).max(chosen.start.0).div_euclid(slot) + 1;
        let need = Need {
            watts,
            ..request.need
        };
        if let Err(err) = calendar.reserve_for(request.tenant, chosen.site, &need, from, to) {
            panic!("post-condition: chosen candidate must fit the calendar: {err:?}");
        }
        let mut alternatives: Vec<(bool, Candidate)> = best_per_site
            .into_iter()
            .filter(|(_, c)| c.site != chosen.site)
            .collect();
        alternatives.sort_by(|(la, a), (lb, b)| {
            rank(*la, a)
                .partial_cmp(&rank(*lb, b))
                .expect("finite ranks")
        });
        let mut alternatives: Vec<Candidate> = alternatives
            .into_iter()
            .take(self.policy.explain_top)
            .map(|(_, c)| c)
            .collect();
        if let Some(early) = earliest_at_chosen
            && early.start != chosen.start
            && self.policy.explain_top > 0
        {
            alternatives.insert(0, early);
        }
        Outcome::Placed(Placement {
            site: chosen.site,
            start: chosen.start,
            end,
            chosen,
            alternatives,
            pruned,
            tier,
            passed_over,
        })
    }

    /// See [`why_pending`].
    fn why_pending(&mut self, calendar: &Calendar, request: &Request) -> WhyPending {
        if request.spill.is_empty() {
            return self.reasons_among(calendar, request, None, &mut []);
        }
        // Tier by tier, as the job's sites are weighed.
        let mut seen = vec![false; self.snapshot.sites.len()];
        let mut why = WhyPending {
            earliest: None,
            sites: Vec::new(),
        };
        for tier in &request.spill {
            let part = self.reasons_among(calendar, request, Some(tier), &mut seen);
            why.earliest = match (why.earliest, part.earliest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            why.sites.extend(part.sites);
        }
        why
    }

    /// [`why_pending`] over the sites `among` (one tier of a spill-over list,
    /// in its order, skipping and then marking those `seen`), or over every
    /// site when `None`.
    fn reasons_among(
        &mut self,
        calendar: &Calendar,
        request: &Request,
        among: Option<&[usize]>,
        seen: &mut [bool],
    ) -> WhyPending {
        let snapshot = self.snapshot;
        let net = snapshot.network;
        let dims = Dims::of(&request.need);
        let n_sites = snapshot.sites.len();
        let candidates: Vec<usize> = match among {
            Some(sites) => sites
                .iter()
                .copied()
                .filter(|&site| site < n_sites && !std::mem::replace(&mut seen[site], true))
                .collect(),
            None => (0..n_sites).collect(),
        };
        // The sites the policy would weigh: admitted, available and, for a
        // policy that does not move jobs, the home site alone (of the tier).
        let mut weighed: Vec<usize> = among
            .unwrap_or(&candidates)
            .iter()
            .copied()
            .filter(|&site| {
                site < n_sites
                    && snapshot.sites[site].available
                    && admits_dims(
                        &snapshot.sites[site],
                        calendar.capacity(site),
                        net,
                        request,
                        site,
                        &dims,
                    )
            })
            .collect();
        if !self.policy.kind.moves_in_space() && !weighed.is_empty() {
            std::mem::swap(&mut self.sites, &mut weighed);
            let home = self.home_site(request);
            std::mem::swap(&mut self.sites, &mut weighed);
            weighed.retain(|&s| s == home);
        }
        let horizon_end = calendar.end() * calendar.slot_secs();
        let mut sites = Vec::new();
        let mut earliest: Option<SimTime> = None;
        for site in candidates {
            let view = &snapshot.sites[site];
            if request.pinned.is_some_and(|p| p != site) {
                continue;
            }
            let capacity = calendar.capacity(site);
            let reason =
                if request.residency != 0 && request.residency & (1 << view.jurisdiction) == 0 {
                    SiteReason::Residency
                } else if let Some((location, max_ms)) = request.latency
                    && net.latency(location, site) > max_ms
                {
                    SiteReason::Latency {
                        ms: net.latency(location, site),
                        max_ms,
                    }
                } else if let Some(&(class, asked)) = dims
                    .as_slice()
                    .iter()
                    .find(|&&(c, u)| capacity.units[c] < u)
                {
                    SiteReason::TooSmall {
                        class: ResourceClass::from_index(class).unwrap_or(ResourceClass::Cpu),
                        asked,
                        offers: capacity.units[class],
                    }
                } else if let Some(cap_watts) = capacity.watts
                    && !admits_dims(view, capacity, net, request, site, &dims)
                {
                    let eval = self.site_eval(calendar, request, &dims, site);
                    SiteReason::PowerCap {
                        watts: eval.watts,
                        cap_watts,
                    }
                } else if !view.available {
                    SiteReason::Unavailable
                } else if !weighed.contains(&site) {
                    SiteReason::Policy
                } else {
                    let eval = self.site_eval(calendar, request, &dims, site);
                    let first = |quota: &[(usize, u32)]| {
                        let mut first = None;
                        feasible_starts_dims(
                            calendar,
                            dims.as_slice(),
                            eval.watts,
                            quota,
                            site,
                            eval.earliest,
                            horizon_end,
                            request.duration.0,
                            |s, _, _| {
                                first = Some(SimTime(s));
                                ControlFlow::Break(())
                            },
                        );
                        first
                    };
                    let quota = calendar.quota_dims(request.tenant, site, &request.need);
                    let with_quota = first(quota.as_slice());
                    // The scan without the quota only where a quota applies.
                    let room = if quota.as_slice().is_empty() {
                        with_quota
                    } else {
                        first(&[])
                    };
                    if let Some(t) = with_quota {
                        earliest = Some(earliest.map_or(t, |e| e.min(t)));
                    }
                    let end = with_quota.map_or(horizon_end, |t| t.0) + request.duration.0;
                    match (request.deadline, room, with_quota) {
                        (Some(deadline), _, _) if end > deadline.0 => SiteReason::Deadline {
                            deadline,
                            until: with_quota,
                        },
                        (_, None, _) => SiteReason::Capacity { until: None },
                        (_, Some(_), None) => SiteReason::Quota { until: None },
                        (_, Some(r), Some(t)) if t.0 == eval.earliest => {
                            debug_assert_eq!(r, t);
                            SiteReason::Open { at: t }
                        }
                        // Capacity frees at the very start the quota allows.
                        (_, Some(r), Some(t)) if r == t => SiteReason::Capacity { until: Some(t) },
                        (_, Some(_), Some(t)) => SiteReason::Quota { until: Some(t) },
                    }
                };
            sites.push(SiteWait { site, reason });
        }
        WhyPending { earliest, sites }
    }

    /// Fills `self.sites` with the sites the job may use; when there are none,
    /// returns the outcome saying why.
    fn allowed_sites(
        &mut self,
        calendar: &Calendar,
        request: &Request,
        dims: &Dims,
    ) -> Option<Outcome> {
        let snapshot = self.snapshot;
        let net = snapshot.network;
        self.sites.clear();
        let mut any_jurisdiction = false;
        let mut best_latency = f64::INFINITY;
        let mut unavailable = false;
        if let Some(pin) = request.pinned
            && pin >= snapshot.sites.len()
        {
            return Some(Outcome::Rejected(Rejection::UnknownPinnedSite));
        }
        if !request.spill.is_empty() && !self.listed.contains(&true) {
            return Some(Outcome::Rejected(Rejection::Unlisted));
        }
        for (site, view) in snapshot.sites.iter().enumerate() {
            if self.excluded(request, site) {
                continue;
            }
            if request.residency != 0 && request.residency & (1 << view.jurisdiction) == 0 {
                continue;
            }
            any_jurisdiction = true;
            if let Some((location, _)) = request.latency {
                best_latency = best_latency.min(net.latency(location, site));
            }
            let capacity = calendar.capacity(site);
            if admits_dims(view, capacity, net, request, site, dims)
                && (request.need.nodes == 0 || holds_gang(capacity, &request.need))
            {
                if view.available {
                    self.sites.push(site);
                } else {
                    unavailable = true;
                }
            }
        }
        if !self.sites.is_empty() {
            return None;
        }
        if !any_jurisdiction {
            return Some(Outcome::Rejected(Rejection::Residency));
        }
        if let Some((_, max_ms)) = request.latency
            && best_latency > max_ms
        {
            return Some(Outcome::Rejected(Rejection::Latency {
                best_ms: best_latency,
                max_ms,
            }));
        }
        if unavailable {
            return Some(Outcome::Pending(Wait::SitesUnavailable));
        }
        if request.need.nodes > 0 {
            let per_node = per_node(&request.need);
            let largest = snapshot
                .sites
                .iter()
                .enumerate()
                .filter(|(site, view)| {
                    !self.excluded(request, *site)
                        && (request.residency == 0
                            || request.residency & (1 << view.jurisdiction) != 0)
                })
                .filter_map(|(site, _)| calendar.capacity(site).nodes)
                .filter(|shape| shape.fits(&per_node))
                .map(|shape| shape.count)
                .max()
                .unwrap_or(0);
            if largest < request.need.nodes {
                return Some(Outcome::Rejected(Rejection::Nodes {
                    asked: request.need.nodes,
                    largest,
                }));
            }
        }
        // Only now, on the way to a refusal, the largest offer per class among
        // the sites the job may use (the same sites as above).
        let mut largest = [0u32; suanwang_model::N_CLASSES];
        for (site, view) in snapshot.sites.iter().enumerate() {
            if self.excluded(request, site)
                || (request.residency != 0 && request.residency & (1 << view.jurisdiction) == 0)
            {
                continue;
            }
            for &(class, _) in dims.as_slice() {
                largest[class] = largest[class].max(calendar.capacity(site).units[class]);
            }
        }
        let (class, asked) = dims
            .as_slice()
            .iter()
            .copied()
            .find(|(c, u)| largest[*c] < *u)
            .unwrap_or((0, 0));
        Some(Outcome::Rejected(Rejection::Capacity {
            class: ResourceClass::from_index(class).unwrap_or(ResourceClass::Cpu),
            asked,
            largest: largest[class],
        }))
    }

    /// The home site of the job's origin if allowed, else the allowed site nearest
    /// to the origin.
    /// Tries to start `request` in time by stopping lower-class preemptible
    /// work (see [`crate::preempt`]). On success the job is booked, its
    /// victims' bookings are given back from its start on, and `preempt`
    /// records them; on failure the calendar is as it was.
    fn preempt(
        &mut self,
        calendar: &mut Calendar,
        request: &Request,
        outcome: &Outcome,
        preempt: &mut Preempt,
    ) -> Option<(Placement, Vec<Victim>)> {
        let deadline = request.deadline?.0;
        let dims = Dims::of(&request.need);
        let slot = calendar.slot_secs();
        // A late placement is given back first: the job moves to the room
        // preemption makes, or stays where it was.
        let late = match outcome {
            Outcome::Placed(p) => {
                let eval = self.site_eval(calendar, request, &dims, p.site);
                let need = Need {
                    watts: eval.watts,
                    ..request.need
                };
                let from = p.start.0.div_euclid(slot);
                let to = (p.end.0 - 1).max(p.start.0).div_euclid(slot) + 1;
                calendar.release(Some(request.tenant), p.site, &need, from, to);
                Some((p.site, need, from, to))
            }
            _ => None,
        };
        let found = self.preemption_plan(calendar, request, &dims, deadline, preempt);
        let undo_late = |calendar: &mut Calendar| {
            if let Some((site, need, from, to)) = late {
                let booked = calendar.reserve_for(request.tenant, site, &need, from, to);
                debug_assert!(booked.is_ok(), "a late placement given back fits again");
            }
        };
        let Some(plan) = found else {
            undo_late(calendar);
            return None;
        };
        for &j in &plan.victims {
            crate::preempt::release(calendar, &preempt.held[j], plan.from);
        }
        if calendar
            .reserve_for(request.tenant, plan.site, &plan.need, plan.from, plan.to)
            .is_err()
        {
            for &j in &plan.victims {
                crate::preempt::restore(calendar, &preempt.held[j], plan.from);
            }
            undo_late(calendar);
            return None;
        }
        let eval = self.site_eval(calendar, request, &dims, plan.site);
        let terms = self.terms(&eval, request, plan.start, plan.from, plan.to);
        let score = crate::policy::score(&self.policy.weights, &terms, eval.compute_per_hour);
        let key = self.key(calendar, &dims, &eval, &terms, score);
        let chosen = Candidate {
            site: plan.site,
            start: SimTime(plan.start),
            terms,
            score,
            key,
            guard_rejected: false,
        };
        let now = self.snapshot.now;
        let view = &self.snapshot.sites[plan.site];
        let mut victims = Vec::with_capacity(plan.victims.len());
        for &j in &plan.victims {
            let held = &preempt.held[j];
            let (ran, lost_cny) =
                crate::preempt::lost_cny(view.price_per_hour(&held.need), held, now);
            preempt.taken[j] = true;
            victims.push(Victim {
                job: held.id,
                index: j,
                site: held.site,
                class: held.class,
                ran,
                lost_cny,
            });
        }
        if let Some(budget) = preempt.budget.get_mut(plan.site) {
            *budget = budget.saturating_sub(victims.len() as u32);
        }
        Some((crate::preempt::placement(chosen, request), victims))
    }

    /// The site and victims that start `request` in time losing the least
    /// work, if any; the calendar is left as it was.
    fn preemption_plan(
        &mut self,
        calendar: &mut Calendar,
        request: &Request,
        dims: &Dims,
        deadline: i64,
        preempt: &Preempt,
    ) -> Option<crate::preempt::Plan> {
        if self.allowed_sites(calendar, request, dims).is_some() {
            return None;
        }
        if !self.policy.kind.moves_in_space() {
            let home = self.home_site(request);
            self.sites.retain(|s| *s == home);
        }
        // A job with a spill-over list runs only at a listed site.
        if !request.spill.is_empty() {
            self.sites
                .retain(|s| request.spill.iter().any(|tier| tier.contains(s)));
        }
        let sites = std::mem::take(&mut self.sites);
        let slot = calendar.slot_secs();
        let now = self.snapshot.now;
        let mut best: Option<(crate::preempt::Plan, f64)> = None;
        let mut order: Vec<(bool, f64, u8, JobId, usize)> = Vec::new();
        for &site in &sites {
            let eval = self.site_eval(calendar, request, dims, site);
            let start = eval.earliest.max(now.0 + preempt.grace.0);
            let end = start + request.duration.0;
            if end > deadline {
                continue;
            }
            let from = start.div_euclid(slot);
            let to = (end - 1).div_euclid(slot) + 1;
            if from >= calendar.end() {
                continue;
            }
            let need = Need {
                watts: eval.watts,
                ..request.need
            };
            let quota = calendar.quota_dims(request.tenant, site, &need);
            let fits = |calendar: &Calendar| {
                let mut ring = calendar.ring(from);
                for _ in from..to.min(calendar.end()) {
                    if !calendar.fits_at_ring(site, dims.fit(), need.watts, ring)
                        || !calendar.fits_quota_at_ring(quota.as_slice(), ring)
                    {
                        return false;
                    }
                    ring = calendar.next_ring(ring);
                }
                true
            };
            let view = &self.snapshot.sites[site];
            order.clear();
            order.extend(
                preempt
                    .held
                    .iter()
                    .enumerate()
                    .filter(|(j, h)| {
                        h.site == site
                            && h.preemptible
                            && h.class < request.class
                            && !preempt.taken[*j]
                            && h.to > from
                            && h.from < to
                    })
                    .map(|(j, h)| {
                        let lost = crate::preempt::lost_cny(view.price_per_hour(&h.need), h, now).1;
                        (h.started.is_some(), lost, h.class, h.id, j)
                    }),
            );
            order.sort_by(|a, b| {
                a.0.cmp(&b.0)
                    .then(a.1.total_cmp(&b.1))
                    .then(a.2.cmp(&b.2))
                    .then(a.3.cmp(&b.3))
            });
            let budget = preempt.budget.get(site).copied().unwrap_or(0) as usize;
            let mut chosen: Vec<usize> = Vec::new();
            let mut ok = fits(calendar);
            for &(_, _, _, _, j) in &order {
                if ok || chosen.len() >= budget {
                    break;
                }
                crate::preempt::release(calendar, &preempt.held[j], from);
                chosen.push(j);
                ok = fits(calendar);
            }
            if ok {
                // Keep only the victims the job needs: book back each one it
                // can do without, the last taken first.
                let mut needed = Vec::with_capacity(chosen.len());
                for &j in chosen.iter().rev() {
                    crate::preempt::restore(calendar, &preempt.held[j], from);
                    if !fits(calendar) {
                        crate::preempt::release(calendar, &preempt.held[j], from);
                        needed.push(j);
                    }
                }
                needed.reverse();
                chosen = needed;
            }
            // Back as it was, to weigh the next site.
            for &j in &chosen {
                crate::preempt::restore(calendar, &preempt.held[j], from);
            }
            if !ok {
                continue;
            }
            let lost: f64 = chosen
                .iter()
                .map(|&j| {
                    let h = &preempt.held[j];
                    crate::preempt::lost_cny(view.price_per_hour(&h.need), h, now).1
                })
                .sum();
            let terms = self.terms(&eval, request, start, from, to);
            let score = crate::policy::score(&self.policy.weights, &terms, eval.compute_per_hour);
            let better = best.as_ref().is_none_or(|(b, b_score)| {
                lost.total_cmp(&b.lost)
                    .then(chosen.len().cmp(&b.victims.len()))
                    .then(score.total_cmp(b_score))
                    .is_lt()
            });
            if better {
                best = Some((
                    crate::preempt::Plan {
                        site,
                        start,
                        from,
                        to,
                        need,
                        victims: chosen,
                        lost,
                    },
                    score,
                ));
            }
        }
        self.sites = sites;
        best.map(|(plan, _)| plan)
    }

    fn home_site(&self, request: &Request) -> usize {
        let net = self.snapshot.network;
        let home = net.home_site[request.origin];
        if self.sites.contains(&home) {
            return home;
        }
        *self
            .sites
            .iter()
            .min_by(|&&a, &&b| {
                net.latency(request.origin, a)
                    .total_cmp(&net.latency(request.origin, b))
                    .then(a.cmp(&b))
            })
            .expect("allowed sites are not empty")
    }

    fn site_eval(
        &self,
        calendar: &Calendar,
        request: &Request,
        dims: &Dims,
        site: usize,
    ) -> SiteEval {
        let view = &self.snapshot.sites[site];
        let mut watts = 0;
        // Sums over the job's classes only (the same values as the dense sums:
        // zero units add exact zeros).
        let (mut compute_per_hour, mut kw_it) = (0.0, 0.0);
        for &(class, units) in dims.as_slice() {
            compute_per_hour += units as f64 * view.price_cny_per_unit_hour[class];
            kw_it += units as f64 * view.power_kw_per_unit[class];
        }
        let kw = kw_it * view.pue;
        if calendar.capacity(site).watts.is_some() {
            watts = (kw * 1000.0).ceil() as u32;
        }
        let hours = request.duration.0 as f64 / 3600.0;
        let (transfer_time, transfer_cny, transfer_gb) =
            self.snapshot
                .network
                .transfer(request.data_location, site, request.data_gib);
        let transfer = (transfer_time.0, transfer_cny, transfer_gb);
        let earliest = request.release.0.max(self.snapshot.now.0) + transfer.0;
        SiteEval {
            site,
            watts,
            compute_cny: compute_per_hour * hours,
            compute_per_hour,
            kw,
            transfer,
            earliest,
        }
    }

    fn terms(&self, eval: &SiteEval, request: &Request, start: i64, from: i64, to: i64) -> Terms {
        let (t, c) = self.snapshot.forecast.window(eval.site, from, to);
        let slot = self.snapshot.forecast.slot_secs;
        // The window is whole slots; scale to the run time.
        let frac = request.duration.0 as f64 / ((to - from) * slot) as f64;
        let end = start + request.duration.0;
        Terms {
            compute_cny: Cny(eval.compute_cny),
            energy_kwh: Kwh(eval.kw * request.duration.as_hours()),
            energy_cny: Cny(eval.kw * t * frac),
            carbon_kg: KgCo2(eval.kw * c * frac),
            transfer_gb: eval.transfer.2,
            transfer_cny: Cny(eval.transfer.1),
            transfer_secs: SimDuration(eval.transfer.0),
            wait_secs: SimDuration(start - request.release.0),
            late_secs: SimDuration(
                request
                    .deadline
                    .map(|d| d.0)
                    .map_or(0, |d| (end - d).max(0)),
            ),
        }
    }

    fn key(
        &self,
        calendar: &Calendar,
        dims: &Dims,
        eval: &SiteEval,
        terms: &Terms,
        score: f64,
    ) -> f64 {
        match self.policy.kind {
            PolicyKind::LocalFifo => 0.0,
            PolicyKind::LeastLoaded => {
                // Load now, as a least-loaded dispatcher sees it.
                let slot = calendar.base();
                let cap = calendar.capacity(eval.site);
                dims.as_slice()
                    .iter()
                    .map(|&(c, _)| calendar.busy(eval.site, c, slot) as f64 / cap.units[c] as f64)
                    .fold(0.0, f64::max)
            }
            PolicyKind::Cheapest => (terms.compute_cny + terms.energy_cny).0,
            PolicyKind::GreenestNow => self
                .snapshot
                .forecast
                .carbon(eval.site, calendar.slot_of(self.snapshot.now.0)),
            PolicyKind::WaitForGreen => terms.carbon_kg.0,
            PolicyKind::Balanced => score,
        }
    }

    /// The local-FIFO counterfactual for the Pareto guard: (money, carbon) of the
    /// earliest start at the home site, if that start meets the deadline.
    fn reference(
        &self,
        calendar: &Calendar,
        request: &Request,
        dims: &Dims,
        evals: &[SiteEval],
    ) -> Option<(f64, f64)> {
        let home = self.home_site(request);
        let eval = evals.iter().find(|e| e.site == home)?;
        let mut reference = None;
        let horizon_end = calendar.end() * calendar.slot_secs();
        let quota = calendar.quota_dims(request.tenant, home, &request.need);
        feasible_starts_dims(
            calendar,
            dims.fit(),
            eval.watts,
            quota.as_slice(),
            home,
            eval.earliest,
            horizon_end,
            request.duration.0,
            |s, f, t| {
                let terms = self.terms(eval, request, s, f, t);
                if terms.late_secs == SimDuration::ZERO {
                    reference = Some((money(&terms), terms.carbon_kg.0));
                }
                ControlFlow::Break(())
            },
        );
        reference
    }

    /// The policy's best candidate at one site: (late, candidate, earliest-start
    /// candidate when it differs), or `None` when the site is full over the horizon.
    fn best_at_site(
        &self,
        calendar: &Calendar,
        request: &Request,
        dims: &Dims,
        eval: &SiteEval,
        guard: Option<(f64, f64)>,
        bound: Option<f64>,
    ) -> Option<(bool, Candidate, Option<Candidate>)> {
        let slot = calendar.slot_secs();
        let horizon_end = calendar.end() * slot;
        let window_end = if self.policy.kind.moves_in_time() && request.delayable {
            match request.deadline.map(|d| d.0) {
                Some(deadline) => deadline - request.duration.0,
                None => eval.earliest + self.policy.max_delay.0,
            }
        } else {
            eval.earliest
        };
        let weights = &self.policy.weights;
        let quota: QuotaDims = calendar.quota_dims(request.tenant, eval.site, &request.need);
        let make = |start: i64, from: i64, to: i64| -> Candidate {
            let terms = self.terms(eval, request, start, from, to);
            let score = crate::policy::score(weights, &terms, eval.compute_per_hour);
            let key = self.key(calendar, dims, eval, &terms, score);
            Candidate {
                site: eval.site,
                start: SimTime(start),
                terms,
                score,
                key,
                guard_rejected: false,
            }
        };
        let mut first: Option<Candidate> = None;
        let mut best: Option<(f64, Candidate)> = None;
        let mut best_refused: Option<(f64, Candidate)> = None;
        let scans = self.policy.kind.moves_in_time() && request.delayable;
        // Scanning many starts: compute the ranking key from the prefix sums alone
        // and build a full candidate only when it improves on the best so far.
        let forecast = self.snapshot.forecast;
        let fixed_money = eval.compute_cny + eval.transfer.1;
        let fixed_score = weights.price * eval.compute_cny + weights.transfer * eval.transfer.1;
        let wait_rate = eval.compute_per_hour * weights.wait / 3600.0;
        let carbon_price = weights.carbon_cny_per_kg();
        let balanced = self.policy.kind == PolicyKind::Balanced;
        // A lower bound on a start's key apart from waiting, which only grows with
        // the start: once it reaches the best key found (here or at an earlier
        // site), no later start at this site can win.
        let floor = fixed_score
            + eval.kw * request.duration.0 as f64 / 3600.0
                * forecast.min_rate(eval.site, weights.energy, carbon_price);
        // On-time (or within the delay window) candidates first.
        if window_end >= eval.earliest {
            feasible_starts_dims(
                calendar,
                dims.fit(),
                eval.watts,
                quota.as_slice(),
                eval.site,
                eval.earliest,
                window_end,
                request.duration.0,
                |s, f, t| {
                    if balanced && scans && first.is_some() {
                        let best_key = best.as_ref().map(|(k, _)| *k);
                        let target = match (best_key, bound) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                        if target.is_some_and(|k| {
                            floor + wait_rate * (s - request.release.0) as f64 >= k
                        }) {
                            return ControlFlow::Break(());
                        }
                    }
                    let (dt, dc) = forecast.window(eval.site, f, t);
                    let frac = request.duration.0 as f64 / ((t - f) * slot) as f64;
                    let energy_cny = eval.kw * dt * frac;
                    let carbon_kg = eval.kw * dc * frac;
                    let key = if !scans {
                        0.0
                    } else if balanced {
                        fixed_score
                            + weights.energy * energy_cny
                            + carbon_price * carbon_kg
                            + wait_rate * (s - request.release.0) as f64
                    } else {
                        carbon_kg
                    };
                    if first.is_none() {
                        first = Some(make(s, f, t));
                    }
                    let admissible = guard.is_none_or(|(m, carbon)| {
                        let tolerance = 1e-9 * (1.0 + m.abs() + carbon.abs());
                        fixed_money + energy_cny <= m + tolerance && carbon_kg <= carbon + tolerance
                    });
                    let target = if admissible {
                        &mut best
                    } else {
                        &mut best_refused
                    };
                    if target
                        .as_ref()
                        .is_none_or(|(k, b)| (key, s) < (*k, b.start.0))
                    {
                        *target = Some((key, make(s, f, t)));
                    }
                    if scans {
                        ControlFlow::Continue(())
                    } else {
                        ControlFlow::Break(())
                    }
                },
            );
        }
        let best = best.map(|(_, c)| c);
        let best_refused = best_refused.map(|(_, c)| c);
        if let Some(b) = best {
            let late = b.terms.late_secs > SimDuration::ZERO;
            let early = first.filter(|f| f.start != b.start);
            return Some((late, b, early));
        }
        if let Some(mut refused) = best_refused {
            // Feasible in the window, but no start passes the Pareto guard here:
            // kept only to explain the decision.
            refused.guard_rejected = true;
            return Some((refused.terms.late_secs > SimDuration::ZERO, refused, None));
        }
        // Nothing in the window: the earliest feasible start anywhere in the horizon.
        let mut late_candidate = None;
        feasible_starts_dims(
            calendar,
            dims.fit(),
            eval.watts,
            quota.as_slice(),
            eval.site,
            eval.earliest,
            horizon_end,
            request.duration.0,
            |s, f, t| {
                late_candidate = Some(make(s, f, t));
                ControlFlow::Break(())
            },
        );
        late_candidate.map(|c| (c.terms.late_secs > SimDuration::ZERO, c, None))
    }
}

/// Whether `site` can ever run `request`: pinning, residency, latency target,
/// capacity per class, power cap and a gang's nodes (availability aside). The planner and the LP
/// bound use this one rule.
pub fn admits(
    view: &SiteView,
    capacity: &SiteCapacity,
    net: &NetView,
    request: &Request,
    site: usize,
) -> bool {
    admits_dims(view, capacity, net, request, site, &Dims::of(&request.need))
        && (request.need.nodes == 0 || holds_gang(capacity, &request.need))
}

/// [`admits`] with the request's non-zero classes at hand, but for a gang's
/// nodes ([`holds_gang`], checked beside it so that this stays a leaf call).
fn admits_dims(
    view: &SiteView,
    capacity: &SiteCapacity,
    net: &NetView,
    request: &Request,
    site: usize,
    dims: &Dims,
) -> bool {
    if request.pinned.is_some_and(|p| p != site) {
        return false;
    }
    if request.residency != 0 && request.residency & (1 << view.jurisdiction) == 0 {
        return false;
    }
    if let Some((location, max_ms)) = request.latency
        && net.latency(location, site) > max_ms
    {
        return false;
    }
    if dims.as_slice().iter().any(|&(c, u)| capacity.units[c] < u) {
        return false;
    }
    if let Some(watts) = capacity.watts
        && dims
            .as_slice()
            .iter()
            .map(|&(c, u)| u as f64 * view.power_kw_per_unit[c])
            .sum::<f64>()
            * view.pue
            * 1000.0
            > watts as f64
    {
        return false;
    }
    true
}

/// Whether a site has as many nodes as the gang `need` asks, each holding its
/// per-node share. Out of line: plain jobs, the common case, never call it.
#[cold]
#[inline(never)]
fn holds_gang(capacity: &SiteCapacity, need: &Need) -> bool {
    capacity
        .nodes
        .is_some_and(|shape| shape.count >= need.nodes && shape.fits(&per_node(need)))
}

/// One node's share of a gang's units (rounded up).
fn per_node(need: &Need) -> [u32; suanwang_model::N_CLASSES] {
    let nodes = need.nodes.max(1);
    need.units.map(|units| units.div_ceil(nodes))
}

/// Money a candidate costs: compute, electricity and transfer, CNY.
fn money(terms: &Terms) -> f64 {
    terms.money().0
}

/// Ranking of candidates across sites: on-time before late, then the policy's key,
/// then earlier start, then lower site index (determinism).
fn rank(late: bool, c: &Candidate) -> (bool, f64, i64, usize) {
    (
        late,
        if late {
            c.terms.late_secs.0 as f64
        } else {
            c.key
        },
        c.start.0,
        c.site,
    )
}

/// Calls `visit(start_secs, from_slot, to_slot)` for each start in
/// `earliest..=last_start` at which `need` fits at `site`: the exact earliest time
/// first, then each later slot boundary, within the calendar's window.
pub fn feasible_starts(
    calendar: &Calendar,
    need: &Need,
    site: usize,
    earliest: i64,
    last_start: i64,
    duration: i64,
    visit: impl FnMut(i64, i64, i64) -> ControlFlow<()>,
) {
    let dims = Dims::of(need);
    feasible_starts_dims(
        calendar,
        dims.fit(),
        need.watts,
        &[],
        site,
        earliest,
        last_start,
        duration,
        visit,
    );
}

/// [`feasible_starts`] for a need given as its non-zero classes and its watts,
/// within the quota rows `quota` (see [`Calendar::quota_dims`]; empty: no quota).
#[allow(clippy::too_many_arguments)]
fn feasible_starts_dims(
    calendar: &Calendar,
    dims: &[(usize, u32)],
    watts: u32,
    quota: &[(usize, u32)],
    site: usize,
    earliest: i64,
    last_start: i64,
    duration: i64,
    mut visit: impl FnMut(i64, i64, i64) -> ControlFlow<()>,
) {
    let slot = calendar.slot_secs();
    let duration = duration.max(1);
    let k0 = calendar.slot_of(earliest).max(calendar.base());
    let earliest = earliest.max(k0 * slot);
    if k0 >= calendar.end() || last_start < earliest {
        return;
    }
    // One pass over the slots from k0 on, remembering the last slot where the
    // need does not fit: a start at k is feasible when that slot lies before k.
    let mut last_blocked = k0 - 1;
    let mut scanned = k0;
    let mut ring = calendar.ring(k0);
    let mut scan_to = |upto: i64, last_blocked: &mut i64| {
        while scanned < upto {
            if !calendar.fits_at_ring(site, dims, watts, ring)
                || (!quota.is_empty() && !calendar.fits_quota_at_ring(quota, ring))
            {
                *last_blocked = scanned;
            }
            scanned += 1;
            ring = calendar.next_ring(ring);
        }
    };
    // The exact earliest time first (it may fall inside slot k0).
    let to0 = (earliest + duration - 1).div_euclid(slot) + 1;
    scan_to(to0.min(calendar.end()), &mut last_blocked);
    if last_blocked < k0 && visit(earliest, k0, to0).is_break() {
        return;
    }
    let d = (duration + slot - 1) / slot;
    let first = k0 + 1;
    let last = last_start.div_euclid(slot).min(calendar.end() - 1);
    let mut k = first;
    while k <= last {
        scan_to((k + d).min(calendar.end()), &mut last_blocked);
        if last_blocked >= k {
            k = last_blocked + 1;
            continue;
        }
        if visit(k * slot, k, k + d).is_break() {
            return;
        }
        k += 1;
    }
}
