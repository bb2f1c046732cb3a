//! The joint objective's weights: how the scheduler trades compute price,
//! electricity, carbon, transfer, waiting and lateness against each other, in
//! CNY-equivalent. The core scores with them (`suanwang_sched::policy::score`);
//! reports and the API show them beside each placement.

use serde::{Deserialize, Serialize};

/// Weights of the joint objective, in CNY-equivalent. The same weights score
/// `balanced`'s candidates, evaluate every policy's schedule, and build the LP bound.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    /// Multiplier on the compute price.
    pub price: f64,
    /// Multiplier on the electricity cost.
    pub energy: f64,
    /// Shadow price of carbon, CNY per tonne CO2.
    pub carbon_cny_per_t: f64,
    /// Multiplier on the transfer price.
    pub transfer: f64,
    /// Cost of an hour of waiting, as a fraction of an hour of the job's compute price.
    pub wait: f64,
    /// Cost of an hour past the deadline, as a fraction of an hour of the job's
    /// compute price.
    pub late: f64,
    /// Cost of rejecting a job, as a multiple of its compute price at the cheapest
    /// site allowed (used when evaluating schedules, not when placing).
    pub reject: f64,
}

impl Default for Weights {
    fn default() -> Weights {
        Weights {
            price: 1.0,
            energy: 1.0,
            carbon_cny_per_t: 500.0,
            transfer: 1.0,
            wait: 0.05,
            late: 2.0,
            reject: 10.0,
        }
    }
}

impl Weights {
    /// Carbon price per kg.
    pub fn carbon_cny_per_kg(&self) -> f64 {
        self.carbon_cny_per_t / 1000.0
    }
}
