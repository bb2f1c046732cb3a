//! The network at a glance: each site's use, power, carbon and price now, the
//! flows of jobs and data between places, and the savings against running every
//! job at home.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One site now.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteOverview {
    /// Site id.
    pub site: String,
    /// Units declared, per class.
    pub capacity: BTreeMap<String, u32>,
    /// Units the scheduler plans with, per class: the smaller of declared and
    /// measured by the site's live agents (declared while unmeasured).
    #[serde(default)]
    pub planned: BTreeMap<String, u32>,
    /// How measured compares with declared.
    #[serde(default)]
    pub capacity_status: crate::sites::CapacityStatus,
    /// Units held by running or started jobs now, per class.
    pub busy: BTreeMap<String, u32>,
    /// Jobs placed here, not yet handed to its agent.
    pub queued: usize,
    /// Jobs handed to its agent (dispatched or running): they hold units now.
    pub running: usize,
    /// True if an agent of the site heartbeated within the lease time, false if
    /// it has agents but none did, null if no agent ever joined.
    pub reachable: Option<bool>,
    /// Whether an operator drained it (it takes no new work).
    pub drained: bool,
    /// Facility power of the busy units, kW (estimated from the power model).
    pub power_kw: f64,
    /// Grid carbon intensity now, kg CO2/kWh (official factor × borrowed shape).
    pub grid_kg_per_kwh: f64,
    /// Green-power share now.
    pub green_share: f64,
    /// Electricity price now, CNY/kWh.
    pub tariff_cny_per_kwh: f64,
    /// Compute price of the busy units, CNY per hour.
    pub compute_cny_per_hour: f64,
}

/// The whole network now (`GET /v1/overview`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Overview {
    /// Unix seconds.
    pub at: i64,
    /// Jobs waiting for a placement.
    pub pending: usize,
    /// Per site.
    pub sites: Vec<SiteOverview>,
    /// Facility power of all busy units, kW.
    pub power_kw: f64,
    /// Emissions rate after green power, kg CO2 per hour.
    pub carbon_kg_per_hour: f64,
    /// Compute plus electricity, CNY per hour.
    pub cost_cny_per_hour: f64,
}

/// Jobs and data on their way between two places now: live jobs (placed,
/// dispatched or running) submitted from `from` and placed at `to`, and the
/// input data that lives at `from` and moves to `to`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Flow {
    /// Region or site id the jobs (or their data) come from.
    pub from: String,
    /// Site id they run at.
    pub to: String,
    /// Live jobs submitted from `from`, placed at `to`.
    pub jobs: usize,
    /// How many of those are dispatched or running.
    pub running: usize,
    /// Input data living at `from` that live jobs at `to` read, GiB.
    pub data_gib: f64,
}

/// The flows a caller may see (`GET /v1/flows`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Flows {
    /// Unix seconds.
    pub at: i64,
    /// One per (from, to) pair, from != to, by `from` then `to`.
    pub flows: Vec<Flow>,
}

/// Money, energy and carbon of a set of runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Totals {
    /// Compute plus electricity plus transfer, CNY.
    pub cost_cny: f64,
    /// Resource price, CNY.
    pub compute_cny: f64,
    /// Electricity, CNY.
    pub energy_cny: f64,
    /// Moving input data, CNY.
    pub transfer_cny: f64,
    /// Emissions after green power, kg CO2.
    pub carbon_kg: f64,
    /// Facility energy, kWh.
    pub energy_kwh: f64,
}

/// One tenant's (or the network's) comparison.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Comparison {
    /// Tenant id (absent for the network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<i64>,
    /// Tenant name (absent for the network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Jobs compared (run, or booked to run, on both sides).
    pub jobs: usize,
    /// Jobs left out: no site could run them under `local-fifo`, or their site
    /// left the topology.
    pub excluded: usize,
    /// What the compared jobs cost and emitted as placed.
    pub actual: Totals,
    /// What they would have under `local-fifo`.
    pub local_fifo: Totals,
    /// `local_fifo.cost_cny − actual.cost_cny` (positive: money saved).
    pub saved_cny: f64,
    /// `local_fifo.carbon_kg − actual.carbon_kg` (positive: emissions avoided).
    pub saved_kg: f64,
}

/// Savings against `local-fifo` (`GET /v1/savings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SavingsDoc {
    /// Window start (jobs submitted since), unix seconds.
    pub from: i64,
    /// Window end (when computed), unix seconds.
    pub to: i64,
    /// How the comparison is made.
    pub label: String,
    /// The whole network (operators and admins only; null for a tenant).
    pub network: Option<Comparison>,
    /// Per tenant (a tenant sees only its own row), by tenant id.
    pub tenants: Vec<Comparison>,
}

/// Query of `GET /v1/savings`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SavingsQuery {
    /// Jobs submitted in the last this many days, network time (default 7).
    #[param(minimum = 1, maximum = 90)]
    pub days: Option<u32>,
}
