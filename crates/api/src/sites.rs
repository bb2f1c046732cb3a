//! Sites: as configured and drained, their price and carbon over time, and what
//! their agents report.

use crate::agents::Telemetry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use suanwang_model::Site;

/// A site as the API shows it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteDoc {
    /// Id.
    pub id: String,
    /// The site as configured (the topology with operators' edits).
    pub site: Site,
    /// Set when the site takes no new work.
    pub drained: Option<DrainDoc>,
    /// True if an agent heartbeated within the lease time, false if its agents
    /// fell silent, null if no agent ever joined.
    pub reachable: Option<bool>,
    /// What the site declares, what its live agents measure, and what the
    /// scheduler plans with (the smaller of the two per class).
    pub capacity: CapacityDoc,
}

/// How a site's measured capacity compares with its declared capacity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CapacityStatus {
    /// No live agent has measured the site: the scheduler plans with what it
    /// declares (a site without agents, or a simulated network).
    #[default]
    Unmeasured,
    /// Measured equals declared in every class.
    AsDeclared,
    /// Some class measures less than declared: the scheduler plans with the
    /// measured figure there.
    BelowDeclared,
    /// No class measures less than declared and some measure more: the
    /// scheduler still plans with the declared figure.
    AboveDeclared,
}

/// A site's capacity: declared, measured and planned, units per class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CapacityDoc {
    /// How measured compares with declared.
    pub status: CapacityStatus,
    /// Units per class the site declares (its topology entry, as edited by its
    /// provider or an operator).
    #[schema(schema_with = crate::agents::units_per_class)]
    pub declared: BTreeMap<String, u64>,
    /// Units per class its live agents measure, summed over them (their latest
    /// heartbeat, else their registration); null while no live agent measured.
    pub measured: Option<BTreeMap<String, u64>>,
    /// Units per class the scheduler plans with: the smaller of declared and
    /// measured, or declared while unmeasured.
    #[schema(schema_with = crate::agents::units_per_class)]
    pub planned: BTreeMap<String, u64>,
    /// Live agents whose figures make up `measured`.
    pub live_agents: u32,
    /// Results of the agents' verification probes (`suanwang agent --probe`)
    /// beside the nominal figure of each class (规格 vs 实测).
    #[serde(default)]
    pub probes: Vec<ProbeDoc>,
}

/// One probe result as a site shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProbeDoc {
    /// The agent that ran it.
    pub agent: String,
    /// What it measured.
    pub probe: crate::agents::Probe,
    /// Nominal throughput of the units probed, GFLOPS (the class's dense
    /// FP16 figure per card times the cards probed; none for CPUs).
    pub nominal_gflops: Option<f64>,
    /// Where the nominal figure comes from.
    pub nominal_source: Option<String>,
}

/// A drain.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DrainDoc {
    /// Since, unix seconds.
    pub since: i64,
    /// Why, as the operator said.
    pub reason: Option<String>,
}

/// Body of a drain (optional: an empty body drains without a reason).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrainRequest {
    /// Why, for other operators.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Query of `GET /v1/sites/{id}/series`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// Hours before now (default 24).
    #[param(minimum = 0, maximum = 168)]
    pub before_h: Option<u32>,
    /// Hours after now (default 24).
    #[param(minimum = 0, maximum = 168)]
    pub after_h: Option<u32>,
}

/// One slot of a site's series.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SeriesPoint {
    /// Start of the slot, unix seconds.
    pub at: i64,
    /// Grid carbon intensity, kg CO2/kWh.
    pub carbon_kg_per_kwh: f64,
    /// Green-power share, 0..1.
    pub green_share: f64,
    /// Electricity price, CNY/kWh.
    pub tariff_cny_per_kwh: f64,
    /// After now: what the scheduler plans with.
    pub forecast: bool,
}

/// A site's price and carbon over time (`GET /v1/sites/{id}/series`).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SeriesDoc {
    /// Site id.
    pub site: String,
    /// Now, unix seconds.
    pub now: i64,
    /// Spacing of the points, seconds (the scheduler's slot).
    pub slot_secs: i64,
    /// Where the carbon shape comes from (it is borrowed from another grid).
    pub carbon_label: String,
    /// Where past values come from: `model` (the topology's series) until a live
    /// grid feed is configured, so today actual and forecast are the same model.
    pub actual_source: String,
    /// What the forecast is: the series the scheduler plans with.
    pub forecast_source: String,
    /// One per slot, oldest first.
    pub points: Vec<SeriesPoint>,
}

/// Query of `GET /v1/sites/{id}/telemetry`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TelemetryQuery {
    /// Samples at or after this, unix seconds (default: the last hour).
    pub since: Option<i64>,
    /// At most this many, the newest (default 500).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

/// One telemetry sample as stored.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TelemetrySample {
    /// The agent that sent it.
    pub agent: String,
    /// When, unix seconds.
    pub at: i64,
    /// The sample.
    pub sample: Telemetry,
}

/// A site's recent telemetry (`GET /v1/sites/{id}/telemetry`).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TelemetryDoc {
    /// Site.
    pub site: String,
    /// As in [`SiteDoc`].
    pub reachable: Option<bool>,
    /// Samples, oldest first.
    pub samples: Vec<TelemetrySample>,
}

/// A job at a site as its provider sees it: what it holds and when, without the
/// tenant's command, environment, working directory or logs.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteJob {
    /// Id.
    pub id: i64,
    /// Owning tenant's id.
    pub tenant_id: i64,
    /// State.
    pub state: crate::JobState,
    /// Planned (or actual) start, unix seconds.
    pub start_at: Option<i64>,
    /// Resources held for the whole run.
    pub demand: Vec<crate::jobs::DemandIn>,
    /// Nodes the job spans.
    pub gang: u32,
    /// Run time.
    pub duration: crate::jobs::DurationValue,
    /// How many times it was handed to an agent.
    pub attempt: i64,
    /// The agent holding (or that last held) it.
    pub agent: Option<String>,
    /// When it started running, unix seconds.
    pub started_at: Option<i64>,
    /// When it ended, unix seconds.
    pub finished_at: Option<i64>,
    /// Exit code, once finished.
    pub exit_code: Option<i32>,
}

/// A page of a site's jobs, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteJobPage {
    /// The jobs.
    pub jobs: Vec<SiteJob>,
    /// Pass as `after` for the next page; absent on the last.
    pub next: Option<i64>,
}

/// Query of `GET /v1/sites/{id}/jobs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SiteJobQuery {
    /// Only jobs in this state.
    pub state: Option<crate::JobState>,
    /// Jobs with ids above this (the previous page's `next`).
    pub after: Option<i64>,
    /// Most jobs (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}
