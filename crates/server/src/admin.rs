//! Operators' and admins' routes: sites (list, get, create or replace, drain,
//! undrain), links (list, create or replace), tenants and API tokens.
//!
//! Topology edits are validated as a whole topology (the same checks as a TOML
//! file), stored (so they survive a restart, see [`App::load_edits`]) and then
//! swapped in; the scheduler rebuilds its view at its next pass.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::submission::decode;
use crate::{App, Shared, authenticate};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use suanwang_model::{Link, Site};
use suanwang_store::{Role, Store, TopologyEdit};

/// A site as the API shows it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteDoc {
    /// Id.
    pub id: String,
    /// The site as configured (topology and operators' edits).
    #[schema(value_type = Object)]
    pub site: serde_json::Value,
    /// Set when the site takes no new work.
    pub drained: Option<DrainDoc>,
    /// True if an agent heartbeated within the lease time, false if its agents
    /// fell silent, null if no agent ever joined.
    pub reachable: Option<bool>,
}

/// A drain.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DrainDoc {
    /// Since, unix seconds.
    pub since: i64,
    /// Why.
    pub reason: Option<String>,
}

/// Body of a drain.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrainRequest {
    /// Why, for other operators.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A tenant.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantDoc {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
}

/// Body of a new tenant.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// 1 to 64 characters: letters, digits, `-`, `_`, `.`.
    pub name: String,
}

/// Body of a new token.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// admin, operator or tenant.
    #[schema(value_type = String)]
    pub role: Role,
    /// The tenant it acts for (tenant role only; created if new).
    #[serde(default)]
    pub tenant: Option<String>,
}

/// A token just issued: the only time it is shown.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedToken {
    /// The token. Store it now: only its digest is kept.
    pub token: String,
    /// Its id (the first 16 hex digits of its digest), to list or revoke it.
    pub id: String,
    /// Role.
    #[schema(value_type = String)]
    pub role: Role,
    /// Tenant, for the tenant role.
    pub tenant: Option<String>,
}

/// A stored token, as an admin sees it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenDoc {
    /// The first 16 hex digits of its digest.
    pub id: String,
    /// Role.
    #[schema(value_type = String)]
    pub role: Role,
    /// Tenant id, for the tenant role.
    pub tenant_id: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
}

fn operator(principal: &Principal) -> Result<(), ApiError> {
    match principal.role {
        Role::Admin | Role::Operator => Ok(()),
        Role::Tenant => Err(ApiError::Forbidden(
            "sites and links are changed with an operator or admin token".into(),
        )),
    }
}

fn admin(principal: &Principal) -> Result<(), ApiError> {
    match principal.role {
        Role::Admin => Ok(()),
        _ => Err(ApiError::Forbidden(
            "tenants and tokens are managed with an admin token".into(),
        )),
    }
}

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
    ApiError::Invalid {
        message: format!("{key}: {message}"),
        field: pointer(&key),
    }
}

async fn site_doc<S: Store>(app: &App<S>, site: &Site) -> Result<SiteDoc, ApiError> {
    let drained = app.store.drained().await?;
    let reach = crate::agent::reachability(&app.store, app.clock.now(), app.lease_secs()).await?;
    doc(site, &drained, &reach)
}

fn doc(
    site: &Site,
    drained: &[suanwang_store::Drain],
    reach: &std::collections::BTreeMap<String, bool>,
) -> Result<SiteDoc, ApiError> {
    Ok(SiteDoc {
        id: site.id.0.clone(),
        site: serde_json::to_value(site).map_err(|e| ApiError::Internal(e.to_string()))?,
        drained: drained
            .iter()
            .find(|d| d.site == site.id.0)
            .map(|d| DrainDoc {
                since: d.since,
                reason: d.reason.clone(),
            }),
        reachable: reach.get(&site.id.0).copied(),
    })
}

fn known_site<S>(app: &App<S>, id: &str) -> Result<Site, ApiError> {
    app.topology()
        .site(id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("site {id:?} not found")))
}

#[utoipa::path(get, path = "/v1/sites", tag = "sites", responses((status = 200, body = Vec<SiteDoc>)), security(("bearer" = [])))]
pub(crate) async fn sites<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
) -> Result<Json<Vec<SiteDoc>>, ApiError> {
    authenticate(&app, &headers).await?;
    let drained = app.store.drained().await?;
    let reach = crate::agent::reachability(&app.store, app.clock.now(), app.lease_secs()).await?;
    Ok(Json(
        app.topology()
            .sites
            .iter()
            .map(|s| doc(s, &drained, &reach))
            .collect::<Result<_, _>>()?,
    ))
}

#[utoipa::path(get, path = "/v1/sites/{id}", tag = "sites", params(("id" = String, Path)),
    responses((status = 200, body = SiteDoc), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn site<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<SiteDoc>, ApiError> {
    authenticate(&app, &headers).await?;
    let site = known_site(&app, &id)?;
    Ok(Json(site_doc(&app, &site).await?))
}

/// Query of `GET /v1/sites/{id}/telemetry`.
/// Query of `GET /v1/sites/{id}/series`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    /// Hours before now (0..=168, default 24).
    pub before_h: Option<u32>,
    /// Hours after now (0..=168, default 24).
    pub after_h: Option<u32>,
}

/// One slot of a site's series.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryQuery {
    /// Samples at or after this, unix seconds (default: the last hour).
    pub since: Option<i64>,
    /// At most this many, the newest (1..=10000, default 500).
    pub limit: Option<u32>,
}

/// A site's recent telemetry.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TelemetryDoc {
    /// Site.
    pub site: String,
    /// As in [`SiteDoc`].
    pub reachable: Option<bool>,
    /// Samples, oldest first: `{agent, at, sample}`.
    #[schema(value_type = Vec<Object>)]
    pub samples: Vec<serde_json::Value>,
}

#[utoipa::path(get, path = "/v1/sites/{id}/series", tag = "sites",
    params(("id" = String, Path), ("before_h" = Option<u32>, Query), ("after_h" = Option<u32>, Query)),
    responses((status = 200, body = SeriesDoc), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn series<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<axum::extract::Query<SeriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SeriesDoc>, ApiError> {
    authenticate(&app, &headers).await?;
    let axum::extract::Query(query) = query.map_err(|e| ApiError::BadRequest {
        message: e.body_text(),
        field: None,
    })?;
    let hours = |value: Option<u32>, field: &str| match value.unwrap_or(24) {
        h @ 0..=168 => Ok(h as i64),
        _ => Err(ApiError::Invalid {
            message: format!("{field} must be 0..=168 hours"),
            field: field.into(),
        }),
    };
    let (before, after) = (
        hours(query.before_h, "before_h")?,
        hours(query.after_h, "after_h")?,
    );
    known_site(&app, &id)?;
    let topology = app.topology();
    let index = topology
        .sites
        .iter()
        .position(|s| s.id.0 == id)
        .ok_or_else(|| ApiError::NotFound(format!("site {id:?} not found")))?;
    // The scheduler's series, on unix time (SimTime(0) = 1970): the same values
    // it plans with, slot by slot.
    let model = suanwang_topology::SeriesModel::new(&topology, 0, None, 0.0);
    const SLOT: i64 = 900;
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

#[utoipa::path(get, path = "/v1/regions", tag = "sites", responses((status = 200, body = Vec<Object>)), security(("bearer" = [])))]
pub(crate) async fn regions<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
) -> Result<Json<Vec<suanwang_model::Region>>, ApiError> {
    authenticate(&app, &headers).await?;
    Ok(Json(app.topology().regions.clone()))
}

#[utoipa::path(get, path = "/v1/sites/{id}/telemetry", tag = "sites",
    params(("id" = String, Path), ("since" = Option<i64>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = TelemetryDoc), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn telemetry<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<axum::extract::Query<TelemetryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TelemetryDoc>, ApiError> {
    authenticate(&app, &headers).await?;
    let axum::extract::Query(query) = query.map_err(|e| ApiError::BadRequest {
        message: e.body_text(),
        field: None,
    })?;
    known_site(&app, &id)?;
    let limit = query.limit.unwrap_or(500);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::Invalid {
            message: "limit must be 1..=10000".into(),
            field: "limit".into(),
        });
    }
    let now = app.clock.now();
    let since = query
        .since
        .unwrap_or(now - app.clock.network_secs(std::time::Duration::from_secs(3600)));
    let samples = app
        .store
        .samples(&id, since, limit)
        .await?
        .into_iter()
        .map(|s| {
            serde_json::json!({
                "agent": s.agent,
                "at": s.at,
                "sample": serde_json::from_str::<serde_json::Value>(&s.body).unwrap_or(serde_json::Value::Null),
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

#[utoipa::path(put, path = "/v1/sites/{id}", tag = "sites", params(("id" = String, Path)), request_body(content = Object, description = "the site, as in GET /v1/sites/{id}'s `site`"),
    responses((status = 201, description = "created", body = SiteDoc), (status = 200, description = "replaced", body = SiteDoc),
        (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn put_site<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<SiteDoc>), ApiError> {
    operator(&authenticate(&app, &headers).await?)?;
    let site: Site = decode(&body)?;
    if site.id.0 != id {
        return Err(ApiError::Invalid {
            message: format!("id {:?} differs from the path's {id:?}", site.id.0),
            field: "/id".into(),
        });
    }
    let existed = app.topology().site(&id).is_some();
    let stored = serde_json::to_string(&site).map_err(|e| ApiError::Internal(e.to_string()))?;
    apply_site(&app, site.clone())?;
    app.store
        .put_topology_edit(&TopologyEdit {
            kind: "site".into(),
            key: id.clone(),
            body: stored,
            updated_at: app.clock.now(),
        })
        .await?;
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

#[utoipa::path(post, path = "/v1/sites/{id}/drain", tag = "sites", params(("id" = String, Path)), request_body = DrainRequest,
    responses((status = 200, body = SiteDoc), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn drain<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<SiteDoc>, ApiError> {
    operator(&authenticate(&app, &headers).await?)?;
    let request: DrainRequest = if body.is_empty() {
        DrainRequest::default()
    } else {
        decode(&body)?
    };
    let site = known_site(&app, &id)?;
    let reason = request.reason.unwrap_or_default();
    app.store
        .set_drained(&id, Some(&reason), app.clock.now())
        .await?;
    tracing::info!(site = %id, %reason, "site drained");
    app.wakeup.poke();
    Ok(Json(site_doc(&app, &site).await?))
}

#[utoipa::path(post, path = "/v1/sites/{id}/undrain", tag = "sites", params(("id" = String, Path)),
    responses((status = 200, body = SiteDoc), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn undrain<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<SiteDoc>, ApiError> {
    operator(&authenticate(&app, &headers).await?)?;
    let site = known_site(&app, &id)?;
    app.store.set_drained(&id, None, app.clock.now()).await?;
    tracing::info!(site = %id, "site undrained");
    app.wakeup.poke();
    Ok(Json(site_doc(&app, &site).await?))
}

#[utoipa::path(get, path = "/v1/links", tag = "sites", responses((status = 200, body = Vec<Object>)), security(("bearer" = [])))]
pub(crate) async fn links<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
) -> Result<Json<Vec<Link>>, ApiError> {
    authenticate(&app, &headers).await?;
    Ok(Json(app.topology().links.clone()))
}

#[utoipa::path(put, path = "/v1/links/{a}/{b}", tag = "sites", params(("a" = String, Path), ("b" = String, Path)),
    request_body(content = Object, description = "the link, as in GET /v1/links"),
    responses((status = 201, description = "created", body = Object), (status = 200, description = "replaced", body = Object), (status = 422, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn put_link<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    Path((a, b)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Link>), ApiError> {
    operator(&authenticate(&app, &headers).await?)?;
    let link: Link = decode(&body)?;
    let ends = (link.a.0.as_str(), link.b.0.as_str());
    if ends != (a.as_str(), b.as_str()) && ends != (b.as_str(), a.as_str()) {
        return Err(ApiError::Invalid {
            message: format!(
                "the link joins {} and {}, the path names {a} and {b}",
                ends.0, ends.1
            ),
            field: "/a".into(),
        });
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
        .put_topology_edit(&TopologyEdit {
            kind: "link".into(),
            key,
            body: serde_json::to_string(&link).map_err(|e| ApiError::Internal(e.to_string()))?,
            updated_at: app.clock.now(),
        })
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
    /// topology: sites, then links (which may join them), each oldest first. An
    /// edit that no longer fits (the configured topology changed under it) is
    /// skipped with a warning; returns how many were applied.
    pub async fn load_edits(&self) -> suanwang_store::Result<usize> {
        let mut applied = 0;
        let mut edits = self.store.topology_edits().await?;
        edits.sort_by_key(|e| e.kind != "site");
        for edit in edits {
            let result = match edit.kind.as_str() {
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

#[utoipa::path(get, path = "/v1/tenants", tag = "admin", responses((status = 200, body = Vec<TenantDoc>), (status = 403, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn tenants<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
) -> Result<Json<Vec<TenantDoc>>, ApiError> {
    admin(&authenticate(&app, &headers).await?)?;
    Ok(Json(
        app.store
            .tenants()
            .await?
            .into_iter()
            .map(|t| TenantDoc {
                id: t.id,
                name: t.name,
            })
            .collect(),
    ))
}

fn check_tenant_name(name: &str, field: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::Invalid {
            message: format!("tenant name {name:?}: 1 to 64 letters, digits, '-', '_' or '.'"),
            field: field.into(),
        })
    }
}

#[utoipa::path(post, path = "/v1/tenants", tag = "admin", request_body = NewTenant,
    responses((status = 201, body = TenantDoc), (status = 200, description = "it existed", body = TenantDoc), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_tenant<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<TenantDoc>), ApiError> {
    admin(&authenticate(&app, &headers).await?)?;
    let request: NewTenant = decode(&body)?;
    check_tenant_name(&request.name, "/name")?;
    let existed = app
        .store
        .tenants()
        .await?
        .iter()
        .any(|t| t.name == request.name);
    let tenant = app.store.tenant(&request.name, app.clock.now()).await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(TenantDoc {
            id: tenant.id,
            name: tenant.name,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/tokens", tag = "admin", responses((status = 200, body = Vec<TokenDoc>), (status = 403, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn tokens<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
) -> Result<Json<Vec<TokenDoc>>, ApiError> {
    admin(&authenticate(&app, &headers).await?)?;
    Ok(Json(
        app.store
            .tokens()
            .await?
            .into_iter()
            .map(|t| TokenDoc {
                id: t.record.digest.chars().take(16).collect(),
                role: t.record.role,
                tenant_id: t.record.tenant_id,
                created_at: t.created_at,
            })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/v1/tokens", tag = "admin", request_body = NewToken,
    responses((status = 201, body = IssuedToken), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_token<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    admin(&authenticate(&app, &headers).await?)?;
    let request: NewToken = decode(&body)?;
    match (request.role, &request.tenant) {
        (Role::Tenant, None) => {
            return Err(ApiError::Invalid {
                message: "a tenant token needs a tenant".into(),
                field: "/tenant".into(),
            });
        }
        (Role::Tenant, Some(name)) => check_tenant_name(name, "/tenant")?,
        (_, Some(_)) => {
            return Err(ApiError::Invalid {
                message: "only a tenant token names a tenant".into(),
                field: "/tenant".into(),
            });
        }
        (_, None) => {}
    }
    let token = crate::auth::issue_token(
        &app.store,
        request.role,
        request.tenant.as_deref(),
        app.clock.now(),
    )
    .await?;
    let id = crate::auth::digest(&token).chars().take(16).collect();
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            token,
            id,
            role: request.role,
            tenant: request.tenant,
        }),
    ))
}

#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "admin", params(("id" = String, Path, description = "the token's id (16 hex digits)")),
    responses((status = 200, body = TokenDoc), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn revoke_token<S: Store>(
    State(app): Shared<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<TokenDoc>, ApiError> {
    admin(&authenticate(&app, &headers).await?)?;
    let created_at = app
        .store
        .tokens()
        .await?
        .iter()
        .find(|t| id.len() >= 12 && t.record.digest.starts_with(&id.to_ascii_lowercase()))
        .map_or(0, |t| t.created_at);
    let record = app.store.revoke_token(&id).await?;
    // Forget it now rather than when the cache entry would expire.
    if let Ok(mut cache) = app.tokens.write() {
        cache.remove(&record.digest);
    }
    tracing::info!(token = %id, role = record.role.name(), "token revoked");
    Ok(Json(TokenDoc {
        id: record.digest.chars().take(16).collect(),
        role: record.role,
        tenant_id: record.tenant_id,
        created_at,
    }))
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
