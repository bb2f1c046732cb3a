//! The simulator of suanwang: reads real traces, fills in what they lack, and
//! replays them through a topology under one policy or all, calling the same pure
//! scheduling core as the live control plane.
//!
//! Architecture invariant: the simulator owns its virtual clock and never reads the
//! wall clock; the same inputs and seed give byte-identical reports. IO is limited
//! to reading the trace and series files named by the caller.

pub mod bound;
pub mod engine;
pub mod fill;
pub mod plot;
pub mod report;
pub mod series;
pub mod trace;
pub mod world;

use engine::{RunResult, SimConfig};
use fill::FillOptions;
use report::{Report, SeriesSummary, TraceSummary};
use std::path::PathBuf;
use suanwang_model::time::days_from_civil;
use suanwang_model::{ResourceClass, SimDuration};
use suanwang_sched::{LpBoundReport, Policy, PolicyKind, Request, Weights};
use suanwang_topology::{CarbonSeries, SeriesModel, Topology};
use trace::{ReadOptions, TraceError};
use world::World;

/// Everything a `simulate` run needs.
#[derive(Debug, Clone)]
pub struct SimulateParams {
    /// Topology to run on.
    pub topology: Topology,
    /// Trace file.
    pub trace: PathBuf,
    /// How to read it.
    pub read: ReadOptions,
    /// Keep only the first N jobs.
    pub limit: Option<usize>,
    /// Fill-in rules.
    pub fill: FillOptions,
    /// Simulation parameters.
    pub config: SimConfig,
    /// Policies to run.
    pub policies: Vec<PolicyKind>,
    /// Objective weights.
    pub weights: Weights,
    /// Maximum delay of a job without a deadline.
    pub max_delay: SimDuration,
    /// A real series replacing the built-in carbon shape
    /// ([`series::read_carbon_series`] reads one).
    pub carbon_series: Option<CarbonSeries>,
    /// Longitude that series was measured at.
    pub carbon_series_lon: f64,
    /// Unix time of the simulation's epoch.
    pub start_unix: i64,
    /// Compute the LP bound only up to this many jobs.
    pub lp_max_jobs: usize,
    /// Hour cells per job and site in the LP.
    pub lp_job_cells: usize,
    /// Hour cells in the LP grid.
    pub lp_max_hours: usize,
    /// `balanced` keeps to Pareto improvements over the local counterfactual.
    pub pareto_guard: bool,
    /// Jobs of the synthetic workload (`trace = "synthetic"`).
    pub synthetic_jobs: usize,
    /// Days of the synthetic workload.
    pub synthetic_days: u32,
    /// Weighted fair share among the trace's tenants with this half-life,
    /// seconds (`None`: off).
    pub fair_share_half_life_secs: Option<i64>,
    /// Tenants' fair-share weights by name (1 for a tenant not named).
    pub share_weights: Vec<(String, f64)>,
    /// Tenants' priority classes by name (`normal` for a tenant not named).
    /// A `batch` tenant's jobs are preemptible; an `urgent` tenant's jobs have
    /// a deadline `urgent_deadline_slack` after they could end.
    pub tenant_classes: Vec<(String, suanwang_model::PriorityClass)>,
    /// Deadline slack of an urgent tenant's jobs (fill-in rule).
    pub urgent_deadline_slack: SimDuration,
    /// Quotas: (tenant, class, site or none for the network, most units held
    /// at once), as `suanwang quota set` caps them live.
    pub quotas: Vec<QuotaRow>,
    /// An ordered spill-over list for every job that has none (traces have
    /// none): sites and jurisdictions, as the live scheduler weighs them.
    pub spill: Vec<suanwang_model::SpillChoice>,
}

/// One quota of a simulation: (tenant, class, site or none for the network,
/// most units held at once).
pub type QuotaRow = (String, ResourceClass, Option<String>, u32);

impl SimulateParams {
    /// Defaults for `topology` and `trace`: all policies, 2024-01-01 00:00 Beijing
    /// time as the epoch.
    pub fn new(topology: Topology, trace: PathBuf) -> SimulateParams {
        SimulateParams {
            topology,
            trace,
            read: ReadOptions::default(),
            limit: None,
            fill: FillOptions::default(),
            config: SimConfig::default(),
            policies: PolicyKind::ALL.to_vec(),
            weights: Weights::default(),
            max_delay: SimDuration::hours(24),
            carbon_series: None,
            carbon_series_lon: 0.0,
            start_unix: default_start_unix(),
            lp_max_jobs: 5000,
            lp_job_cells: 48,
            lp_max_hours: 24 * 30,
            pareto_guard: true,
            synthetic_jobs: 1000,
            synthetic_days: 7,
            fair_share_half_life_secs: None,
            share_weights: Vec::new(),
            tenant_classes: Vec::new(),
            urgent_deadline_slack: SimDuration::hours(1),
            quotas: Vec::new(),
            spill: Vec::new(),
        }
    }
}

/// The default spill-over list as the core's tiers; a choice naming no site
/// of the topology, or a provider, is an error naming it.
fn spill_tiers(
    world: &World,
    list: &[suanwang_model::SpillChoice],
) -> Result<Vec<Vec<usize>>, SimError> {
    use suanwang_model::SpillChoice;
    let tiers = world.spill_tiers(list, &std::collections::BTreeMap::new());
    for (choice, tier) in list.iter().zip(&tiers) {
        if let SpillChoice::Provider(_) = choice {
            return Err(SimError::Spill(format!(
                "{choice}: the simulator knows no providers (use site: or jurisdiction:)"
            )));
        }
        if tier.is_empty() {
            return Err(SimError::Spill(format!(
                "{choice}: names no site of topology {}",
                world.topology.name
            )));
        }
    }
    Ok(tiers)
}

/// 2024-01-01 00:00 at UTC+8, as unix seconds.
pub fn default_start_unix() -> i64 {
    days_from_civil(2024, 1, 1) * 86400 - 8 * 3600
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The trace could not be read.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The trace has no jobs.
    #[error("{0}: the trace has no jobs")]
    Empty(String),
    /// A quota names a tenant or site the run does not have.
    #[error("--quota: {0}")]
    Quota(String),
    /// A spill-over choice names nothing in the topology (or a provider, which
    /// the simulator does not know).
    #[error("spill-over choice {0}")]
    Spill(String),
}

/// What a run reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressEvent {
    /// The trace is read: this many jobs will be decided under each policy.
    Jobs(usize),
    /// Under the policy at this index (in `SimulateParams::policies`), this many
    /// jobs are decided.
    Decided(usize, usize),
    /// The LP bound started solving.
    LpStarted,
    /// The LP bound is done.
    LpFinished,
}

/// Receives progress events, possibly from several threads at once.
pub type Progress<'a> = &'a (dyn Fn(ProgressEvent) + Sync);

/// The outcome of [`run`].
pub struct Simulation {
    /// The report.
    pub report: Report,
    /// Per-policy runs, in the order asked.
    pub runs: Vec<RunResult>,
    /// The world simulated.
    pub world: World,
    /// First and last hour with load.
    pub hours: (i64, i64),
}

/// The trace `params` name (read, or the built-in synthetic one), cut to its
/// limit and filled in: the jobs a [`run`] replays, in trace order, and the
/// trace jobs that cannot become jobs.
pub fn filled_trace(
    params: &SimulateParams,
) -> Result<
    (
        trace::Trace,
        Vec<suanwang_model::Job>,
        Vec<fill::Unrunnable>,
    ),
    SimError,
> {
    let mut trace = if params.trace.as_os_str() == "synthetic" {
        let models: Vec<(String, u32)> = suanwang_model::ResourceClass::all()
            .filter(|c| c.is_accelerator())
            .map(|c| {
                (
                    c.name().to_string(),
                    params
                        .topology
                        .sites
                        .iter()
                        .map(|s| s.capacity.get(c))
                        .sum(),
                )
            })
            .filter(|m| m.1 > 0)
            .collect();
        trace::synthetic(
            params.fill.seed,
            params.synthetic_jobs,
            params.synthetic_days,
            &models,
        )
    } else {
        trace::read_trace(&params.trace, &params.read)?
    };
    if let Some(limit) = params.limit {
        trace.jobs.truncate(limit);
    }
    if trace.jobs.is_empty() {
        return Err(SimError::Empty(trace.path));
    }
    let (jobs, unrunnable) = fill::fill(&trace, &params.topology, &params.fill);
    Ok((trace, jobs, unrunnable))
}

/// Reads the trace, fills it in and runs every policy (in parallel threads) and the
/// LP bound.
pub fn run(params: &SimulateParams, progress: Progress) -> Result<Simulation, SimError> {
    let (trace, jobs, unrunnable) = filled_trace(params)?;
    progress(ProgressEvent::Jobs(trace.jobs.len()));
    let max_release = jobs.iter().map(|j| j.release.0).max().unwrap_or(0);
    let max_duration = jobs.iter().map(|j| j.duration.0).max().unwrap_or(0);
    let span = max_release
        + max_duration
        + params.config.horizon_slots as i64 * params.config.slot_secs
        + 2 * 86400;
    let series = SeriesModel::new(
        &params.topology,
        params.start_unix,
        params.carbon_series.clone(),
        params.carbon_series_lon,
    );
    let carbon_label = series.carbon_label();
    let world = World::new(
        params.topology.clone(),
        series,
        params.config.slot_secs,
        span,
    );
    let spill = spill_tiers(&world, &params.spill)?;
    // Tenants by name, numbered in name order: the key of their requests.
    let mut tenants: Vec<String> = jobs.iter().map(|j| j.tenant.clone()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let tenant_key = |name: &str| {
        tenants
            .binary_search_by(|t| t.as_str().cmp(name))
            .unwrap_or(0) as u32
    };
    // Requests in trace order; unrunnable jobs keep their slot with the reason.
    let mut requests: Vec<Result<Request, String>> = Vec::with_capacity(trace.jobs.len());
    let mut filled = jobs.iter().peekable();
    let mut bad = unrunnable.iter().peekable();
    for index in 0..trace.jobs.len() {
        if bad.peek().is_some_and(|u| u.index == index) {
            let u = bad.next().expect("peeked");
            requests.push(Err(u.reason.clone()));
        } else {
            let job = filled
                .next()
                .expect("every trace job is filled or unrunnable");
            let class = params
                .tenant_classes
                .iter()
                .find(|(name, _)| *name == job.tenant)
                .map_or(suanwang_model::PriorityClass::Normal, |(_, c)| *c);
            requests.push(world.request(job).map(|mut r| {
                r.tenant = tenant_key(&job.tenant);
                r.class = class.rank();
                r.preemptible = class == suanwang_model::PriorityClass::Batch;
                if class == suanwang_model::PriorityClass::Urgent {
                    let due = r.release + r.duration + params.urgent_deadline_slack;
                    r.deadline = Some(r.deadline.map_or(due, |d| d.min(due)));
                }
                if r.spill.is_empty() {
                    r.spill.clone_from(&spill);
                }
                r
            }));
        }
    }
    let policies: Vec<Policy> = params
        .policies
        .iter()
        .map(|&kind| Policy {
            kind,
            weights: params.weights,
            max_delay: params.max_delay,
            explain_top: 3,
            pareto_guard: params.pareto_guard,
        })
        .collect();
    let weights: Vec<f64> = tenants
        .iter()
        .map(|t| {
            params
                .share_weights
                .iter()
                .find(|(name, _)| name == t)
                .map_or(1.0, |(_, w)| *w)
        })
        .collect();
    let mut config = params.config.clone();
    config.fair_share =
        params
            .fair_share_half_life_secs
            .map(|half_life_secs| engine::SimFairShare {
                half_life_secs,
                weights: weights.clone(),
            });
    for (tenant, class, site, cap) in &params.quotas {
        let Ok(key) = tenants.binary_search(tenant) else {
            return Err(SimError::Quota(format!(
                "quota for tenant {tenant:?}, who has no job in the trace"
            )));
        };
        let site = match site {
            None => None,
            Some(id) => Some(
                world
                    .sites
                    .iter()
                    .position(|s| s.id == *id)
                    .ok_or_else(|| SimError::Quota(format!("quota at unknown site {id:?}")))?,
            ),
        };
        config.quotas.push(suanwang_sched::Quota {
            tenant: key as u32,
            class: class.index(),
            site,
            cap: *cap,
        });
    }
    let config = &config;
    let n_valid = requests.iter().filter(|r| r.is_ok()).count();
    let (runs, lp_bound) = std::thread::scope(|scope| {
        let lp = scope.spawn(|| {
            if n_valid > params.lp_max_jobs {
                return LpBoundReport::NotComputed {
                    reason: format!(
                        "{n_valid} jobs > --lp-max-jobs {} (use --limit to bound a prefix)",
                        params.lp_max_jobs
                    ),
                };
            }
            progress(ProgressEvent::LpStarted);
            let policy = Policy {
                explain_top: 0,
                ..policies
                    .first()
                    .copied()
                    .unwrap_or(Policy::new(PolicyKind::Balanced))
            };
            let instance = bound::lp_instance(
                &world,
                &requests,
                &policy,
                params.lp_job_cells,
                params.lp_max_hours,
            );
            let result = match suanwang_sched::lp::lower_bound(&instance) {
                Ok(bound) => LpBoundReport::Computed { bound },
                Err(e) => LpBoundReport::NotComputed {
                    reason: e.to_string(),
                },
            };
            progress(ProgressEvent::LpFinished);
            result
        });
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .max(1);
        let mut runs: Vec<Option<RunResult>> = vec![None; policies.len()];
        for chunk in (0..policies.len()).collect::<Vec<_>>().chunks(threads) {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&p| {
                    let (world, requests, policy) = (&world, &requests, &policies[p]);
                    (
                        p,
                        scope.spawn(move || {
                            engine::simulate(world, requests, policy, config, &mut |done| {
                                progress(ProgressEvent::Decided(p, done))
                            })
                        }),
                    )
                })
                .collect();
            for (p, handle) in handles {
                runs[p] = Some(handle.join().expect("a simulation thread panicked"));
            }
        }
        let lp_bound = lp.join().expect("the LP thread panicked");
        (
            runs.into_iter()
                .map(|r| r.expect("every policy ran"))
                .collect::<Vec<_>>(),
            lp_bound,
        )
    });
    let first_h = requests
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|r| r.release.0)
        .min()
        .unwrap_or(0)
        / 3600;
    let last_h = requests
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|r| ((r.release + r.duration).0 + 3599) / 3600)
        .max()
        .unwrap_or(first_h + 1);
    let span_hours = (last_h - first_h).max(1) as f64;
    let bound_value = match &lp_bound {
        LpBoundReport::Computed { bound } => Some(bound.value),
        LpBoundReport::NotComputed { .. } => None,
    };
    let results = runs
        .iter()
        .map(|run| {
            let mut result = report::summarise(&world, &requests, run, span_hours, bound_value);
            if config.preemption.is_some() {
                result.preemption = Some(report::preemption(&requests, run));
            }
            if config.fair_share.is_some() {
                result.fairness =
                    Some(report::fairness(&world, &requests, run, &tenants, &weights));
            }
            result
        })
        .collect();
    let report = Report {
        schema: "suanwang.simulate/v1",
        topology: params.topology.name.clone(),
        trace: TraceSummary {
            path: trace.path.clone(),
            format: format!("{:?}", trace.format).to_lowercase(),
            time_unit: trace.time_unit.map(|(u, detected)| {
                format!("{u:?}{}", if detected { " (detected)" } else { "" }).to_lowercase()
            }),
            jobs: trace.jobs.len(),
            skipped_lines: trace.skipped.len(),
        },
        seed: params.fill.seed,
        config: config.clone(),
        fill: params.fill.clone(),
        weights: params.weights,
        carbon_shape: carbon_label,
        carbon_series: params.carbon_series.as_ref().map(SeriesSummary::of),
        span_hours,
        lp_bound,
        policies: results,
        explanations: runs
            .iter()
            .flat_map(|run| {
                let mut explained = run.explained.clone();
                explained.sort_by_key(|(job, _)| *job);
                explained
                    .into_iter()
                    .map(|(job, placement)| {
                        report::explain(&world, job, run.policy.kind.name(), &placement)
                    })
                    .collect::<Vec<_>>()
            })
            .collect(),
    };
    let last_load_h = runs
        .iter()
        .flat_map(|r| r.load_kw.iter().map(|l| l.len() as i64))
        .max()
        .unwrap_or(last_h);
    Ok(Simulation {
        report,
        runs,
        world,
        hours: (first_h, last_load_h.max(first_h + 1)),
    })
}
