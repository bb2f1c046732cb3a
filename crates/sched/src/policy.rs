//! Placement policies and the weights of the joint objective.

use crate::snapshot::Terms;
use serde::{Deserialize, Serialize};
use suanwang_model::SimDuration;

/// Which placement rule to use. The five baselines are kept for honest comparison;
/// `Balanced` is suanwang's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// Run at the origin region's home site, first come first served, as early as
    /// capacity allows.
    LocalFifo,
    /// Run at the site whose job classes are least booked now, as early as possible.
    LeastLoaded,
    /// Run at the site with the lowest price (compute plus electricity) for the job,
    /// as early as possible, like an intercloud broker.
    Cheapest,
    /// Run at the site with the lowest carbon intensity now, as early as possible:
    /// spatial shift only.
    GreenestNow,
    /// Run at the home site, at the start within the deadline that emits least:
    /// temporal shift only.
    WaitForGreen,
    /// Choose site and start jointly, minimising the weighted objective under
    /// deadlines, residency and latency targets.
    Balanced,
}

impl PolicyKind {
    /// Every policy, in report order.
    pub const ALL: [PolicyKind; 6] = [
        PolicyKind::LocalFifo,
        PolicyKind::LeastLoaded,
        PolicyKind::Cheapest,
        PolicyKind::GreenestNow,
        PolicyKind::WaitForGreen,
        PolicyKind::Balanced,
    ];

    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::LocalFifo => "local-fifo",
            PolicyKind::LeastLoaded => "least-loaded",
            PolicyKind::Cheapest => "cheapest",
            PolicyKind::GreenestNow => "greenest-now",
            PolicyKind::WaitForGreen => "wait-for-green",
            PolicyKind::Balanced => "balanced",
        }
    }

    /// Parses a policy name.
    pub fn parse(text: &str) -> Option<PolicyKind> {
        PolicyKind::ALL.into_iter().find(|p| p.name() == text)
    }

    /// Whether the policy considers every allowed site (else only the home site).
    pub fn moves_in_space(self) -> bool {
        !matches!(self, PolicyKind::LocalFifo | PolicyKind::WaitForGreen)
    }

    /// Whether the policy considers later starts than the earliest feasible one.
    pub fn moves_in_time(self) -> bool {
        matches!(self, PolicyKind::WaitForGreen | PolicyKind::Balanced)
    }
}

impl std::fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

pub use suanwang_model::Weights;

/// The objective value of `terms` under `weights`, for a job whose compute costs
/// `compute_per_hour` CNY per hour at the candidate site.
pub fn score(weights: &Weights, terms: &Terms, compute_per_hour: f64) -> f64 {
    weights.price * terms.compute_cny.0
        + weights.energy * terms.energy_cny.0
        + weights.carbon_cny_per_kg() * terms.carbon_kg.0
        + weights.transfer * terms.transfer_cny.0
        + compute_per_hour
            * (weights.wait * terms.wait_secs.as_hours()
                + weights.late * terms.late_secs.as_hours())
}

/// A policy with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// The rule.
    pub kind: PolicyKind,
    /// Objective weights (used by `balanced`; also reported for the others).
    pub weights: Weights,
    /// How far a job without a deadline may be delayed.
    pub max_delay: SimDuration,
    /// How many rejected candidates each decision keeps for its explanation.
    pub explain_top: usize,
    /// `balanced` only: accept a candidate only if, on the forecast, it costs no
    /// more money (compute + energy + transfer) and emits no more carbon than
    /// running at the home site at the earliest start (the local-FIFO
    /// counterfactual), whenever that reference meets the deadline. The weighted
    /// objective then chooses among these Pareto improvements.
    pub pareto_guard: bool,
}

impl Policy {
    /// `kind` with default parameters.
    pub fn new(kind: PolicyKind) -> Policy {
        Policy {
            kind,
            weights: Weights::default(),
            max_delay: SimDuration::hours(24),
            explain_top: 3,
            pareto_guard: true,
        }
    }
}
