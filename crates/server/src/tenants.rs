//! The admins' routes: tenants, providers and API tokens. A token is shown once,
//! when it is issued; it is listed and revoked by its id (the first 16 hex digits
//! of its digest), and a revoked token stops working at once. Admins say which
//! provider owns which sites (`PUT /v1/providers/{name}`); a provider issues and
//! revokes the agent tokens of its own sites.

use crate::auth::{Principal, check_site};
use crate::error::ApiError;
use crate::extract::{Admin, Body, Caller, Issuer, Path, Query, SiteActor};
use crate::{Shared, auth};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use suanwang_api::{
    ClassDoc, ClassSet, IssuedToken, NewTenant, NewToken, ProviderDoc, ProviderSites, QuotaDoc,
    QuotaSet, ShareDoc, ShareSet, SpillDoc, SpillSet, TenantDoc, TokenDoc,
};
use suanwang_store::{Role, Store, TokenRecord};

/// Characters in a token's id.
const TOKEN_ID_LEN: usize = 16;

#[utoipa::path(get, path = "/v1/tenants", operation_id = "list_tenants", tag = "admin",
    responses((status = 200, description = "every tenant", body = Vec<TenantDoc>),
        (status = 403, description = "only an admin may list tenants", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn tenants<S: Store>(
    State(app): Shared<S>,
    _: Admin,
) -> Result<Json<Vec<TenantDoc>>, ApiError> {
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

/// Refuses (422 at `field`) a tenant, provider or site name that is not 1 to 64
/// letters, digits, `-`, `_` or `.`.
fn check_name(name: &str, field: &str, what: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{what} name {name:?}: 1 to 64 letters, digits, '-', '_' or '.'"),
        ))
    }
}

#[utoipa::path(post, path = "/v1/tenants", operation_id = "create_tenant", tag = "admin", request_body = NewTenant,
    responses((status = 201, description = "the tenant was created", body = TenantDoc),
        (status = 200, description = "a tenant with this name exists: it is returned", body = TenantDoc),
        (status = 403, description = "only an admin may create tenants", body = suanwang_api::ErrorBody),
        (status = 422, description = "the name is not acceptable", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_tenant<S: Store>(
    State(app): Shared<S>,
    _: Admin,
    Body(request): Body<NewTenant>,
) -> Result<(StatusCode, Json<TenantDoc>), ApiError> {
    check_name(&request.name, "/name", "tenant")?;
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

/// Whether `who` (an admin or a provider) may see and revoke `token`: an admin
/// every token, a provider the agent tokens of its own sites.
fn manages(who: &Principal, token: &TokenRecord) -> bool {
    match who.role {
        Role::Admin => true,
        Role::Provider => {
            token.role == Role::Agent && token.site.as_deref().is_some_and(|s| who.may_act_for(s))
        }
        _ => false,
    }
}

fn token_doc(record: TokenRecord, created_at: i64) -> TokenDoc {
    TokenDoc {
        id: record.digest.chars().take(TOKEN_ID_LEN).collect(),
        role: record.role,
        tenant_id: record.tenant_id,
        provider_id: record.provider_id,
        site: record.site,
        created_at,
    }
}

#[utoipa::path(get, path = "/v1/tokens", operation_id = "list_tokens", tag = "admin", params(suanwang_api::PageQuery),
    responses((status = 200, description = "a page of the tokens the caller manages, in id order (never the token itself): an admin every token, a provider its sites' agent tokens", body = Vec<TokenDoc>,
            headers(("Link" = String, description = "the next page, `<...>; rel=\"next\"`, when more follow"))),
        (status = 403, description = "only an admin or a provider may list tokens", body = suanwang_api::ErrorBody),
        (status = 422, description = "`limit` is out of range, or `after` is too long", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn tokens<S: Store>(
    State(app): Shared<S>,
    Issuer(who): Issuer,
    Query(query): Query<suanwang_api::PageQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let mine = app
        .store
        .tokens()
        .await?
        .into_iter()
        .filter(|t| manages(&who, &t.record))
        .map(|t| token_doc(t.record, t.created_at))
        .collect();
    let (page, link) = crate::paging::page(mine, |t: &TokenDoc| &t.id, &query, "/v1/tokens")?;
    Ok((link.map(|link| [(header::LINK, link)]), Json(page)))
}

#[utoipa::path(post, path = "/v1/tokens", operation_id = "create_token", tag = "admin", request_body = NewToken,
    responses((status = 201, description = "the token, shown this once", body = IssuedToken),
        (status = 403, description = "an admin issues any token; a provider only agent tokens for its own sites", body = suanwang_api::ErrorBody),
        (status = 422, description = "the tenant's, provider's or site's name is not acceptable", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_token<S: Store>(
    State(app): Shared<S>,
    Issuer(who): Issuer,
    Body(request): Body<NewToken>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    if let Some(name) = request.tenant() {
        check_name(name, "/tenant", "tenant")?;
    }
    if let Some(name) = request.provider() {
        check_name(name, "/provider", "provider")?;
    }
    if let Some(site) = request.site() {
        check_name(site, "/site", "site")?;
    }
    // The provider issuing an agent's token, remembered with it.
    let mut provider = request.provider().map(str::to_string);
    if who.role == Role::Provider {
        let Some(site) = request.site() else {
            return Err(ApiError::Forbidden(
                "a provider issues agent tokens only (role \"agent\" with a site)".into(),
            ));
        };
        check_site(&app, &who, site, "issue an agent token").await?;
        provider = app
            .store
            .providers()
            .await?
            .into_iter()
            .find(|p| Some(p.id) == who.provider_id)
            .map(|p| p.name);
    }
    let scope = auth::Scope {
        tenant: request.tenant(),
        provider: provider.as_deref(),
        site: request.site(),
    };
    let token = auth::issue_scoped_token(
        &app.store,
        &who.actor(),
        request.role(),
        scope,
        app.clock.now(),
    )
    .await?;
    let id = auth::digest(&token).chars().take(TOKEN_ID_LEN).collect();
    tracing::info!(token = %id, role = request.role().name(), by = %who.describe(), "token issued");
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            token,
            id,
            role: request.role(),
            tenant: request.tenant().map(str::to_string),
            provider: request.provider().map(str::to_string),
            site: request.site().map(str::to_string),
        }),
    ))
}

#[utoipa::path(delete, path = "/v1/tokens/{id}", operation_id = "revoke_token", tag = "admin",
    params(("id" = String, Path, description = "the token's id: at least its first 12 hex digits")),
    responses((status = 200, description = "the token, revoked", body = TokenDoc),
        (status = 403, description = "an admin revokes any token; a provider only its sites' agent tokens", body = suanwang_api::ErrorBody),
        (status = 404, description = "no token has this id (among those the caller manages)", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn revoke_token<S: Store>(
    State(app): Shared<S>,
    Issuer(who): Issuer,
    Path(id): Path<String>,
) -> Result<Json<TokenDoc>, ApiError> {
    let prefix = id.to_ascii_lowercase();
    let found = app
        .store
        .tokens()
        .await?
        .into_iter()
        .find(|t| id.len() >= 12 && t.record.digest.starts_with(&prefix));
    let created_at = match &found {
        // A provider is not told whether a token it does not manage exists.
        Some(t) if !manages(&who, &t.record) => {
            return Err(ApiError::NotFound(format!("token {id} not found")));
        }
        Some(t) => t.created_at,
        None => 0,
    };
    let record = app
        .store
        .revoke_token(&who.actor(), &id, app.clock.now())
        .await?;
    // Forget it now rather than when the cache entry would expire.
    app.tokens.forget(&record.digest);
    tracing::info!(token = %id, role = record.role.name(), by = %who.describe(), "token revoked");
    Ok(Json(token_doc(record, created_at)))
}

fn provider_doc(provider: suanwang_store::Provider) -> ProviderDoc {
    ProviderDoc {
        id: provider.id,
        name: provider.name,
        sites: provider.sites,
    }
}

#[utoipa::path(get, path = "/v1/providers", operation_id = "list_providers", tag = "admin",
    responses((status = 200, description = "the providers with their sites: every one for an operator or admin, its own for a provider", body = Vec<ProviderDoc>),
        (status = 403, description = "tenants and agents do not list providers", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn providers<S: Store>(
    State(app): Shared<S>,
    SiteActor(who): SiteActor,
) -> Result<Json<Vec<ProviderDoc>>, ApiError> {
    let all = app.store.providers().await?;
    let visible = match who.role {
        Role::Admin | Role::Operator => all,
        Role::Provider => all
            .into_iter()
            .filter(|p| Some(p.id) == who.provider_id)
            .collect(),
        _ => {
            return Err(ApiError::Forbidden(
                "providers are listed by operators, admins and providers".into(),
            ));
        }
    };
    Ok(Json(visible.into_iter().map(provider_doc).collect()))
}

#[utoipa::path(put, path = "/v1/providers/{name}", operation_id = "put_provider", tag = "admin",
    params(("name" = String, Path, description = "the provider's name (created if new)")),
    request_body = ProviderSites,
    responses((status = 200, description = "the provider, owning exactly the sites given", body = ProviderDoc),
        (status = 403, description = "only an admin says who owns which site", body = suanwang_api::ErrorBody),
        (status = 409, description = "a site given belongs to another provider (nothing changed)", body = suanwang_api::ErrorBody),
        (status = 422, description = "a name is not acceptable; `field` names it", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn put_provider<S: Store>(
    State(app): Shared<S>,
    Admin(who): Admin,
    Path(name): Path<String>,
    Body(request): Body<ProviderSites>,
) -> Result<Json<ProviderDoc>, ApiError> {
    check_name(&name, "name", "provider")?;
    if request.sites.len() > MAX_PROVIDER_SITES {
        return Err(ApiError::invalid(
            "/sites",
            format!("at most {MAX_PROVIDER_SITES} sites"),
        ));
    }
    for (i, site) in request.sites.iter().enumerate() {
        check_name(site, &format!("/sites/{i}"), "site")?;
    }
    let actor = who.actor();
    let provider = app.store.provider(&actor, &name, app.clock.now()).await?;
    let provider = app
        .store
        .set_provider_sites(&actor, provider.id, &request.sites, app.clock.now())
        .await?;
    // Providers' tokens carry their sites: read them again.
    app.tokens.clear();
    tracing::info!(provider = %name, sites = ?provider.sites, by = %who.describe(), "provider's sites set");
    Ok(Json(provider_doc(provider)))
}

/// Most sites one provider is given in one request.
const MAX_PROVIDER_SITES: usize = 1000;

/// Most units one quota caps.
const MAX_QUOTA_UNITS: i64 = 1_000_000;

fn quota_doc(q: suanwang_store::QuotaRecord) -> QuotaDoc {
    QuotaDoc {
        tenant: q.tenant,
        site: q.site,
        class: q.class,
        units: q.units,
        updated_at: q.updated_at,
    }
}

#[utoipa::path(get, path = "/v1/quotas", operation_id = "list_quotas", tag = "admin",
    responses((status = 200, description = "the quotas: every tenant's for an operator or admin, its own for a tenant; by tenant, site (network-wide first) and class", body = Vec<QuotaDoc>),
        (status = 403, description = "providers and agents do not list quotas", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn quotas<S: Store>(
    State(app): Shared<S>,
    Caller(who): Caller,
) -> Result<Json<Vec<QuotaDoc>>, ApiError> {
    let all = app.store.quotas().await?;
    let visible: Vec<_> = match who.role {
        Role::Admin | Role::Operator => all,
        Role::Tenant => all
            .into_iter()
            .filter(|q| Some(q.tenant_id) == who.tenant_id)
            .collect(),
        _ => {
            return Err(ApiError::Forbidden(
                "quotas are listed by operators, admins and tenants (their own)".into(),
            ));
        }
    };
    Ok(Json(visible.into_iter().map(quota_doc).collect()))
}

#[utoipa::path(put, path = "/v1/tenants/{name}/quota", operation_id = "put_quota", tag = "admin",
    params(("name" = String, Path, description = "the tenant's name")),
    request_body = QuotaSet,
    responses((status = 200, description = "the tenant's quotas after the change (the scope given is replaced whole)", body = Vec<QuotaDoc>),
        (status = 400, description = "the body does not decode; `field` is the JSON pointer at fault", body = suanwang_api::ErrorBody),
        (status = 403, description = "only an admin sets quotas", body = suanwang_api::ErrorBody),
        (status = 404, description = "no such tenant", body = suanwang_api::ErrorBody),
        (status = 422, description = "a class, a value or the site is not acceptable; `field` is the JSON pointer naming it (`/caps/<class>`, `/site`)", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn put_quota<S: Store>(
    State(app): Shared<S>,
    Admin(who): Admin,
    Path(name): Path<String>,
    Body(request): Body<QuotaSet>,
) -> Result<Json<Vec<QuotaDoc>>, ApiError> {
    let tenant = app
        .store
        .tenants()
        .await?
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("tenant {name:?} not found")))?;
    if let Some(site) = &request.site
        && app.topology().site(site).is_none()
    {
        return Err(ApiError::invalid(
            "/site",
            format!("site {site:?} is not in the topology"),
        ));
    }
    let mut caps: Vec<(String, i64)> = Vec::with_capacity(request.caps.len());
    for (class, units) in &request.caps {
        let field = format!("/caps/{}", class.replace('~', "~0").replace('/', "~1"));
        let Some(parsed) = suanwang_model::ResourceClass::parse(class) else {
            return Err(ApiError::invalid(
                field,
                format!(
                    "unknown resource class {class:?}; known: {}",
                    suanwang_model::ResourceClass::known_names()
                ),
            ));
        };
        if !(0..=MAX_QUOTA_UNITS).contains(units) {
            return Err(ApiError::invalid(
                field,
                format!("{class}: {units} units; a quota is 0 to {MAX_QUOTA_UNITS}"),
            ));
        }
        let canonical = parsed.name().to_string();
        if caps.iter().any(|(c, _)| *c == canonical) {
            return Err(ApiError::invalid(
                field,
                format!("{class} names the class {canonical} a second time"),
            ));
        }
        caps.push((canonical, *units));
    }
    app.store
        .set_quota(
            &who.actor(),
            tenant.id,
            request.site.as_deref(),
            &caps,
            app.clock.now(),
        )
        .await?;
    tracing::info!(tenant = %name, site = ?request.site, ?caps, by = %who.describe(), "quota set");
    app.wakeup.poke();
    Ok(Json(
        app.store
            .quotas()
            .await?
            .into_iter()
            .filter(|q| q.tenant_id == tenant.id)
            .map(quota_doc)
            .collect(),
    ))
}

/// Most weight one tenant is given.
const MAX_SHARE_WEIGHT: f64 = 1_000_000.0;

/// The stored shares as documents: entitlements as if every tenant had work,
/// usage decayed to `now` with the server's half-life.
fn share_docs(
    shares: &[suanwang_store::ShareRecord],
    half_life: Option<i64>,
    now: i64,
) -> Vec<ShareDoc> {
    use suanwang_sched::fairshare::{average_share, decay, entitlements};
    let key = |id: i64| u32::try_from(id).unwrap_or(u32::MAX);
    let nodes: Vec<suanwang_sched::ShareNode> = shares
        .iter()
        .map(|s| suanwang_sched::ShareNode {
            tenant: key(s.tenant_id),
            parent: s.parent.as_ref().map(|(id, _)| key(*id)),
            weight: s.weight,
        })
        .collect();
    let all: Vec<u32> = nodes.iter().map(|n| n.tenant).collect();
    let entitled: std::collections::HashMap<u32, f64> =
        entitlements(&nodes, &all).into_iter().collect();
    shares
        .iter()
        .map(|s| {
            let usage = half_life.zip(s.usage).map(|(hl, (usage, as_of))| {
                let hl = hl as f64;
                average_share(decay(usage, 0.0, (now - as_of) as f64, hl), hl)
            });
            ShareDoc {
                tenant: s.tenant.clone(),
                weight: s.weight,
                parent: s.parent.as_ref().map(|(_, name)| name.clone()),
                entitled: entitled.get(&key(s.tenant_id)).copied().unwrap_or(0.0),
                usage,
                usage_as_of: s.usage.map(|(_, as_of)| as_of),
            }
        })
        .collect()
}

#[utoipa::path(get, path = "/v1/shares", operation_id = "list_shares", tag = "admin",
    responses((status = 200, description = "weighted fair share: every tenant's weight, group, entitlement and usage for an operator or admin, its own for a tenant; by tenant name", body = Vec<ShareDoc>),
        (status = 403, description = "providers and agents do not list shares", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn shares<S: Store>(
    State(app): Shared<S>,
    Caller(who): Caller,
) -> Result<Json<Vec<ShareDoc>>, ApiError> {
    let all = app.store.shares().await?;
    let own = match who.role {
        Role::Admin | Role::Operator => None,
        Role::Tenant => who.tenant_id,
        _ => {
            return Err(ApiError::Forbidden(
                "shares are listed by operators, admins and tenants (their own)".into(),
            ));
        }
    };
    let docs = share_docs(&all, app.fair_share.half_life_secs, app.clock.now());
    Ok(Json(
        all.iter()
            .zip(docs)
            .filter(|(s, _)| own.is_none_or(|id| s.tenant_id == id))
            .map(|(_, d)| d)
            .collect(),
    ))
}

#[utoipa::path(put, path = "/v1/tenants/{name}/share", operation_id = "put_share", tag = "admin",
    params(("name" = String, Path, description = "the tenant's name")),
    request_body = ShareSet,
    responses((status = 200, description = "the tenant's share after the change", body = ShareDoc),
        (status = 400, description = "the body does not decode; `field` is the JSON pointer at fault", body = suanwang_api::ErrorBody),
        (status = 403, description = "only an admin sets shares", body = suanwang_api::ErrorBody),
        (status = 404, description = "no such tenant", body = suanwang_api::ErrorBody),
        (status = 422, description = "the weight or the group is not acceptable; `field` names it (`/weight`, `/parent`): a weight is more than 0 and at most 1000000; the group must be another tenant and not one grouped under this one", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn put_share<S: Store>(
    State(app): Shared<S>,
    Admin(who): Admin,
    Path(name): Path<String>,
    Body(request): Body<ShareSet>,
) -> Result<Json<ShareDoc>, ApiError> {
    let shares = app.store.shares().await?;
    let tenant = shares
        .iter()
        .find(|s| s.tenant == name)
        .ok_or_else(|| ApiError::NotFound(format!("tenant {name:?} not found")))?;
    if !(request.weight.is_finite() && request.weight > 0.0 && request.weight <= MAX_SHARE_WEIGHT) {
        return Err(ApiError::invalid(
            "/weight",
            format!(
                "weight {}: a weight is more than 0 and at most {MAX_SHARE_WEIGHT}",
                request.weight
            ),
        ));
    }
    let parent = match &request.parent {
        None => None,
        Some(group) => {
            let Some(row) = shares.iter().find(|s| &s.tenant == group) else {
                return Err(ApiError::invalid(
                    "/parent",
                    format!("group {group:?} is not a tenant"),
                ));
            };
            // Walk up from the group: reaching this tenant would make a loop.
            let mut at = Some(row);
            let mut steps = 0;
            while let Some(node) = at {
                if node.tenant_id == tenant.tenant_id {
                    return Err(ApiError::invalid(
                        "/parent",
                        if *group == name {
                            format!("{name:?} cannot group itself")
                        } else {
                            format!("{group:?} is grouped under {name:?}: that would make a loop")
                        },
                    ));
                }
                steps += 1;
                at = node
                    .parent
                    .as_ref()
                    .filter(|_| steps <= shares.len())
                    .and_then(|(id, _)| shares.iter().find(|s| s.tenant_id == *id));
            }
            Some(row.tenant_id)
        }
    };
    app.store
        .set_share(
            &who.actor(),
            tenant.tenant_id,
            request.weight,
            parent,
            app.clock.now(),
        )
        .await?;
    tracing::info!(tenant = %name, weight = request.weight, parent = ?request.parent, by = %who.describe(), "share set");
    app.wakeup.poke();
    let shares = app.store.shares().await?;
    let docs = share_docs(&shares, app.fair_share.half_life_secs, app.clock.now());
    shares
        .iter()
        .zip(docs)
        .find(|(s, _)| s.tenant == name)
        .map(|(_, d)| Json(d))
        .ok_or_else(|| ApiError::NotFound(format!("tenant {name:?} not found")))
}

#[utoipa::path(get, path = "/v1/classes", operation_id = "list_classes", tag = "admin",
    responses((status = 200, description = "priority classes: every tenant's for an operator or admin, its own for a tenant; by tenant name", body = Vec<ClassDoc>),
        (status = 403, description = "providers and agents do not list classes", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn classes<S: Store>(
    State(app): Shared<S>,
    Caller(who): Caller,
) -> Result<Json<Vec<ClassDoc>>, ApiError> {
    let own = match who.role {
        Role::Admin | Role::Operator => None,
        Role::Tenant => who.tenant_id,
        _ => {
            return Err(ApiError::Forbidden(
                "classes are listed by operators, admins and tenants (their own)".into(),
            ));
        }
    };
    Ok(Json(
        app.store
            .classes()
            .await?
            .into_iter()
            .filter(|(id, _, _)| own.is_none_or(|o| *id == o))
            .map(|(_, tenant, class)| ClassDoc { tenant, class })
            .collect(),
    ))
}

#[utoipa::path(put, path = "/v1/tenants/{name}/class", operation_id = "put_class", tag = "admin",
    params(("name" = String, Path, description = "the tenant's name")),
    request_body = ClassSet,
    responses((status = 200, description = "the tenant's class after the change; its pending jobs run at the lower of the class they asked and this one from the next pass", body = ClassDoc),
        (status = 400, description = "the body does not decode (a class is `batch`, `normal` or `urgent`); `field` is the JSON pointer at fault", body = suanwang_api::ErrorBody),
        (status = 403, description = "only an admin sets classes", body = suanwang_api::ErrorBody),
        (status = 404, description = "no such tenant", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn put_class<S: Store>(
    State(app): Shared<S>,
    Admin(who): Admin,
    Path(name): Path<String>,
    Body(request): Body<ClassSet>,
) -> Result<Json<ClassDoc>, ApiError> {
    let (tenant_id, _, _) = app
        .store
        .classes()
        .await?
        .into_iter()
        .find(|(_, n, _)| *n == name)
        .ok_or_else(|| ApiError::NotFound(format!("tenant {name:?} not found")))?;
    app.store
        .set_class(&who.actor(), tenant_id, request.class, app.clock.now())
        .await?;
    tracing::info!(tenant = %name, class = %request.class, by = %who.describe(), "class set");
    app.wakeup.poke();
    Ok(Json(ClassDoc {
        tenant: name,
        class: request.class,
    }))
}

fn spill_doc(record: &suanwang_store::SpillRecord) -> SpillDoc {
    let own = record.own_provider.as_ref().map(|(_, name)| name.as_str());
    // Stored lists were checked when set; one that no longer reads is shown
    // as stored and leaves no choice in the effective list.
    let choices: Vec<suanwang_model::SpillChoice> =
        record.spill.iter().filter_map(|c| c.parse().ok()).collect();
    SpillDoc {
        tenant: record.tenant.clone(),
        spill: record.spill.clone(),
        own_provider: own.map(str::to_string),
        effective: suanwang_model::tenant_spill(&choices, own)
            .iter()
            .map(ToString::to_string)
            .collect(),
    }
}

#[utoipa::path(get, path = "/v1/spills", operation_id = "list_spills", tag = "admin",
    responses((status = 200, description = "ordered spill-over defaults: every tenant's list, own provider and effective list for an operator or admin, its own for a tenant; by tenant name", body = Vec<SpillDoc>),
        (status = 403, description = "providers and agents do not list spill-over defaults", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn spills<S: Store>(
    State(app): Shared<S>,
    Caller(who): Caller,
) -> Result<Json<Vec<SpillDoc>>, ApiError> {
    let own = match who.role {
        Role::Admin | Role::Operator => None,
        Role::Tenant => who.tenant_id,
        _ => {
            return Err(ApiError::Forbidden(
                "spill-over defaults are listed by operators, admins and tenants (their own)"
                    .into(),
            ));
        }
    };
    let all = app.store.spills().await?;
    Ok(Json(
        all.iter()
            .filter(|s| own.is_none_or(|id| s.tenant_id == id))
            .map(spill_doc)
            .collect(),
    ))
}

#[utoipa::path(put, path = "/v1/tenants/{name}/spill", operation_id = "put_spill", tag = "admin",
    params(("name" = String, Path, description = "the tenant's name")),
    request_body = SpillSet,
    responses((status = 200, description = "the tenant's spill-over default after the change", body = SpillDoc),
        (status = 400, description = "the body does not decode; `field` is the JSON pointer at fault", body = suanwang_api::ErrorBody),
        (status = 403, description = "only an admin sets spill-over defaults", body = suanwang_api::ErrorBody),
        (status = 404, description = "no such tenant", body = suanwang_api::ErrorBody),
        (status = 422, description = "a choice or the provider is not acceptable; `field` names it (`/spill/2`, `/own_provider`): a choice is `site:ID` of a site in the topology, `provider:NAME` of a provider that owns a site, `jurisdiction:NAME` that holds a site, or `anywhere`, each once, at most 16", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn put_spill<S: Store>(
    State(app): Shared<S>,
    Admin(who): Admin,
    Path(name): Path<String>,
    Body(mut request): Body<SpillSet>,
) -> Result<Json<SpillDoc>, ApiError> {
    let spills = app.store.spills().await?;
    let tenant = spills
        .iter()
        .find(|s| s.tenant == name)
        .ok_or_else(|| ApiError::NotFound(format!("tenant {name:?} not found")))?;
    crate::submission::check_spill(&mut request.spill, "/spill", &app.topology())?;
    let providers = app.store.providers().await?;
    crate::submission::check_spill_providers(&request.spill, "/spill", &providers)?;
    let own_provider = match &request.own_provider {
        None => None,
        Some(provider) => Some(
            providers
                .iter()
                .find(|p| &p.name == provider)
                .ok_or_else(|| {
                    ApiError::invalid("/own_provider", format!("no provider {provider:?}"))
                })?
                .id,
        ),
    };
    app.store
        .set_spill(
            &who.actor(),
            tenant.tenant_id,
            &request.spill,
            own_provider,
            app.clock.now(),
        )
        .await?;
    tracing::info!(tenant = %name, spill = ?request.spill, own_provider = ?request.own_provider, by = %who.describe(), "spill-over default set");
    app.wakeup.poke();
    let spills = app.store.spills().await?;
    spills
        .iter()
        .find(|s| s.tenant == name)
        .map(|s| Json(spill_doc(s)))
        .ok_or_else(|| ApiError::NotFound(format!("tenant {name:?} not found")))
}
