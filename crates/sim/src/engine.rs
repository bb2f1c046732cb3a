//! The discrete-event simulator: replays jobs through a world under one policy.
//!
//! Events are job arrivals and, while jobs wait for capacity, retries. At each
//! event the calendar rolls forward to the current time, the scheduler gets the
//! latest forecast (issued every `forecast_interval_secs`) and the pending jobs, and
//! its decisions are final: a placed job runs from its start for its run time.
//! Results are counted on the actual series, not the forecast.

use crate::world::World;
use serde::Serialize;
use suanwang_model::{Cny, KgCo2, Kwh, N_CLASSES, SimDuration, SimTime};
use suanwang_sched::fairshare::{average_share, decay, entitlements};
use suanwang_sched::{
    Calendar, FairShare, Forecast, Held, Need, Outcome, Placement, Policy, Preempt, Request,
    ShareNode, Snapshot, TenantShare, Terms, plan_preempting,
};

/// Simulation parameters.
#[derive(Debug, Clone, Serialize)]
pub struct SimConfig {
    /// Calendar slot, seconds.
    pub slot_secs: i64,
    /// Calendar horizon, slots.
    pub horizon_slots: usize,
    /// Seed of the forecast errors.
    pub seed: u64,
    /// Relative standard deviation of the forecast error at 24 h lead.
    pub forecast_error: f64,
    /// How often a new forecast is issued, seconds.
    pub forecast_interval_secs: i64,
    /// How long a job waiting for capacity waits before the next try, seconds.
    pub retry_secs: i64,
    /// A job still waiting this long after its release is rejected as starved.
    pub max_wait_secs: i64,
    /// Trace indices of jobs whose decisions to keep, with their explanations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub explain_jobs: Vec<usize>,
    /// Weighted fair share among the trace's tenants, as the live scheduler
    /// does it; `None`: jobs in priority and policy order alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fair_share: Option<SimFairShare>,
    /// Preemption as the live scheduler does it (`serve --preempt-grace`,
    /// `--preempt-limit`); `None`: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preemption: Option<SimPreemption>,
    /// Tenants' quotas, by the tenant key of their requests, as the live
    /// scheduler enforces them.
    #[serde(skip)]
    pub quotas: Vec<suanwang_sched::Quota>,
}

/// Preemption in a simulation: a job with a deadline that no start meets may
/// stop preemptible jobs of lower classes ([`suanwang_sched::preempt`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SimPreemption {
    /// From the stop signal to the kill, seconds: the preempting job starts after it.
    pub grace_secs: i64,
    /// Most jobs stopped per site within `window_secs`.
    pub per_site: u32,
    /// The rate limit's window, seconds.
    pub window_secs: i64,
}

impl Default for SimPreemption {
    /// As `serve`'s defaults: 30 s grace, 10 jobs per site in 10 minutes.
    fn default() -> SimPreemption {
        SimPreemption {
            grace_secs: 30,
            per_site: 10,
            window_secs: 600,
        }
    }
}

/// One job stopped for a job of a higher class in a simulation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreemptionEvent {
    /// The job stopped (trace index).
    pub job: usize,
    /// The job it was stopped for (trace index).
    pub by: usize,
    /// Site index.
    pub site: usize,
    /// When.
    pub at: SimTime,
    /// How long it had run: the work lost, seconds.
    pub ran_secs: i64,
    /// That run's unit-seconds (every class it held), lost.
    pub lost_unit_secs: f64,
    /// What that run cost at the site's compute price, CNY.
    pub lost_cny: f64,
}

/// Weighted fair share in a simulation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimFairShare {
    /// Half-life of past usage, seconds.
    pub half_life_secs: i64,
    /// Weight of each tenant, by the tenant key of its requests (1 where absent).
    pub weights: Vec<f64>,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            slot_secs: 900,
            horizon_slots: 672,
            seed: 1,
            forecast_error: 0.1,
            forecast_interval_secs: 3600,
            retry_secs: 3600,
            max_wait_secs: 365 * 86400,
            explain_jobs: Vec::new(),
            fair_share: None,
            preemption: None,
            quotas: Vec::new(),
        }
    }
}

/// What happened to one job, on actuals.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum JobResult {
    /// It ran.
    Done {
        /// Site index.
        site: usize,
        /// Start.
        start: SimTime,
        /// End.
        end: SimTime,
        /// Terms on actuals.
        terms: Terms,
        /// Green energy used, kWh.
        green_kwh: f64,
        /// Objective value on actuals, CNY.
        objective: f64,
    },
    /// It was refused.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// The outcome of one run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The policy run.
    pub policy: Policy,
    /// One result per job, in the order of the `jobs` slice.
    pub jobs: Vec<JobResult>,
    /// Facility power per site and hour since the epoch, kW (hourly averages).
    pub load_kw: Vec<Vec<f64>>,
    /// Busy unit-seconds per site and class.
    pub busy_unit_secs: Vec<[f64; N_CLASSES]>,
    /// Number of calls to the scheduler.
    pub plan_calls: usize,
    /// The placements of the jobs in `SimConfig::explain_jobs`, with their
    /// explanations (on the forecast the scheduler saw), by trace index.
    pub explained: Vec<(usize, Placement)>,
    /// Jobs stopped for jobs of higher classes, in order.
    pub preemptions: Vec<PreemptionEvent>,
}

/// Cost of rejecting `request`: `weights.reject` × its compute price at the cheapest
/// site that has its classes (0 when none has).
pub fn reject_cost(world: &World, policy: &Policy, request: &Request) -> f64 {
    let hours = request.duration.as_hours();
    world
        .sites
        .iter()
        .zip(&world.capacity)
        .filter(|(_, cap)| request.need.classes().all(|(c, u)| cap.units[c] >= u))
        .map(|(view, _)| view.price_per_hour(&request.need) * hours)
        .fold(None, |best: Option<f64>, v| {
            Some(best.map_or(v, |b| b.min(v)))
        })
        .map_or(0.0, |v| v * policy.weights.reject)
}

/// Terms of running `request` at `site` from `start`, on the actual series, and the
/// green energy used (kWh).
pub fn actual_terms(world: &World, request: &Request, site: usize, start: SimTime) -> (Terms, f64) {
    let view = &world.sites[site];
    let kw = view.facility_kw(&request.need);
    let slot = world.actuals.slot_secs;
    let end = start + request.duration;
    let (mut energy_cny, mut carbon_kg, mut green_kwh) = (0.0, 0.0, 0.0);
    let mut t = start.0;
    while t < end.0 {
        let k = t.div_euclid(slot);
        let next = ((k + 1) * slot).min(end.0);
        let hours = (next - t) as f64 / 3600.0;
        let (tariff, carbon, green) = world.actual(site, k);
        energy_cny += kw * hours * tariff;
        carbon_kg += kw * hours * carbon * (1.0 - green);
        green_kwh += kw * hours * green;
        t = next;
    }
    let (transfer_secs, transfer_cny, transfer_gb) =
        world
            .net
            .transfer(request.data_location, site, request.data_gib);
    let hours = request.duration.as_hours();
    let terms = Terms {
        compute_cny: Cny(view.price_per_hour(&request.need) * hours),
        energy_kwh: Kwh(kw * hours),
        energy_cny: Cny(energy_cny),
        carbon_kg: KgCo2(carbon_kg),
        transfer_gb,
        transfer_cny: Cny(transfer_cny),
        transfer_secs,
        wait_secs: start - request.release,
        late_secs: SimDuration(request.deadline.map_or(0, |d| (end.0 - d.0).max(0))),
    };
    (terms, green_kwh)
}

/// Runs `requests` (built from `jobs` by [`World::request`]; `None` for jobs that
/// cannot become requests, with the reason) through `world` under `policy`.
/// `progress(done)` is called as jobs are decided.
pub fn simulate(
    world: &World,
    requests: &[Result<Request, String>],
    policy: &Policy,
    config: &SimConfig,
    progress: &mut dyn FnMut(usize),
) -> RunResult {
    let n_sites = world.sites.len();
    let mut results: Vec<Option<JobResult>> = vec![None; requests.len()];
    let mut order: Vec<usize> = Vec::with_capacity(requests.len());
    let mut decided = 0;
    for (i, r) in requests.iter().enumerate() {
        match r {
            Ok(_) => order.push(i),
            Err(reason) => {
                results[i] = Some(JobResult::Rejected {
                    reason: reason.clone(),
                });
                decided += 1;
            }
        }
    }
    let request = |i: usize| {
        requests[i]
            .as_ref()
            .expect("only valid requests are ordered")
    };
    order.sort_by_key(|&i| (request(i).release, request(i).id));
    let first = order.first().map_or(SimTime::ZERO, |&i| request(i).release);
    let mut calendar = Calendar::new(
        world.capacity.clone(),
        config.slot_secs,
        config.horizon_slots,
        first,
    );
    calendar.set_quotas(config.quotas.clone());
    let mut load_kw: Vec<Vec<f64>> = vec![Vec::new(); n_sites];
    let mut busy_unit_secs = vec![[0.0; N_CLASSES]; n_sites];
    let mut forecast: Option<(SimTime, Forecast)> = None;
    let mut pending: Vec<usize> = Vec::new();
    let mut batch: Vec<Request> = Vec::new();
    let mut next = 0;
    let mut now = first;
    let mut plan_calls = 0;
    let mut explained = Vec::new();
    let mut shares = config
        .fair_share
        .as_ref()
        .map(|fair| Shares::new(world, fair));
    // Preemptible jobs placed and not yet over (trace index, site, start, end),
    // and when each site last lost jobs (for the rate limit).
    let mut running: Vec<(usize, usize, SimTime, SimTime)> = Vec::new();
    let mut preemptions: Vec<PreemptionEvent> = Vec::new();
    let mut held: Vec<Held> = Vec::new();
    let mut held_jobs: Vec<usize> = Vec::new();
    loop {
        while next < order.len() && request(order[next]).release <= now {
            pending.push(order[next]);
            next += 1;
        }
        if !pending.is_empty() {
            calendar.advance_to(now);
            let issued = SimTime(
                now.0.div_euclid(config.forecast_interval_secs) * config.forecast_interval_secs,
            );
            // The forecast covers the horizon, but only as far as a pending job can
            // use it (beyond, the scheduler assumes the window's mean): building it
            // is most of a simulation's cost otherwise.
            let base = calendar.slot_of(issued.0);
            let horizon_slots = config.horizon_slots + (calendar.base() - base) as usize;
            let until = pending
                .iter()
                .map(|&i| {
                    let r = request(i);
                    let start = r.release.max(now) + r.duration;
                    if policy.kind.moves_in_time() && r.delayable {
                        r.deadline
                            .unwrap_or(SimTime::ZERO)
                            .max(start + policy.max_delay)
                    } else {
                        start
                    }
                })
                .max()
                .unwrap_or(now)
                + SimDuration::hours(2);
            let needed = ((until.0.div_euclid(config.slot_secs) - base + 1).max(1) as usize)
                .min(horizon_slots);
            if forecast
                .as_ref()
                .is_none_or(|(at, f)| *at != issued || f.n_slots < needed)
            {
                let n = (needed * 2).min(horizon_slots).max(needed);
                forecast = Some((
                    issued,
                    world.forecast(issued.0, base, n, config.forecast_error, config.seed),
                ));
            }
            let snapshot = Snapshot {
                now,
                sites: &world.sites,
                forecast: &forecast.as_ref().expect("issued above").1,
                network: &world.net,
            };
            batch.clear();
            batch.extend(pending.iter().map(|&i| request(i).clone()));
            let fair = match &mut shares {
                Some(shares) => shares.standing(now, &batch),
                None => FairShare::off(),
            };
            held.clear();
            held_jobs.clear();
            let mut budget = Vec::new();
            if let Some(rules) = &config.preemption {
                running.retain(|r| r.3 > now);
                for &(job, site, start, end) in &running {
                    let req = request(job);
                    held.push(Held {
                        id: req.id,
                        tenant: req.tenant,
                        site,
                        need: booked_need(world, req, site),
                        class: req.class,
                        preemptible: true,
                        started: (start <= now).then_some(start),
                        from: calendar.slot_of(start.0),
                        to: calendar.slot_of((end.0 - 1).max(start.0)) + 1,
                    });
                    held_jobs.push(job);
                }
                let since = now.0 - rules.window_secs;
                budget = (0..n_sites)
                    .map(|site| {
                        let spent = preemptions
                            .iter()
                            .rev()
                            .take_while(|e| e.at.0 > since)
                            .filter(|e| e.site == site)
                            .count() as u32;
                        rules.per_site.saturating_sub(spent)
                    })
                    .collect();
            }
            let grace = SimDuration(config.preemption.map_or(0, |p| p.grace_secs));
            let mut preempt = Preempt::new(&held, grace, budget);
            let decisions = plan_preempting(
                &snapshot,
                &mut calendar,
                &batch,
                policy,
                &fair,
                &mut preempt,
            );
            plan_calls += 1;
            let mut still = Vec::new();
            for decision in decisions {
                let job = pending[decision.index];
                // Victims first: each stops at the job's start, its run so far
                // counted as work lost, and waits to run again from the start.
                if let Outcome::Placed(p) = &decision.outcome {
                    for v in &decision.preempts {
                        let victim = held_jobs[v.index];
                        let Some(JobResult::Done {
                            site, start, end, ..
                        }) = results[victim].take()
                        else {
                            continue;
                        };
                        let req = request(victim);
                        let cut = p.start.max(start).min(end);
                        let kw = world.sites[site].facility_kw(&req.need);
                        account_load(&mut load_kw[site], cut.0, end.0, -kw);
                        let mut unit_secs = 0.0;
                        for (class, units) in req.need.classes() {
                            busy_unit_secs[site][class] -= units as f64 * (end - cut).0 as f64;
                            unit_secs += units as f64 * (cut - start).0 as f64;
                        }
                        if let Some(shares) = &mut shares {
                            shares.cut(victim, cut);
                        }
                        running.retain(|r| r.0 != victim);
                        let ran = (cut - start).0;
                        preemptions.push(PreemptionEvent {
                            job: victim,
                            by: job,
                            site,
                            at: now,
                            ran_secs: ran,
                            lost_unit_secs: unit_secs,
                            lost_cny: v.lost_cny,
                        });
                        decided -= 1;
                        still.push(victim);
                    }
                }
                match decision.outcome {
                    Outcome::Placed(p) => {
                        if config.explain_jobs.contains(&job) {
                            explained.push((job, p.clone()));
                        }
                        let req = request(job);
                        let (terms, green_kwh) = actual_terms(world, req, p.site, p.start);
                        let per_hour = world.sites[p.site].price_per_hour(&req.need);
                        let objective =
                            suanwang_sched::policy::score(&policy.weights, &terms, per_hour);
                        account_load(
                            &mut load_kw[p.site],
                            p.start.0,
                            p.end.0,
                            terms.energy_kwh.0 / req.duration.as_hours(),
                        );
                        for (class, units) in req.need.classes() {
                            busy_unit_secs[p.site][class] += units as f64 * req.duration.0 as f64;
                        }
                        if let Some(shares) = &mut shares {
                            shares.placed(job, req, p.start, p.end);
                        }
                        if config.preemption.is_some() && req.preemptible {
                            running.push((job, p.site, p.start, p.end));
                        }
                        results[job] = Some(JobResult::Done {
                            site: p.site,
                            start: p.start,
                            end: p.end,
                            terms,
                            green_kwh,
                            objective,
                        });
                        decided += 1;
                    }
                    Outcome::Rejected(reason) => {
                        results[job] = Some(JobResult::Rejected {
                            reason: reason.to_string(),
                        });
                        decided += 1;
                    }
                    Outcome::Pending(wait)
                        if (now - request(job).release).0 > config.max_wait_secs =>
                    {
                        results[job] = Some(JobResult::Rejected {
                            reason: format!(
                                "starved: {wait:?} for over {} days",
                                config.max_wait_secs / 86400
                            ),
                        });
                        decided += 1;
                    }
                    Outcome::Pending(_) => still.push(job),
                }
            }
            pending = still;
            progress(decided);
        }
        let next_arrival = order.get(next).map(|&i| request(i).release);
        let retry = (!pending.is_empty()).then_some(now + SimDuration(config.retry_secs));
        now = match (next_arrival, retry) {
            (Some(a), Some(r)) => a.min(r),
            (Some(a), None) => a,
            (None, Some(r)) => r,
            (None, None) => break,
        };
    }
    let jobs = results
        .into_iter()
        .map(|r| r.expect("every job is decided before the loop ends"))
        .collect();
    RunResult {
        policy: *policy,
        jobs,
        load_kw,
        busy_unit_secs,
        plan_calls,
        explained,
        preemptions,
    }
}

/// What a placed job books at `site`: its units, with its facility watts where
/// the site has a power cap (as the core books it).
fn booked_need(world: &World, request: &Request, site: usize) -> Need {
    let watts = if world.capacity[site].watts.is_some() {
        (world.sites[site].facility_kw(&request.need) * 1000.0).ceil() as u32
    } else {
        0
    };
    Need {
        watts,
        ..request.need
    }
}

/// Tenants' fair-share standing through a simulation, kept as the live
/// scheduler keeps it (`Scheduler::fair_share`): usage decayed with the
/// half-life, plus what placed jobs hold.
struct Shares {
    half_life: f64,
    weights: Vec<f64>,
    totals: [u64; N_CLASSES],
    scale: FairShare,
    /// Decayed usage by tenant key, share × seconds, as of `as_of`.
    usage: std::collections::HashMap<u32, f64>,
    as_of: Option<SimTime>,
    /// Placed jobs not yet over: (trace index, tenant, dominant share, start, end).
    placed: Vec<(usize, u32, f64, SimTime, SimTime)>,
}

impl Shares {
    fn new(world: &World, fair: &SimFairShare) -> Shares {
        let mut totals = [0u64; N_CLASSES];
        for site in &world.capacity {
            for (t, u) in totals.iter_mut().zip(&site.units) {
                *t += u64::from(*u);
            }
        }
        Shares {
            half_life: fair.half_life_secs.max(1) as f64,
            weights: fair.weights.clone(),
            totals,
            scale: FairShare::new(Vec::new(), &totals),
            usage: Default::default(),
            as_of: None,
            placed: Vec::new(),
        }
    }

    fn placed(&mut self, job: usize, request: &Request, start: SimTime, end: SimTime) {
        let share = self.scale.dominant_share(&request.need);
        self.placed.push((job, request.tenant, share, start, end));
    }

    /// A preempted job ends at `at`.
    fn cut(&mut self, job: usize, at: SimTime) {
        for p in self.placed.iter_mut().filter(|p| p.0 == job) {
            p.4 = p.4.min(at.max(p.3));
        }
    }

    /// Brings usage up to `now` and returns the standing of the tenants of `batch`.
    fn standing(&mut self, now: SimTime, batch: &[Request]) -> FairShare {
        let last = self.as_of.unwrap_or(now);
        let elapsed = (now - last).0 as f64;
        if elapsed > 0.0 {
            let k = std::f64::consts::LN_2 / self.half_life;
            for u in self.usage.values_mut() {
                *u = decay(*u, 0.0, elapsed, self.half_life);
            }
            // Each job's share held over [last, now), decayed from the middle of
            // its overlap to now.
            for &(_, tenant, share, start, end) in &self.placed {
                let from = start.max(last);
                let to = end.min(now);
                if to > from {
                    let mid = (from.0 + to.0) as f64 / 2.0;
                    *self.usage.entry(tenant).or_default() +=
                        share * (to - from).0 as f64 * (-k * (now.0 as f64 - mid)).exp();
                }
            }
        }
        self.as_of = Some(now);
        self.placed.retain(|p| p.4 > now);
        let mut claimed: std::collections::HashMap<u32, f64> = Default::default();
        for &(_, tenant, share, _, _) in &self.placed {
            *claimed.entry(tenant).or_default() += share;
        }
        let mut active: Vec<u32> = batch.iter().map(|r| r.tenant).collect();
        active.sort_unstable();
        active.dedup();
        let nodes: Vec<ShareNode> = active
            .iter()
            .map(|&tenant| ShareNode {
                tenant,
                parent: None,
                weight: self.weights.get(tenant as usize).copied().unwrap_or(1.0),
            })
            .collect();
        let standing = entitlements(&nodes, &active)
            .into_iter()
            .map(|(tenant, entitled)| TenantShare {
                tenant,
                entitled,
                usage: average_share(
                    self.usage.get(&tenant).copied().unwrap_or(0.0),
                    self.half_life,
                ) + claimed.get(&tenant).copied().unwrap_or(0.0),
            })
            .collect();
        FairShare::new(standing, &self.totals)
    }
}

/// Adds `kw` over `start..end` to hourly averages.
fn account_load(hours: &mut Vec<f64>, start: i64, end: i64, kw: f64) {
    let mut t = start.max(0);
    while t < end {
        let h = (t / 3600) as usize;
        let next = ((h as i64 + 1) * 3600).min(end);
        if hours.len() <= h {
            hours.resize(h + 1, 0.0);
        }
        hours[h] += kw * (next - t) as f64 / 3600.0;
        t = next;
    }
}
