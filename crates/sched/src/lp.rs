//! A lower bound on the objective of any schedule: the LP relaxation of a fluid
//! (preemptive, migratory) version of the placement problem, solved with Clarabel
//! (pure Rust) through `good_lp`.
//!
//! Variables: `x[j,s,h]` ∈ [0, 1], hours of job j run at site s in hour h, for the
//! hours in j's window at s (from its earliest start there to its deadline, at most
//! `job_cells` hours and within the instance's horizon); `o[j]` ≥ 0, hours of j run
//! outside those cells (uncapacitated, priced at lower bounds); `r[j]` ∈ [0, 1], the
//! rejected fraction of j.
//!
//! Constraints: `Σ x[j,·,·] + o[j] + D_j·r[j] = D_j` (every hour of every job runs or
//! is rejected); `Σ_j units[j,c]·x[j,s,h] ≤ capacity[s,c]` per site, hour and class
//! (and power where capped).
//!
//! Every non-preemptive schedule maps to a feasible point whose cost is no larger
//! than the schedule's objective, because each coefficient lower-bounds the true
//! cost of that hour of work: compute price exactly; electricity and carbon at the
//! cheapest quarter-hour of the cell; transfer spread pro rata; waiting and lateness
//! at the least a job working in that hour can have (a job working in hour h
//! started after h − D and ends after h). So the LP optimum is a valid lower bound.
//! It is weaker than the time-indexed LP relaxation, which would have D times as
//! many non-zeros.

use crate::calendar::{Need, SiteCapacity};
use crate::policy::Weights;
use good_lp::{Expression, ProblemVariables, Solution, SolverModel, Variable, clarabel, variable};
use serde::Serialize;
use std::collections::BTreeMap;

/// One site a job may run at.
#[derive(Debug, Clone, PartialEq)]
pub struct LpOption {
    /// Site index.
    pub site: usize,
    /// Earliest start there (release plus transfer), hours since the epoch.
    pub earliest_h: f64,
    /// Compute price of the job there, CNY per hour.
    pub compute_per_hour: f64,
    /// Facility power of the job there, kW.
    pub kw: f64,
    /// Transfer price of the job's input to there, CNY.
    pub transfer_cny: f64,
}

/// One job of the instance.
#[derive(Debug, Clone, PartialEq)]
pub struct LpJob {
    /// Run time, hours.
    pub duration_h: f64,
    /// Release, hours since the epoch.
    pub release_h: f64,
    /// Deadline, hours since the epoch.
    pub deadline_h: Option<f64>,
    /// End of the window whose hours are modelled as cells (deadline, or release +
    /// maximum delay + run time), hours.
    pub window_end_h: f64,
    /// Units held.
    pub need: Need,
    /// Cost of rejecting the job, CNY.
    pub reject_cny: f64,
    /// Sites it may run at (empty: it can only be rejected).
    pub options: Vec<LpOption>,
}

/// A whole instance.
#[derive(Debug, Clone, PartialEq)]
pub struct LpInstance {
    /// First hour of the cell grid, hours since the epoch.
    pub start_h: i64,
    /// Number of hour cells.
    pub n_hours: usize,
    /// Capacity per site.
    pub capacity: Vec<SiteCapacity>,
    /// Per site and hour, the least (energy weight × tariff + carbon price ×
    /// effective carbon) over the hour's slots, CNY per kWh: `[site * n_hours + h]`.
    pub rate: Vec<f64>,
    /// Per site, the least such rate at any time a job could run there.
    pub site_min_rate: Vec<f64>,
    /// Objective weights.
    pub weights: Weights,
    /// Most hour cells modelled per job and site.
    pub job_cells: usize,
    /// Jobs.
    pub jobs: Vec<LpJob>,
}

/// The bound and the size of the LP that gave it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LpBound {
    /// Lower bound on the objective, CNY (the solver's optimum less a 1e-6
    /// relative margin for its tolerance).
    pub value: f64,
    /// Variables.
    pub variables: usize,
    /// Constraints.
    pub constraints: usize,
    /// Solver used.
    pub solver: String,
}

/// Why no bound was computed.
#[derive(Debug, thiserror::Error)]
pub enum LpError {
    /// The solver failed.
    #[error("LP solver failed: {0}")]
    Solver(String),
}

/// Solves the relaxation of `instance` for a lower bound.
pub fn lower_bound(instance: &LpInstance) -> Result<LpBound, LpError> {
    let w = &instance.weights;
    let mut vars = ProblemVariables::new();
    let mut objective = Expression::from(0.0);
    let mut constant = 0.0;
    let mut assignments: Vec<(Expression, f64)> = Vec::new();
    // Capacity rows keyed by (site, hour, dimension); BTreeMap keeps the order stable.
    let mut rows: BTreeMap<(usize, usize, usize), Vec<(Variable, f64)>> = BTreeMap::new();
    let mut n_vars = 0;
    let end_h = instance.start_h + instance.n_hours as i64;
    for job in &instance.jobs {
        if job.options.is_empty() {
            constant += job.reject_cny;
            continue;
        }
        let d = job.duration_h.max(1e-6);
        let mut total = Expression::from(0.0);
        let mut first_unmodelled = f64::INFINITY;
        for opt in &job.options {
            let first = (opt.earliest_h.floor() as i64).max(instance.start_h);
            let last = (job.window_end_h.ceil() as i64)
                .min(end_h)
                .min(first + instance.job_cells as i64);
            first_unmodelled = first_unmodelled.min(last.max(first) as f64);
            let fixed = w.price * opt.compute_per_hour + w.transfer * opt.transfer_cny / d;
            for h in first..last {
                let cell = (h - instance.start_h) as usize;
                let hour = h as f64;
                let wait_lb = (hour - d - job.release_h).max(0.0);
                let late_lb = job.deadline_h.map_or(0.0, |dl| (hour - dl).max(0.0));
                let cost = fixed
                    + opt.kw * instance.rate[opt.site * instance.n_hours + cell]
                    + opt.compute_per_hour * (w.wait * wait_lb + w.late * late_lb) / d;
                let x = vars.add(variable().min(0.0).max(1.0));
                n_vars += 1;
                objective += cost * x;
                total += x;
                for (class, units) in job.need.classes() {
                    rows.entry((opt.site, cell, class))
                        .or_default()
                        .push((x, units as f64));
                }
                if instance.capacity[opt.site].watts.is_some() {
                    rows.entry((opt.site, cell, usize::MAX))
                        .or_default()
                        .push((x, opt.kw * 1000.0));
                }
            }
        }
        // Work outside the modelled cells: the cheapest site at its cheapest rate,
        // and waiting/lateness at least as at the first unmodelled hour.
        let t = first_unmodelled;
        let outside = job
            .options
            .iter()
            .map(|o| {
                w.price * o.compute_per_hour
                    + o.kw * instance.site_min_rate[o.site]
                    + w.transfer * o.transfer_cny / d
            })
            .fold(f64::INFINITY, f64::min)
            + job
                .options
                .iter()
                .map(|o| o.compute_per_hour)
                .fold(f64::INFINITY, f64::min)
                * (w.wait * (t - d - job.release_h).max(0.0)
                    + w.late * job.deadline_h.map_or(0.0, |dl| (t - dl).max(0.0)))
                / d;
        let o = vars.add(variable().min(0.0));
        let r = vars.add(variable().min(0.0).max(1.0));
        n_vars += 2;
        objective += outside * o + job.reject_cny * r;
        total += o + d * r;
        assignments.push((total, d));
    }
    let n_constraints = assignments.len() + rows.len();
    if n_vars == 0 {
        return Ok(LpBound {
            value: constant,
            variables: 0,
            constraints: 0,
            solver: "none".into(),
        });
    }
    let mut problem = vars.minimise(objective.clone()).using(clarabel);
    for (expr, d) in assignments {
        problem = problem.with(expr.eq(d));
    }
    for ((site, _, dim), entries) in rows {
        let cap = if dim == usize::MAX {
            instance.capacity[site].watts.unwrap_or(u32::MAX) as f64
        } else {
            instance.capacity[site].units[dim] as f64
        };
        let expr: Expression = entries.into_iter().map(|(x, u)| u * x).sum();
        problem = problem.with(expr.leq(cap));
    }
    let solution = problem
        .solve()
        .map_err(|e| LpError::Solver(e.to_string()))?;
    let value = solution.eval(&objective) + constant;
    Ok(LpBound {
        value: value - value.abs() * 1e-6,
        variables: n_vars,
        constraints: n_constraints,
        solver: "clarabel (interior point, pure Rust)".into(),
    })
}

/// The bound as reported: computed, or why not.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum LpBoundReport {
    /// Computed.
    Computed {
        /// The bound.
        #[serde(flatten)]
        bound: LpBound,
    },
    /// Not computed.
    NotComputed {
        /// Why.
        reason: String,
    },
}
