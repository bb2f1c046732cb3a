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

use crate::Shared;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Caller, Query};
use axum::Json;
use axum::extract::State;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use suanwang_api::{Comparison, SavingsDoc, SavingsQuery, Totals};
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

/// Adds a run's terms to `totals`.
fn add(totals: &mut Totals, terms: &Terms) {
    totals.cost_cny += terms.money().0;
    totals.compute_cny += terms.compute_cny.0;
    totals.energy_cny += terms.energy_cny.0;
    totals.transfer_cny += terms.transfer_cny.0;
    totals.carbon_kg += terms.carbon_kg.0;
    totals.energy_kwh += terms.energy_kwh.0;
}

/// Fills in what a comparison saved.
fn close(comparison: &mut Comparison) {
    comparison.saved_cny = comparison.local_fifo.cost_cny - comparison.actual.cost_cny;
    comparison.saved_kg = comparison.local_fifo.carbon_kg - comparison.actual.carbon_kg;
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
            crate::scheduler::request(&world, epoch, record, None),
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
                    add(&mut c.actual, actual);
                    add(&mut c.local_fifo, terms);
                }
            }
            _ => {
                row.excluded += 1;
                network.excluded += 1;
            }
        }
    }
    close(&mut network);
    let tenants = tenants
        .into_values()
        .map(|mut c| {
            close(&mut c);
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

#[utoipa::path(get, path = "/v1/savings", operation_id = "savings", tag = "network", params(SavingsQuery),
    responses((status = 200, description = "cost and carbon of the placed jobs against local-fifo, per tenant (a tenant sees its own) and for the network", body = SavingsDoc),
        (status = 422, description = "`days` is out of range", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn savings<S: Store>(
    State(app): Shared<S>,
    Caller(principal): Caller,
    Query(query): Query<SavingsQuery>,
) -> Result<Json<SavingsDoc>, ApiError> {
    let days = query.days.unwrap_or(7);
    if !(1..=90).contains(&days) {
        return Err(ApiError::invalid("days", "days must be 1..=90"));
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
