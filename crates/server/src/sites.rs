//! Sites and links: read by anyone with a token; sites created, replaced,
//! drained and undrained by operators or by the provider owning them (an agent's
//! token may drain its own site, not edit it), links by operators. Also each
//! site's price and carbon series, what its agents report, and the jobs at it as
//! its provider sees them (without commands, environment or logs).
//!
//! Topology edits are validated as a whole topology (the same checks as a TOML
//! file), stored (so they survive a restart, see [`App::load_edits`]) and then
//! swapped in; the scheduler rebuilds its view at its next pass.

use crate::auth::check_site;
use crate::error::ApiError;
use crate::extract::{Body, Caller, Operator, OptionalBody, Path, Query, SiteActor};
use crate::{App, Shared};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use suanwang_api::{
    DrainDoc, DrainRequest, JobSubmission, SeriesDoc, SeriesPoint, SeriesQuery, SiteDoc, SiteJob,
    SiteJobPage, SiteJobQuery, Telemetry, TelemetryDoc, TelemetryQuery, TelemetrySample,
};
use suanwang_model::{Link, Region, Site};
use suanwang_store::{JobFilter, JobRecord, Role, Store, TopologyEdit};

/// A topology key (`site[3] "hami".tariff.peak`) as a JSON pointer into the
/// body that was sent (`/tariff/peak`).
fn pointer(key: &str) -> String {
    match key.split_once("\".") {
        Some((_, rest)) => format!("/{}", rest.replace('.', "/")),
        None => match key.split_once("].") {
            Some((_, rest)) => format!("/{}", rest.replace('.', "/")),
            None => format!("/{key}"),
        },
    }
}

fn invalid_topology((key, message): (String, String)) -> ApiError {
    ApiError::invalid(pointer(&key), format!("{key}: {message}"))
}

async fn site_doc<S: Store>(app: &App<S>, site: &Site) -> Result<SiteDoc, ApiError> {
    let drained = app.store.drained().await?;
    let agents = Agents::read(app).await?;
    Ok(doc(site, &drained, &agents))
}

/// What the site views need of the agents: reachability and measured capacity.
pub(crate) struct Agents {
    pub(crate) reach: std::collections::BTreeMap<String, bool>,
    pub(crate) measured: crate::capacity::MeasuredSites,
}

impl Agents {
    pub(crate) async fn read<S: Store>(app: &App<S>) -> Result<Agents, ApiError> {
        Ok(Agents::of_store(&app.store, app.clock.now(), app.lease_secs()).await?)
    }

    pub(crate) async fn of_store<S: Store>(
        store: &S,
        now: i64,
        lease_secs: i64,
    ) -> suanwang_store::Result<Agents> {
        let records = store.agents().await?;
        Ok(Agents {
            reach: crate::agent::reachability_of(&records, now, lease_secs),
            measured: crate::capacity::measure(&records, now, lease_secs, None),
        })
    }
}

fn doc(site: &Site, drained: &[suanwang_store::Drain], agents: &Agents) -> SiteDoc {
    let reach = &agents.reach;
    SiteDoc {
        id: site.id.0.clone(),
        site: site.clone(),
        drained: drained
            .iter()
            .find(|d| d.site == site.id.0)
            .map(|d| DrainDoc {
                since: d.since,
                reason: d.reason.clone(),
            }),
        reachable: reach.get(&site.id.0).copied(),
        capacity: crate::capacity::capacity_doc(site, agents.measured.get(&site.id.0)),
    }
}

fn known_site<S>(app: &App<S>, id: &str) -> Result<Site, ApiError> {
    app.topology()
        .site(id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("site {id:?} not found")))
}

#[utoipa::path(get, path = "/v1/sites/{id}/jobs", operation_id = "site_jobs", tag = "sites",
    params(("id" = String, Path, description = "site id"), SiteJobQuery),
    responses((status = 200, description = "a page of the jobs placed at the site, oldest first, without the tenants' commands, environment or logs", body = SiteJobPage),
        (status = 403, description = "only an operator, the provider owning the site or the site's agent sees its jobs", body = suanwang_api::ErrorBody),
        (status = 404, description = "no such site", body = suanwang_api::ErrorBody),
        (status = 422, description = "`limit` is out of range", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn site_jobs<S: Store>(
    State(app): Shared<S>,
    SiteActor(who): SiteActor,
    Path(id): Path<String>,
    Query(query): Query<SiteJobQuery>,
) -> Result<Json<SiteJobPage>, ApiError> {
    check_site(&app, &who, &id, "see the jobs").await?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=suanwang_api::jobs::MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("limit must be 1..={}", suanwang_api::jobs::MAX_PAGE),
        ));
    }
    known_site(&app, &id)?;
    let records = app
        .store
        .list_jobs(&JobFilter {
            state: query.state,
            site: Some(id),
            after_id: query.after,
            limit,
            ..Default::default()
        })
        .await?;
    let next = (records.len() == limit as usize)
        .then(|| records.last().map(|r| r.id))
        .flatten();
    let jobs = records
        .into_iter()
        .map(site_job)
        .collect::<Result<_, _>>()?;
    Ok(Json(SiteJobPage { jobs, next }))
}

/// A job as its site's provider sees it.
fn site_job(record: JobRecord) -> Result<SiteJob, ApiError> {
    let spec: JobSubmission = serde_json::from_str(&record.spec)
        .map_err(|e| ApiError::Internal(format!("stored spec of job {}: {e}", record.id)))?;
    Ok(SiteJob {
        id: record.id,
        tenant_id: record.tenant_id,
        state: record.state,
        start_at: record.start_at,
        demand: spec.demand,
        gang: spec.gang,
        duration: spec.duration,
        attempt: record.lease_token,
        agent: record.lease_agent,
        started_at: record.started_at,
        finished_at: record.finished_at,
        exit_code: record.exit_code,
    })
}

#[utoipa::path(get, path = "/v1/sites", operation_id = "list_sites", tag = "sites",
    responses((status = 200, description = "every site of the topology in force", body = Vec<SiteDoc>)),
    security(("bearer" = [])))]
pub(crate) async fn sites<S: Store>(
    State(app): Shared<S>,
    _: Caller,
) -> Result<Json<Vec<SiteDoc>>, ApiError> {
    let drained = app.store.drained().await?;
    let agents = Agents::read(&app).await?;
    Ok(Json(
        app.topology()
            .sites
            .iter()
            .map(|s| doc(s, &drained, &agents))
            .collect(),
    ))
}

#[utoipa::path(get, path = "/v1/sites/{id}", operation_id = "get_site", tag = "sites", params(("id" = String, Path, description = "site id")),
    responses((status = 200, description = "the site", body = SiteDoc),
        (status = 404, description = "no such site", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn site<S: Store>(
    State(app): Shared<S>,
    _: Caller,
    Path(id): Path<String>,
) -> Result<Json<SiteDoc>, ApiError> {
    let site = known_site(&app, &id)?;
    Ok(Json(site_doc(&app, &site).await?))
}

/// Spacing of a site's series, seconds: the scheduler's slot.
const SLOT: i64 = 900;

#[utoipa::path(get, path = "/v1/sites/{id}/series", operation_id = "site_series", tag = "sites",
    params(("id" = String, Path, description = "site id"), SeriesQuery),
    responses((status = 200, description = "the site's carbon, green share and tariff per slot", body = SeriesDoc),
        (status = 404, description = "no such site", body = suanwang_api::ErrorBody),
        (status = 422, description = "a window is out of range; `field` names it", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn series<S: Store>(
    State(app): Shared<S>,
    _: Caller,
    Path(id): Path<String>,
    Query(query): Query<SeriesQuery>,
) -> Result<Json<SeriesDoc>, ApiError> {
    let hours = |value: Option<u32>, field: &str| match value.unwrap_or(24) {
        h @ 0..=168 => Ok(i64::from(h)),
        _ => Err(ApiError::invalid(
            field,
            format!("{field} must be 0..=168 hours"),
        )),
    };
    let (before, after) = (
        hours(query.before_h, "before_h")?,
        hours(query.after_h, "after_h")?,
    );
    let topology = app.topology();
    let index = topology
        .sites
        .iter()
        .position(|s| s.id.0 == id)
        .ok_or_else(|| ApiError::NotFound(format!("site {id:?} not found")))?;
    // The scheduler's series, on unix time (SimTime(0) = 1970): the same values
    // it plans with, slot by slot.
    let model = suanwang_topology::SeriesModel::new(&topology, 0, None, 0.0);
    let now = app.clock.now();
    let first = (now - before * 3600).div_euclid(SLOT) * SLOT;
    let last = now + after * 3600;
    let points = (0..)
        .map(|k| first + k * SLOT)
        .take_while(|at| *at <= last)
        .map(|at| {
            let t = suanwang_model::SimTime(at);
            SeriesPoint {
                at,
                carbon_kg_per_kwh: model.carbon_kg_per_kwh(index, t),
                green_share: model.green_share(index, t),
                tariff_cny_per_kwh: model.tariff_cny_per_kwh(index, t),
                forecast: at > now,
            }
        })
        .collect();
    Ok(Json(SeriesDoc {
        site: id,
        now,
        slot_secs: SLOT,
        carbon_label: model.carbon_label(),
        actual_source: "model".into(),
        forecast_source:
            "the same model series (no forecast error; a forecast service is future work)".into(),
        points,
    }))
}

#[utoipa::path(get, path = "/v1/regions", operation_id = "list_regions", tag = "sites",
    responses((status = 200, description = "the demand regions of the topology", body = Vec<Region>)),
    security(("bearer" = [])))]
pub(crate) async fn regions<S: Store>(
    State(app): Shared<S>,
    _: Caller,
) -> Result<Json<Vec<Region>>, ApiError> {
    Ok(Json(app.topology().regions.clone()))
}

#[utoipa::path(get, path = "/v1/sites/{id}/telemetry", operation_id = "site_telemetry", tag = "sites",
    params(("id" = String, Path, description = "site id"), TelemetryQuery),
    responses((status = 200, description = "the site's recent telemetry samples", body = TelemetryDoc),
        (status = 404, description = "no such site", body = suanwang_api::ErrorBody),
        (status = 422, description = "`limit` is out of range", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn telemetry<S: Store>(
    State(app): Shared<S>,
    _: Caller,
    Path(id): Path<String>,
    Query(query): Query<TelemetryQuery>,
) -> Result<Json<TelemetryDoc>, ApiError> {
    let limit = query.limit.unwrap_or(500);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1..=10000"));
    }
    known_site(&app, &id)?;
    let now = app.clock.now();
    let since = query
        .since
        .unwrap_or(now - app.clock.network_secs(std::time::Duration::from_secs(3600)));
    let samples = app
        .store
        .samples(&id, since, limit)
        .await?
        .into_iter()
        .filter_map(|s| {
            // A sample stored by an older agent that no longer reads is left out.
            let sample: Telemetry = serde_json::from_str(&s.body).ok()?;
            Some(TelemetrySample {
                agent: s.agent,
                at: s.at,
                sample,
            })
        })
        .collect();
    let reach = crate::agent::reachability(&app.store, now, app.lease_secs()).await?;
    Ok(Json(TelemetryDoc {
        reachable: reach.get(&id).copied(),
        site: id,
        samples,
    }))
}

#[utoipa::path(put, path = "/v1/sites/{id}", operation_id = "put_site", tag = "sites", params(("id" = String, Path, description = "site id")),
    request_body(content = Site, description = "the site, as in `GET /v1/sites/{id}`'s `site`"),
    responses((status = 201, description = "the site was created", body = SiteDoc),
        (status = 200, description = "the site was replaced", body = SiteDoc),
        (status = 403, description = "only an operator, or the provider owning the site, may edit it", body = suanwang_api::ErrorBody),
        (status = 422, description = "the site does not fit the topology; `field` is the JSON pointer at fault", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn put_site<S: Store>(
    State(app): Shared<S>,
    SiteActor(who): SiteActor,
    Path(id): Path<String>,
    Body(site): Body<Site>,
) -> Result<(StatusCode, Json<SiteDoc>), ApiError> {
    if who.role == Role::Agent {
        return Err(ApiError::Forbidden(
            "an agent's token does not edit sites: use the provider's or an operator's".into(),
        ));
    }
    check_site(&app, &who, &id, "edit the site").await?;
    if site.id.0 != id {
        return Err(ApiError::invalid(
            "/id",
            format!("id {:?} differs from the path's {id:?}", site.id.0),
        ));
    }
    let existed = app.topology().site(&id).is_some();
    let stored = serde_json::to_string(&site).map_err(|e| ApiError::Internal(e.to_string()))?;
    apply_site(&app, site.clone())?;
    app.store
        .put_topology_edit(
            &who.actor(),
            &TopologyEdit {
                kind: "site".into(),
                key: id.clone(),
                body: stored,
                updated_at: app.clock.now(),
            },
        )
        .await?;
    // As in force: a capacity left out is the nodes'.
    let site = app.topology().site(&id).cloned().unwrap_or(site);
    tracing::info!(site = %id, created = !existed, "site edited");
    app.wakeup.poke();
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(site_doc(&app, &site).await?)))
}

fn apply_site<S>(app: &App<S>, site: Site) -> Result<(), ApiError> {
    app.network
        .update(|t| match t.sites.iter_mut().find(|s| s.id == site.id) {
            Some(old) => *old = site,
            None => t.sites.push(site),
        })
        .map(|_| ())
        .map_err(invalid_topology)
}

fn apply_link<S>(app: &App<S>, link: Link) -> Result<(), ApiError> {
    let (a, b) = (link.a.clone(), link.b.clone());
    let same = move |l: &Link| (l.a == a && l.b == b) || (l.a == b && l.b == a);
    app.network
        .update(|t| match t.links.iter_mut().find(|l| same(l)) {
            Some(old) => *old = link,
            None => t.links.push(link),
        })
        .map(|_| ())
        .map_err(invalid_topology)
}

#[utoipa::path(post, path = "/v1/sites/{id}/drain", operation_id = "drain_site", tag = "sites", params(("id" = String, Path, description = "site id")),
    request_body(content = Option<DrainRequest>, description = "why (optional; an empty body drains without a reason)"),
    responses((status = 200, description = "the site, drained: it takes no new work, and its placed jobs are placed again", body = SiteDoc),
        (status = 403, description = "only an operator, the provider owning the site or the site's agent may drain it", body = suanwang_api::ErrorBody),
        (status = 404, description = "no such site", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn drain<S: Store>(
    State(app): Shared<S>,
    SiteActor(who): SiteActor,
    Path(id): Path<String>,
    OptionalBody(request): OptionalBody<DrainRequest>,
) -> Result<Json<SiteDoc>, ApiError> {
    check_site(&app, &who, &id, "drain").await?;
    let site = known_site(&app, &id)?;
    let reason = request.and_then(|r| r.reason).unwrap_or_default();
    app.store
        .set_drained(&who.actor(), &id, Some(&reason), app.clock.now())
        .await?;
    tracing::info!(site = %id, %reason, "site drained");
    app.wakeup.poke();
    Ok(Json(site_doc(&app, &site).await?))
}

#[utoipa::path(post, path = "/v1/sites/{id}/undrain", operation_id = "undrain_site", tag = "sites", params(("id" = String, Path, description = "site id")),
    responses((status = 200, description = "the site, taking work again", body = SiteDoc),
        (status = 403, description = "only an operator, the provider owning the site or the site's agent may undrain it", body = suanwang_api::ErrorBody),
        (status = 404, description = "no such site", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn undrain<S: Store>(
    State(app): Shared<S>,
    SiteActor(who): SiteActor,
    Path(id): Path<String>,
) -> Result<Json<SiteDoc>, ApiError> {
    check_site(&app, &who, &id, "undrain").await?;
    let site = known_site(&app, &id)?;
    app.store
        .set_drained(&who.actor(), &id, None, app.clock.now())
        .await?;
    tracing::info!(site = %id, "site undrained");
    app.wakeup.poke();
    Ok(Json(site_doc(&app, &site).await?))
}

#[utoipa::path(get, path = "/v1/links", operation_id = "list_links", tag = "sites",
    responses((status = 200, description = "the links of the topology in force (pairs without one take the defaults)", body = Vec<Link>)),
    security(("bearer" = [])))]
pub(crate) async fn links<S: Store>(
    State(app): Shared<S>,
    _: Caller,
) -> Result<Json<Vec<Link>>, ApiError> {
    Ok(Json(app.topology().links.clone()))
}

#[utoipa::path(put, path = "/v1/links/{a}/{b}", operation_id = "put_link", tag = "sites",
    params(("a" = String, Path, description = "one end (site or region id)"), ("b" = String, Path, description = "the other end")),
    request_body(content = Link, description = "the link, as in `GET /v1/links`"),
    responses((status = 201, description = "the link was created", body = Link),
        (status = 200, description = "the link was replaced", body = Link),
        (status = 403, description = "only an operator or admin may edit links", body = suanwang_api::ErrorBody),
        (status = 422, description = "the link does not fit the path or the topology; `field` is the JSON pointer at fault", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn put_link<S: Store>(
    State(app): Shared<S>,
    Operator(who): Operator,
    Path((a, b)): Path<(String, String)>,
    Body(link): Body<Link>,
) -> Result<(StatusCode, Json<Link>), ApiError> {
    let ends = (link.a.0.as_str(), link.b.0.as_str());
    if ends != (a.as_str(), b.as_str()) && ends != (b.as_str(), a.as_str()) {
        return Err(ApiError::invalid(
            "/a",
            format!(
                "the link joins {} and {}, the path names {a} and {b}",
                ends.0, ends.1
            ),
        ));
    }
    let existed = app
        .topology()
        .links
        .iter()
        .any(|l| (l.a == link.a && l.b == link.b) || (l.a == link.b && l.b == link.a));
    apply_link(&app, link.clone())?;
    let key = if a <= b {
        format!("{a}--{b}")
    } else {
        format!("{b}--{a}")
    };
    app.store
        .put_topology_edit(
            &who.actor(),
            &TopologyEdit {
                kind: "link".into(),
                key,
                body: serde_json::to_string(&link)
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
                updated_at: app.clock.now(),
            },
        )
        .await?;
    app.wakeup.poke();
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(link)))
}

impl<S: Store> App<S> {
    /// Applies the operators' stored topology edits over the configured
    /// topology: accelerator models (which sites may use), then sites, then links
    /// (which may join them), each oldest first. An
    /// edit that no longer fits (the configured topology changed under it) is
    /// skipped with a warning; returns how many were applied.
    pub async fn load_edits(&self) -> suanwang_store::Result<usize> {
        let mut applied = 0;
        let mut edits = self.store.topology_edits().await?;
        edits.sort_by_key(|e| match e.kind.as_str() {
            "accelerator" => 0,
            "site" => 1,
            _ => 2,
        });
        for edit in edits {
            let result = match edit.kind.as_str() {
                "accelerator" => self.apply_accelerator_edit(&edit.body),
                "site" => serde_json::from_str::<Site>(&edit.body)
                    .map_err(|e| e.to_string())
                    .and_then(|s| apply_site(self, s).map_err(|e| e.to_string())),
                "link" => serde_json::from_str::<Link>(&edit.body)
                    .map_err(|e| e.to_string())
                    .and_then(|l| apply_link(self, l).map_err(|e| e.to_string())),
                other => Err(format!("unknown kind {other:?}")),
            };
            match result {
                Ok(()) => applied += 1,
                Err(e) => {
                    tracing::warn!(kind = %edit.kind, key = %edit.key, error = %e, "a stored topology edit no longer applies; skipped")
                }
            }
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_keys_become_pointers_into_the_body() {
        assert_eq!(pointer("site[3] \"hami\".tariff.peak"), "/tariff/peak");
        assert_eq!(pointer("link[0].bandwidth_gbps"), "/bandwidth_gbps");
        assert_eq!(pointer("site"), "/site");
    }
}
