//! `GET /v1/savings`: what the jobs that ran cost and emitted, against the
//! `local-fifo` counterfactual for the same jobs, per tenant and for the network.
//!
//! Actual: each job at the site and start it got (its real start once it ran),
//! counted on the topology's series — the same terms the scheduler scores. The
//! counterfactual: the same jobs, with the same submission times, replayed through
//! the simulator under `local-fifo` (each at its home site, first come first
//! served, contending with each other as they would have). Only jobs both sides
//! ran are compared; the others are counted, not hidden. Computed for every tenant
//! at once off the async workers and kept for [`CACHE`].

use crate::auth::Principal;
use crate::error::ApiError;
use crate::{Shared, authenticate};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use suanwang_model::SimTime;
use suanwang_sched::{Policy, PolicyKind, Terms};
use suanwang_sim::engine::{JobResult, SimConfig, actual_terms, simulate};
use suanwang_sim::world::World;
use suanwang_store::{JobFilter, JobRecord, JobState, Store};
use suanwang_topology::{SeriesModel, Topology};

/// How long a computed answer is served again.
pub const CACHE: Duration = Duration::from_secs(30);
/// Most jobs compared in one answer (the newest of the window).
pub const MAX_JOBS: usize = 200_000;

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

impl Totals {
    fn add(&mut self, terms: &Terms) {
        self.cost_cny += terms.money().0;
        self.compute_cny += terms.compute_cny.0;
        self.energy_cny += terms.energy_cny.0;
        self.transfer_cny += terms.transfer_cny.0;
        self.carbon_kg += terms.carbon_kg.0;
        self.energy_kwh += terms.energy_kwh.0;
    }
}

/// One tenant's (or the network's) comparison.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Comparison {
    /// Tenant id (absent for the network).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<i64>,
    /// Tenant name (absent for the network).
    #[serde(skip_serializing_if = "Option::is_none")]
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

impl Comparison {
    fn close(&mut self) {
        self.saved_cny = self.local_fifo.cost_cny - self.actual.cost_cny;
        self.saved_kg = self.local_fifo.carbon_kg - self.actual.carbon_kg;
    }
}

/// `GET /v1/savings`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavingsQuery {
    /// Jobs submitted in the last this many days (1..=90, default 7), network time.
    pub days: Option<u32>,
}

/// The last answer per window length.
#[derive(Debug, Default)]
pub struct Cache(std::sync::Mutex<BTreeMap<u32, (Instant, Arc<SavingsDoc>)>>);

const LABEL: &str = "actual: each job at the site and start it got; counterfactual: the same jobs with \
the same submission times replayed through the simulator under local-fifo (home site, or the \
nearest that can run the job; first come first served, contending with each other). Both on the topology's price and carbon series (carbon \
shape borrowed from another grid). Jobs local-fifo could not run are excluded and counted.";

/// Compares the placed jobs of `records` (all tenants) with `local-fifo`.
pub fn compare(
    topology: &Topology,
    records: &[JobRecord],
    names: &BTreeMap<i64, String>,
    from: i64,
    to: i64,
) -> SavingsDoc {
    let epoch = from - from.rem_euclid(86400);
    let series = SeriesModel::new(topology, epoch, None, 0.0);
    let world = World::new(topology.clone(), series, 900, (to - epoch) + 86400);
    let mut network = Comparison::default();
    let mut tenants: BTreeMap<i64, Comparison> = BTreeMap::new();
    let mut requests = Vec::with_capacity(records.len());
    let mut actual = Vec::with_capacity(records.len());
    for record in records {
        let site = record
            .site
            .as_deref()
            .and_then(|s| world.sites.iter().position(|v| v.id == s));
        let start = record.started_at.or(record.start_at);
        match (
            crate::scheduler::request(&world, epoch, record),
            site,
            start,
        ) {
            (Ok(request), Some(site), Some(start)) => {
                let (terms, _) = actual_terms(&world, &request, site, SimTime(start - epoch));
                actual.push(Some(terms));
                requests.push(Ok(request));
            }
            _ => {
                actual.push(None);
                requests.push(Err("not comparable".to_string()));
            }
        }
    }
    let config = SimConfig {
        forecast_error: 0.0,
        ..SimConfig::default()
    };
    let run = simulate(
        &world,
        &requests,
        &Policy::new(PolicyKind::LocalFifo),
        &config,
        &mut |_| {},
    );
    for ((record, actual), local) in records.iter().zip(&actual).zip(&run.jobs) {
        let row = tenants
            .entry(record.tenant_id)
            .or_insert_with(|| Comparison {
                tenant_id: Some(record.tenant_id),
                tenant: names.get(&record.tenant_id).cloned(),
                ..Comparison::default()
            });
        match (actual, local) {
            (Some(actual), JobResult::Done { terms, .. }) => {
                for c in [&mut *row, &mut network] {
                    c.jobs += 1;
                    c.actual.add(actual);
                    c.local_fifo.add(terms);
                }
            }
            _ => {
                row.excluded += 1;
                network.excluded += 1;
            }
        }
    }
    network.close();
    let tenants = tenants
        .into_values()
        .map(|mut c| {
            c.close();
            c
        })
        .collect();
    SavingsDoc {
        from,
        to,
        label: LABEL.into(),
        network: Some(network),
        tenants,
    }
}

/// Jobs submitted since `from` that were placed and not cancelled: the ones that
/// ran, run, or are booked to run.
async fn placed_since<S: Store>(store: &S, from: i64) -> Result<Vec<JobRecord>, ApiError> {
    let filter = JobFilter {
        created_after: Some(from),
        ..Default::default()
    };
    let mut out: Vec<JobRecord> = crate::scheduler::all_matching(store, filter)
        .await?
        .into_iter()
        .filter(|j| {
            j.site.is_some()
                && !matches!(j.state, JobState::Pending | JobState::Cancelled)
                && (j.started_at.is_some() || j.start_at.is_some())
        })
        .collect();
    if out.len() > MAX_JOBS {
        out.drain(..out.len() - MAX_JOBS);
    }
    Ok(out)
}

fn visible(doc: &SavingsDoc, principal: &Principal) -> SavingsDoc {
    match principal.tenant_id {
        Some(tenant) if principal.role == suanwang_store::Role::Tenant => SavingsDoc {
            network: None,
            tenants: doc
                .tenants
                .iter()
                .filter(|c| c.tenant_id == Some(tenant))
                .cloned()
                .collect(),
            ..doc.clone()
        },
        _ => doc.clone(),
    }
}

#[utoipa::path(get, path = "/v1/savings", tag = "network",
    params(("days" = Option<u32>, Query, description = "jobs submitted in the last DAYS days (1..=90, default 7)")),
    responses((status = 200, body = SavingsDoc), (status = 401, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn savings<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    query: Result<axum::extract::Query<SavingsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SavingsDoc>, ApiError> {
    let principal = authenticate(&app, &headers).await?;
    let axum::extract::Query(query) = query.map_err(|e| ApiError::BadRequest {
        message: e.body_text(),
        field: None,
    })?;
    let days = query.days.unwrap_or(7);
    if !(1..=90).contains(&days) {
        return Err(ApiError::Invalid {
            message: "days must be 1..=90".into(),
            field: "days".into(),
        });
    }
    let cached = app
        .savings
        .0
        .lock()
        .ok()
        .and_then(|c| c.get(&days).cloned())
        .filter(|(at, _)| at.elapsed() < CACHE);
    let doc = match cached {
        Some((_, doc)) => doc,
        None => {
            let to = app.clock.now();
            let from = to - i64::from(days) * 86400;
            let records = placed_since(&app.store, from).await?;
            let names: BTreeMap<i64, String> = app
                .store
                .tenants()
                .await?
                .into_iter()
                .map(|t| (t.id, t.name))
                .collect();
            let topology = app.topology();
            let doc =
                tokio::task::spawn_blocking(move || compare(&topology, &records, &names, from, to))
                    .await
                    .map_err(|e| ApiError::Internal(format!("savings: {e}")))?;
            let doc = Arc::new(doc);
            if let Ok(mut cache) = app.savings.0.lock() {
                cache.insert(days, (Instant::now(), Arc::clone(&doc)));
            }
            doc
        }
    };
    Ok(Json(visible(&doc, &principal)))
}
