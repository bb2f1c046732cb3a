//! `GET /v1/overview`: the network at a glance — per site, capacity and what is
//! booked now, power, carbon intensity, green share and price; and the totals.
//! Computed from the store's booked jobs and the topology's series at request time.
//! The same scan gives the flows (`GET /v1/flows`): live jobs and their input data
//! moving from where they come from to the site that runs them.

use crate::error::ApiError;
use crate::extract::Caller;
use crate::{Shared, auth::Principal};
use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use std::collections::BTreeMap;
use suanwang_api::{DurationValue, Flow, Flows, JobSubmission, Overview, SiteOverview};
use suanwang_model::{ResourceClass, SimDuration, SimTime};
use suanwang_store::{JobState, Store};
use suanwang_topology::{SeriesModel, Topology};

/// Flows per tenant: (tenant id, from, to) → flow.
#[derive(Debug, Clone, Default)]
pub struct TenantFlows(BTreeMap<(i64, String, String), Flow>);

impl TenantFlows {
    /// The flows of the jobs `may_see` accepts (by tenant id), summed per pair.
    pub fn visible(&self, at: i64, may_see: impl Fn(i64) -> bool) -> Flows {
        let mut pairs: BTreeMap<(&str, &str), Flow> = BTreeMap::new();
        for ((tenant, from, to), flow) in &self.0 {
            if !may_see(*tenant) {
                continue;
            }
            let sum = pairs.entry((from, to)).or_insert_with(|| Flow {
                from: from.clone(),
                to: to.clone(),
                ..Flow::default()
            });
            sum.jobs += flow.jobs;
            sum.running += flow.running;
            sum.data_gib += flow.data_gib;
        }
        Flows {
            at,
            flows: pairs.into_values().collect(),
        }
    }

    /// Tenants with live flows.
    pub fn tenants(&self) -> std::collections::BTreeSet<i64> {
        self.0.keys().map(|(t, _, _)| *t).collect()
    }

    fn add(&mut self, tenant: i64, from: &str, to: &str, running: bool, data_gib: f64, job: bool) {
        if from == to {
            return;
        }
        let flow = self
            .0
            .entry((tenant, from.to_string(), to.to_string()))
            .or_insert_with(|| Flow {
                from: from.to_string(),
                to: to.to_string(),
                ..Flow::default()
            });
        if job {
            flow.jobs += 1;
            flow.running += usize::from(running);
        }
        flow.data_gib += data_gib;
    }
}

fn seconds(value: &DurationValue) -> i64 {
    match value {
        DurationValue::Seconds(s) => *s,
        DurationValue::Text(t) => SimDuration::parse(t).map_or(0, |d| d.0),
    }
}

/// The overview at unix time `now`.
pub async fn overview<S: Store>(
    store: &S,
    topology: &Topology,
    now: i64,
    lease_secs: i64,
) -> Result<Overview, ApiError> {
    Ok(network(store, topology, now, lease_secs).await?.0)
}

/// The overview and the flows at unix time `now`, from one read of the live jobs.
pub async fn network<S: Store>(
    store: &S,
    topology: &Topology,
    now: i64,
    lease_secs: i64,
) -> Result<(Overview, TenantFlows), ApiError> {
    let agents = crate::sites::Agents::of_store(store, now, lease_secs).await?;
    let reach = &agents.reach;
    let drained = store.drained().await?;
    let series = SeriesModel::new(topology, 0, None, 0.0);
    let at = SimTime(now);
    let mut sites: Vec<SiteOverview> = topology
        .sites
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (planned, capacity_status) =
                crate::capacity::planned(&s.capacity, agents.measured.get(&s.id.0));
            SiteOverview {
                site: s.id.0.clone(),
                capacity: s
                    .capacity
                    .iter()
                    .filter(|(_, u)| *u > 0)
                    .map(|(c, u)| (c.name().to_string(), u))
                    .collect(),
                planned: planned
                    .iter()
                    .filter(|(_, u)| *u > 0)
                    .map(|(c, u)| (c.name().to_string(), u))
                    .collect(),
                capacity_status,
                busy: BTreeMap::new(),
                queued: 0,
                running: 0,
                reachable: reach.get(&s.id.0).copied(),
                drained: drained.iter().any(|d| d.site == s.id.0),
                power_kw: 0.0,
                grid_kg_per_kwh: series.carbon_kg_per_kwh(i, at),
                green_share: series.green_share(i, at),
                tariff_cny_per_kwh: series.tariff_cny_per_kwh(i, at),
                compute_cny_per_hour: 0.0,
            }
        })
        .collect();
    let pending = crate::scheduler::all_jobs(store, JobState::Pending)
        .await?
        .len();
    let default_origin = topology.regions.first().map(|r| r.id.0.as_str());
    let mut flows = TenantFlows::default();
    for state in [JobState::Placed, JobState::Dispatched, JobState::Running] {
        for record in crate::scheduler::all_jobs(store, state).await? {
            let (Some(site_id), Some(start)) = (&record.site, record.start_at) else {
                continue;
            };
            let Some(index) = topology.sites.iter().position(|s| &s.id.0 == site_id) else {
                continue;
            };
            let Ok(spec) = serde_json::from_str::<JobSubmission>(&record.spec) else {
                continue;
            };
            let running = state != JobState::Placed;
            if let Some(origin) = spec.origin.as_deref().or(default_origin) {
                flows.add(record.tenant_id, origin, site_id, running, 0.0, true);
            }
            if let Some(data) = &spec.data {
                flows.add(
                    record.tenant_id,
                    &data.location,
                    site_id,
                    running,
                    data.size_gib,
                    false,
                );
            }
            let entry = &mut sites[index];
            if state == JobState::Placed {
                entry.queued += 1;
                continue;
            }
            let began = record.started_at.unwrap_or(start);
            if began + seconds(&spec.duration) <= now {
                // Past its time limit: its agent will report it shortly.
                continue;
            }
            entry.running += 1;
            let site = &topology.sites[index];
            for d in &spec.demand {
                let Some(class) = ResourceClass::parse(&d.class) else {
                    continue;
                };
                let units = d.count.max(0) as u32;
                *entry.busy.entry(class.name().to_string()).or_default() += units;
                entry.power_kw += units as f64 * topology.power_kw(site, class) * site.pue;
                entry.compute_cny_per_hour +=
                    units as f64 * site.price_cny_per_unit_hour.get(class);
            }
        }
    }
    let power_kw = sites.iter().map(|s| s.power_kw).sum();
    let carbon_kg_per_hour = sites
        .iter()
        .map(|s| s.power_kw * s.grid_kg_per_kwh * (1.0 - s.green_share))
        .sum();
    let cost_cny_per_hour = sites
        .iter()
        .map(|s| s.compute_cny_per_hour + s.power_kw * s.tariff_cny_per_kwh)
        .sum();
    let overview = Overview {
        at: now,
        pending,
        sites,
        power_kw,
        carbon_kg_per_hour,
        cost_cny_per_hour,
    };
    Ok((overview, flows))
}

#[utoipa::path(get, path = "/v1/flows", operation_id = "flows", tag = "network",
    responses((status = 200, description = "live jobs and their input data between places (a tenant sees its own)", body = Flows)),
    security(("bearer" = [])))]
pub(crate) async fn flows_route<S: Store>(
    State(app): Shared<S>,
    Caller(caller): Caller,
) -> Result<Json<Flows>, ApiError> {
    Ok(Json(flows_for(&app, &caller).await?))
}

/// The flows `caller` may see, from the live publisher's view while consoles
/// listen (at most a second old), else from the store.
async fn flows_for<S: Store>(app: &crate::App<S>, caller: &Principal) -> Result<Flows, ApiError> {
    if let Some(fresh) = app.live.fresh() {
        return Ok(fresh.flows(caller));
    }
    let now = app.clock.now();
    let (_, flows) = network(&app.store, &app.topology(), now, app.lease_secs()).await?;
    Ok(flows.visible(now, |t| caller.may_see(t)))
}

#[utoipa::path(get, path = "/v1/overview", operation_id = "overview", tag = "network",
    responses((status = 200, description = "each site's use, power, carbon and price now, and the totals", body = Overview)),
    security(("bearer" = [])))]
pub(crate) async fn overview_route<S: Store>(
    State(app): Shared<S>,
    _: Caller,
) -> Result<axum::response::Response, ApiError> {
    // While consoles listen, the publisher's view (at most a second old) saves a
    // read of every live job.
    if let Some(fresh) = app.live.fresh() {
        return Ok((
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            fresh.overview_json().to_string(),
        )
            .into_response());
    }
    Ok(Json(
        overview(
            &app.store,
            &app.topology(),
            app.clock.now(),
            app.lease_secs(),
        )
        .await?,
    )
    .into_response())
}
