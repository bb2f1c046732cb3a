//! What a placement decision shows: the candidate chosen and the best ones not
//! chosen, each with its score terms on the forecast the scheduler saw. The
//! simulator's `--explain` and the API's `GET /v1/jobs/{id}/explain` show the same
//! type.

use serde::{Deserialize, Serialize};

/// A candidate as shown in an explanation: terms on the forecast the scheduler saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CandidateView {
    /// Site id.
    pub site: String,
    /// Start, hours since the epoch.
    pub start_h: f64,
    /// Objective value, CNY-equivalent.
    pub score: f64,
    /// Compute price, CNY.
    pub compute_cny: f64,
    /// Electricity, CNY.
    pub energy_cny: f64,
    /// Emissions, kg CO2.
    pub carbon_kg: f64,
    /// Transfer price, CNY.
    pub transfer_cny: f64,
    /// Transfer time, hours.
    pub transfer_h: f64,
    /// Waiting, hours.
    pub wait_h: f64,
    /// Lateness, hours.
    pub late_h: f64,
    /// Refused by `balanced`'s Pareto guard.
    pub guard_rejected: bool,
}

/// Why one job went where it went under one policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Explanation {
    /// Trace index of the job.
    pub job: usize,
    /// Policy.
    pub policy: String,
    /// The candidate chosen.
    pub chosen: CandidateView,
    /// The best candidates not chosen, best first.
    pub alternatives: Vec<CandidateView>,
    /// Sites skipped because a lower bound on their score was already worse:
    /// (site, bound).
    pub pruned: Vec<(String, f64)>,
}
