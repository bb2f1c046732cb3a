//! Sites: as configured and drained, their price and carbon over time, and what
//! their agents report.

use crate::agents::Telemetry;
use serde::{Deserialize, Serialize};
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
