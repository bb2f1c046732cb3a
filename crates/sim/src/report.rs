//! Per-policy results and the `simulate` report: a stable JSON document
//! (`suanwang.simulate/v1`, documented in docs/SIMULATOR.md) and aligned tables.
//! Nothing here reads a clock, so the same inputs give byte-identical JSON.

use crate::engine::{JobResult, RunResult};
use crate::world::World;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use suanwang_model::ResourceClass;
use suanwang_sched::{LpBoundReport, Request};

/// Counts of jobs.
#[derive(Debug, Clone, Serialize)]
pub struct JobCounts {
    /// Jobs in the trace.
    pub total: usize,
    /// Jobs that ran.
    pub done: usize,
    /// Jobs refused.
    pub rejected: usize,
    /// Refusals by reason.
    pub rejected_by_reason: BTreeMap<String, usize>,
}

/// Money, CNY.
#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    /// Compute + energy + transfer.
    pub total: f64,
    /// Price of resources.
    pub compute: f64,
    /// Electricity.
    pub energy: f64,
    /// Data transfer.
    pub transfer: f64,
}

/// Waiting, hours.
#[derive(Debug, Clone, Serialize)]
pub struct WaitStats {
    /// Mean.
    pub mean: f64,
    /// 95th percentile.
    pub p95: f64,
}

/// One site under one policy.
#[derive(Debug, Clone, Serialize)]
pub struct SiteResult {
    /// Site id.
    pub site: String,
    /// Jobs run there.
    pub jobs: usize,
    /// Facility energy, MWh.
    pub energy_mwh: f64,
    /// Emissions, t CO2.
    pub carbon_t: f64,
    /// Busy unit-hours over capacity unit-hours in the report's span, per class
    /// the site offers.
    pub utilisation: BTreeMap<String, f64>,
}

/// One policy's results.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyResult {
    /// Policy name.
    pub policy: String,
    /// Job counts.
    pub jobs: JobCounts,
    /// Cost.
    pub cost_cny: Cost,
    /// Facility energy, MWh.
    pub energy_mwh: f64,
    /// Emissions after green power, t CO2.
    pub carbon_t: f64,
    /// Green share of the energy used.
    pub green_share: f64,
    /// Waiting of jobs that ran, hours.
    pub wait_h: WaitStats,
    /// Jobs that finished after their deadline.
    pub deadline_misses: usize,
    /// Input data moved between locations, TB.
    pub data_moved_tb: f64,
    /// Weighted objective on actuals, CNY-equivalent (rejections included).
    pub objective_cny: f64,
    /// (objective − LP bound) / LP bound, when the bound was computed.
    pub lp_gap: Option<f64>,
    /// Calls to the scheduler.
    pub plan_calls: usize,
    /// Per site.
    pub sites: Vec<SiteResult>,
    /// Per tenant, against its entitlement (when run with fair share).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fairness: Option<Fairness>,
    /// Jobs stopped for jobs of higher classes and the work lost (when run
    /// with preemption).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preemption: Option<PreemptionSummary>,
}

/// Preemption in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreemptionSummary {
    /// Jobs stopped (a job stopped twice counts twice).
    pub preemptions: usize,
    /// Distinct jobs stopped at least once.
    pub jobs_preempted: usize,
    /// Run time lost, hours (what the stopped runs had run).
    pub lost_run_h: f64,
    /// Unit-hours lost (every class the stopped runs held).
    pub lost_unit_h: f64,
    /// What the lost runs cost at their sites' compute prices, CNY.
    pub lost_cny: f64,
    /// Per class (`batch`, `normal`, `urgent`): jobs that ran and their mean
    /// wait, hours.
    pub classes: Vec<ClassWait>,
}

/// Jobs of one priority class that ran, and their wait.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassWait {
    /// The class.
    pub class: String,
    /// Jobs of the class that ran.
    pub done: usize,
    /// Their mean wait, hours.
    pub mean_wait_h: f64,
}

/// The preemptions of one run and each class's wait.
pub fn preemption(requests: &[Result<Request, String>], run: &RunResult) -> PreemptionSummary {
    let mut jobs: Vec<usize> = run.preemptions.iter().map(|e| e.job).collect();
    jobs.sort_unstable();
    jobs.dedup();
    let classes = suanwang_model::PriorityClass::ALL
        .iter()
        .map(|class| {
            let waits: Vec<f64> = requests
                .iter()
                .zip(&run.jobs)
                .filter_map(|(r, result)| match (r, result) {
                    (Ok(r), JobResult::Done { start, .. }) if r.class == class.rank() => {
                        Some((*start - r.release).as_hours())
                    }
                    _ => None,
                })
                .collect();
            ClassWait {
                class: class.name().to_string(),
                done: waits.len(),
                mean_wait_h: if waits.is_empty() {
                    0.0
                } else {
                    waits.iter().sum::<f64>() / waits.len() as f64
                },
            }
        })
        .collect();
    PreemptionSummary {
        preemptions: run.preemptions.len(),
        jobs_preempted: jobs.len(),
        lost_run_h: run
            .preemptions
            .iter()
            .map(|e| e.ran_secs as f64)
            .sum::<f64>()
            / 3600.0
            + 0.0,
        lost_unit_h: run
            .preemptions
            .iter()
            .map(|e| e.lost_unit_secs)
            .sum::<f64>()
            / 3600.0
            + 0.0,
        // + 0.0: an empty sum is -0.0.
        lost_cny: run.preemptions.iter().map(|e| e.lost_cny).sum::<f64>() + 0.0,
        classes,
    }
}

/// How a run shared the network among tenants.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fairness {
    /// Jain's fairness index over tenants of (share used ÷ entitlement): 1 when
    /// every tenant used exactly its entitlement's proportion, 1/n at worst.
    /// Tenants that asked for less than their entitlement lower it too.
    pub jain_index: f64,
    /// Per tenant, by name.
    pub tenants: Vec<TenantFairness>,
}

/// One tenant in [`Fairness`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantFairness {
    /// Name.
    pub tenant: String,
    /// Weight.
    pub weight: f64,
    /// Its fraction of the network by weight (all tenants of the trace).
    pub entitled: f64,
    /// Jobs it submitted.
    pub jobs: usize,
    /// Jobs of it that ran.
    pub done: usize,
    /// Mean wait of its jobs that ran, hours.
    pub mean_wait_h: f64,
    /// Its fraction of all dominant-share × hours used.
    pub used: f64,
}

/// Per-tenant use against entitlement, and Jain's index, of one run. `tenants`
/// are the names by tenant key, `weights` their weights.
pub fn fairness(
    world: &World,
    requests: &[Result<Request, String>],
    run: &RunResult,
    tenants: &[String],
    weights: &[f64],
) -> Fairness {
    let mut totals = [0u64; suanwang_model::N_CLASSES];
    for site in &world.capacity {
        for (t, u) in totals.iter_mut().zip(&site.units) {
            *t += u64::from(*u);
        }
    }
    let scale = suanwang_sched::FairShare::new(Vec::new(), &totals);
    let n = tenants.len();
    let mut jobs = vec![0usize; n];
    let mut done = vec![0usize; n];
    let mut wait_h = vec![0.0f64; n];
    let mut used = vec![0.0f64; n];
    for (request, result) in requests.iter().zip(&run.jobs) {
        let Ok(r) = request else { continue };
        let t = r.tenant as usize;
        if t >= n {
            continue;
        }
        jobs[t] += 1;
        if let JobResult::Done { start, .. } = result {
            done[t] += 1;
            wait_h[t] += (*start - r.release).as_hours();
            used[t] += scale.dominant_share(&r.need) * r.duration.as_hours();
        }
    }
    let total_weight: f64 = weights.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    let total_used: f64 = used.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    let rows: Vec<TenantFairness> = (0..n)
        .map(|t| TenantFairness {
            tenant: tenants[t].clone(),
            weight: weights[t],
            entitled: weights[t] / total_weight,
            jobs: jobs[t],
            done: done[t],
            mean_wait_h: if done[t] > 0 {
                wait_h[t] / done[t] as f64
            } else {
                0.0
            },
            used: used[t] / total_used,
        })
        .collect();
    let x: Vec<f64> = rows.iter().map(|r| r.used / r.entitled).collect();
    let sum: f64 = x.iter().sum();
    let squares: f64 = x.iter().map(|v| v * v).sum();
    Fairness {
        jain_index: if squares > 0.0 {
            sum * sum / (x.len() as f64 * squares)
        } else {
            1.0
        },
        tenants: rows,
    }
}

/// Summarises one run. `span_hours` is the common span utilisation is taken over.
pub fn summarise(
    world: &World,
    requests: &[Result<Request, String>],
    run: &RunResult,
    span_hours: f64,
    lp: Option<f64>,
) -> PolicyResult {
    let mut counts = JobCounts {
        total: run.jobs.len(),
        done: 0,
        rejected: 0,
        rejected_by_reason: BTreeMap::new(),
    };
    let (
        mut compute,
        mut energy,
        mut transfer,
        mut kwh,
        mut carbon,
        mut green,
        mut gb,
        mut objective,
    ) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let mut waits = Vec::new();
    let mut misses = 0;
    let n_sites = world.sites.len();
    let mut site_jobs = vec![0usize; n_sites];
    let mut site_kwh = vec![0.0; n_sites];
    let mut site_carbon = vec![0.0; n_sites];
    for (i, job) in run.jobs.iter().enumerate() {
        match job {
            JobResult::Done {
                site,
                terms,
                green_kwh,
                objective: o,
                ..
            } => {
                counts.done += 1;
                compute += terms.compute_cny.0;
                energy += terms.energy_cny.0;
                transfer += terms.transfer_cny.0;
                kwh += terms.energy_kwh.0;
                carbon += terms.carbon_kg.0;
                green += green_kwh;
                gb += terms.transfer_gb;
                objective += o;
                waits.push(terms.wait_secs.as_hours());
                misses += usize::from(terms.late_secs.0 > 0);
                site_jobs[*site] += 1;
                site_kwh[*site] += terms.energy_kwh.0;
                site_carbon[*site] += terms.carbon_kg.0;
            }
            JobResult::Rejected { reason } => {
                counts.rejected += 1;
                *counts.rejected_by_reason.entry(reason.clone()).or_default() += 1;
                if let Ok(request) = &requests[i] {
                    objective += crate::engine::reject_cost(world, &run.policy, request);
                }
            }
        }
    }
    waits.sort_by(f64::total_cmp);
    let mean = if waits.is_empty() {
        0.0
    } else {
        waits.iter().sum::<f64>() / waits.len() as f64
    };
    let p95 = if waits.is_empty() {
        0.0
    } else {
        waits[((waits.len() as f64 * 0.95).ceil() as usize).clamp(1, waits.len()) - 1]
    };
    let sites = (0..n_sites)
        .map(|s| {
            let cap = &world.capacity[s];
            let utilisation = ResourceClass::all()
                .filter(|c| cap.units[c.index()] > 0)
                .map(|c| {
                    let busy_h = run.busy_unit_secs[s][c.index()] / 3600.0;
                    (
                        c.name().to_string(),
                        busy_h / (cap.units[c.index()] as f64 * span_hours.max(1e-9)),
                    )
                })
                .collect();
            SiteResult {
                site: world.sites[s].id.clone(),
                jobs: site_jobs[s],
                energy_mwh: site_kwh[s] / 1000.0,
                carbon_t: site_carbon[s] / 1000.0,
                utilisation,
            }
        })
        .collect();
    PolicyResult {
        policy: run.policy.kind.name().to_string(),
        jobs: counts,
        cost_cny: Cost {
            total: compute + energy + transfer,
            compute,
            energy,
            transfer,
        },
        energy_mwh: kwh / 1000.0,
        carbon_t: carbon / 1000.0,
        green_share: if kwh > 0.0 { green / kwh } else { 0.0 },
        wait_h: WaitStats { mean, p95 },
        deadline_misses: misses,
        data_moved_tb: gb / 1000.0,
        objective_cny: objective,
        lp_gap: lp.filter(|b| *b > 0.0).map(|b| (objective - b) / b),
        plan_calls: run.plan_calls,
        sites,
        fairness: None,
        preemption: None,
    }
}

/// The trace part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct TraceSummary {
    /// Path as given.
    pub path: String,
    /// Format read.
    pub format: String,
    /// GAIA time unit, and whether it was detected.
    pub time_unit: Option<String>,
    /// Jobs read (after `--limit`).
    pub jobs: usize,
    /// Malformed lines skipped with `--skip-bad-lines`.
    pub skipped_lines: usize,
}

/// The whole `simulate` document.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Schema name and version.
    pub schema: &'static str,
    /// Topology name.
    pub topology: String,
    /// Trace read.
    pub trace: TraceSummary,
    /// Seed of fill-in rules and forecast errors.
    pub seed: u64,
    /// Simulation parameters.
    pub config: crate::engine::SimConfig,
    /// Fill-in rules in force.
    pub fill: crate::fill::FillOptions,
    /// Objective weights.
    pub weights: suanwang_sched::Weights,
    /// Where the carbon shape comes from.
    pub carbon_shape: String,
    /// The series given with `--carbon-series`, and the gaps filled in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carbon_series: Option<SeriesSummary>,
    /// Hours utilisation is taken over.
    pub span_hours: f64,
    /// The LP bound, or why it was not computed.
    pub lp_bound: LpBoundReport,
    /// One entry per policy run.
    pub policies: Vec<PolicyResult>,
    /// Decisions asked for with `--explain`, per policy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub explanations: Vec<Explanation>,
}

pub use suanwang_model::explain::{CandidateView, Explanation};

/// A series file as read: its rows, its step and the rows filled in its gaps.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesSummary {
    /// The file.
    pub path: String,
    /// Data rows in the file.
    pub rows: usize,
    /// Step between rows, seconds.
    pub step_secs: i64,
    /// Rows filled by linear interpolation, in all.
    pub filled_rows: usize,
    /// Each gap filled, in file order.
    pub filled: Vec<FilledGapView>,
    /// Runs of rows finer than the step, each step's rows averaged into its
    /// value (e.g. a grid that went from 30-minute to 15-minute figures).
    pub averaged: Vec<AveragedRunView>,
}

/// Rows finer than the series' step, averaged.
#[derive(Debug, Clone, Serialize)]
pub struct AveragedRunView {
    /// The first line averaged.
    pub first_line: usize,
    /// The last line averaged.
    pub last_line: usize,
    /// Rows averaged.
    pub rows: usize,
    /// Steps they make.
    pub steps: usize,
}

/// One gap filled by linear interpolation.
#[derive(Debug, Clone, Serialize)]
pub struct FilledGapView {
    /// The line of the file after which the gap lies.
    pub after_line: usize,
    /// Rows filled.
    pub rows: usize,
    /// Time of the first row filled, `YYYY-MM-DD HH:MM:SS` UTC.
    pub from: String,
    /// Time of the last row filled.
    pub to: String,
}

impl SeriesSummary {
    /// The summary of a carbon series.
    pub fn of(series: &suanwang_topology::CarbonSeries) -> SeriesSummary {
        use suanwang_topology::series::format_timestamp;
        SeriesSummary {
            path: series.origin.clone(),
            rows: series.rows,
            step_secs: series.step_secs,
            filled_rows: series.filled.iter().map(|g| g.rows).sum(),
            filled: series
                .filled
                .iter()
                .map(|g| FilledGapView {
                    after_line: g.after_line,
                    rows: g.rows,
                    from: format_timestamp(g.first_unix),
                    to: format_timestamp(g.last_unix),
                })
                .collect(),
            averaged: series
                .averaged
                .iter()
                .map(|r| AveragedRunView {
                    first_line: r.first_line,
                    last_line: r.last_line,
                    rows: r.rows,
                    steps: r.steps,
                })
                .collect(),
        }
    }

    /// One line for people: the file, its rows and step, and the gaps filled
    /// (the first ten; the JSON lists all).
    pub fn describe(&self) -> String {
        let mut out = format!(
            "{}: {} rows every {}",
            self.path,
            self.rows,
            suanwang_model::SimDuration(self.step_secs)
        );
        for run in &self.averaged {
            let _ = write!(
                out,
                "; lines {}-{} finer than that: {} rows averaged into {} steps",
                run.first_line, run.last_line, run.rows, run.steps
            );
        }
        if self.filled.is_empty() {
            out.push_str(", no gaps");
            return out;
        }
        let gaps: Vec<String> = self
            .filled
            .iter()
            .take(10)
            .map(|g| {
                if g.rows == 1 {
                    format!("after line {} ({})", g.after_line, g.from)
                } else {
                    format!(
                        "after line {} ({} rows, {} to {})",
                        g.after_line, g.rows, g.from, g.to
                    )
                }
            })
            .collect();
        let _ = write!(
            out,
            "; {} {} filled by linear interpolation: {}",
            self.filled_rows,
            if self.filled_rows == 1 { "row" } else { "rows" },
            gaps.join(", ")
        );
        if self.filled.len() > 10 {
            let _ = write!(out, ", and {} more gaps", self.filled.len() - 10);
        }
        out
    }
}

/// The explanation of `placement` in names and hours.
pub fn explain(
    world: &World,
    job: usize,
    policy: &str,
    placement: &suanwang_sched::Placement,
) -> Explanation {
    let view = |c: &suanwang_sched::Candidate| CandidateView {
        site: world.sites[c.site].id.clone(),
        start_h: c.start.as_hours(),
        score: c.score,
        compute_cny: c.terms.compute_cny.0,
        energy_cny: c.terms.energy_cny.0,
        carbon_kg: c.terms.carbon_kg.0,
        transfer_cny: c.terms.transfer_cny.0,
        transfer_h: c.terms.transfer_secs.as_hours(),
        wait_h: c.terms.wait_secs.as_hours(),
        late_h: c.terms.late_secs.as_hours(),
        guard_rejected: c.guard_rejected,
    };
    Explanation {
        job,
        policy: policy.to_string(),
        chosen: view(&placement.chosen),
        alternatives: placement.alternatives.iter().map(view).collect(),
        pruned: placement
            .pruned
            .iter()
            .map(|(s, b)| (world.sites[*s].id.clone(), *b))
            .collect(),
    }
}

/// Renders explanations as tables.
pub fn render_explanations(explanations: &[Explanation]) -> String {
    let mut out = String::new();
    for e in explanations {
        let _ = writeln!(
            out,
            "\njob {} under {}: {} at {:.2} h (waited {:.2} h)",
            e.job, e.policy, e.chosen.site, e.chosen.start_h, e.chosen.wait_h
        );
        let mut rows = vec![
            [
                "",
                "site",
                "start h",
                "score",
                "compute",
                "energy",
                "carbon kg",
                "transfer",
                "transfer h",
                "wait h",
                "late h",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for (mark, c) in
            std::iter::once(("chosen", &e.chosen)).chain(e.alternatives.iter().map(|c| {
                (
                    if c.guard_rejected {
                        "guard-refused"
                    } else {
                        "not chosen"
                    },
                    c,
                )
            }))
        {
            rows.push(vec![
                mark.to_string(),
                c.site.clone(),
                format!("{:.2}", c.start_h),
                format!("{:.3}", c.score),
                format!("{:.3}", c.compute_cny),
                format!("{:.3}", c.energy_cny),
                format!("{:.3}", c.carbon_kg),
                format!("{:.3}", c.transfer_cny),
                format!("{:.3}", c.transfer_h),
                format!("{:.2}", c.wait_h),
                format!("{:.2}", c.late_h),
            ]);
        }
        out.push_str(&table(&rows));
        if !e.pruned.is_empty() {
            let list: Vec<String> = e
                .pruned
                .iter()
                .map(|(s, b)| format!("{s} (≥ {b:.3})"))
                .collect();
            let _ = writeln!(out, "pruned: {}", list.join(", "));
        }
    }
    out
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Renders aligned tables for people.
pub fn render_tables(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "topology {} · trace {} ({} jobs, {} bad lines skipped) · seed {}",
        report.topology,
        report.trace.path,
        report.trace.jobs,
        report.trace.skipped_lines,
        report.seed
    );
    let _ = writeln!(out, "carbon: {}", report.carbon_shape);
    if let Some(series) = &report.carbon_series {
        let _ = writeln!(out, "carbon series {}", series.describe());
    }
    let _ = writeln!(out);
    let header = [
        "policy",
        "done",
        "rejected",
        "cost CNY",
        "energy MWh",
        "carbon t",
        "green",
        "wait mean h",
        "wait p95 h",
        "misses",
        "moved TB",
        "objective",
        "LP gap",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for p in &report.policies {
        rows.push(vec![
            p.policy.clone(),
            p.jobs.done.to_string(),
            p.jobs.rejected.to_string(),
            format!("{:.0}", p.cost_cny.total),
            format!("{:.2}", p.energy_mwh),
            format!("{:.3}", p.carbon_t),
            pct(p.green_share),
            format!("{:.2}", p.wait_h.mean),
            format!("{:.2}", p.wait_h.p95),
            p.deadline_misses.to_string(),
            format!("{:.3}", p.data_moved_tb),
            format!("{:.0}", p.objective_cny),
            p.lp_gap.map_or("-".into(), pct),
        ]);
    }
    out.push_str(&table(&rows));
    let _ = writeln!(out);
    match &report.lp_bound {
        LpBoundReport::Computed { bound } => {
            let _ = writeln!(
                out,
                "LP lower bound: {:.0} CNY ({} variables, {} constraints, {})",
                bound.value, bound.variables, bound.constraints, bound.solver
            );
        }
        LpBoundReport::NotComputed { reason } => {
            let _ = writeln!(out, "LP lower bound: not computed ({reason})");
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "utilisation per site (busy / capacity over {:.0} h):",
        report.span_hours
    );
    let mut rows: Vec<Vec<String>> = vec![
        std::iter::once("site".to_string())
            .chain(report.policies.iter().map(|p| p.policy.clone()))
            .collect(),
    ];
    if let Some(first) = report.policies.first() {
        for (s, site) in first.sites.iter().enumerate() {
            let mut row = vec![site.site.clone()];
            for p in &report.policies {
                let u = &p.sites[s].utilisation;
                row.push(
                    u.iter()
                        .map(|(c, v)| format!("{c} {}", pct(*v)))
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
            rows.push(row);
        }
    }
    out.push_str(&table(&rows));
    for p in &report.policies {
        let Some(pre) = &p.preemption else { continue };
        let _ = writeln!(
            out,
            "\n{}: {} preemptions of {} jobs; work lost {:.1} run-hours, {:.1} unit-hours, {:.2} CNY",
            p.policy,
            pre.preemptions,
            pre.jobs_preempted,
            pre.lost_run_h,
            pre.lost_unit_h,
            pre.lost_cny
        );
        let mut rows = vec![["class", "done", "wait mean h"].map(String::from).to_vec()];
        for c in &pre.classes {
            rows.push(vec![
                c.class.clone(),
                c.done.to_string(),
                format!("{:.2}", c.mean_wait_h),
            ]);
        }
        out.push_str(&table(&rows));
    }
    for p in &report.policies {
        let Some(fair) = &p.fairness else { continue };
        let _ = writeln!(
            out,
            "\n{}: fair share per tenant (Jain's index of used ÷ entitled: {:.3}):",
            p.policy, fair.jain_index
        );
        let mut rows = vec![
            [
                "tenant",
                "weight",
                "entitled",
                "used",
                "jobs",
                "done",
                "wait mean h",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for t in &fair.tenants {
            rows.push(vec![
                t.tenant.clone(),
                format!("{}", t.weight),
                pct(t.entitled),
                pct(t.used),
                t.jobs.to_string(),
                t.done.to_string(),
                format!("{:.2}", t.mean_wait_h),
            ]);
        }
        out.push_str(&table(&rows));
    }
    out.push_str(&render_explanations(&report.explanations));
    for p in &report.policies {
        if !p.jobs.rejected_by_reason.is_empty() {
            let _ = writeln!(out, "\n{} rejected:", p.policy);
            for (reason, n) in &p.jobs.rejected_by_reason {
                let _ = writeln!(out, "  {n:>7}  {reason}");
            }
        }
    }
    out
}

/// Left-aligns the first column and right-aligns the others.
pub fn table(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, s)| {
                let pad = widths[c] - s.chars().count();
                if c == 0 {
                    format!("{s}{}", " ".repeat(pad))
                } else {
                    format!("{}{s}", " ".repeat(pad))
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
