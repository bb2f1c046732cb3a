//! The admins' routes: tenants and API tokens. A token is shown once, when it is
//! issued; it is listed and revoked by its id (the first 16 hex digits of its
//! digest), and a revoked token stops working at once.

use crate::error::ApiError;
use crate::extract::{Admin, Body, Path};
use crate::{Shared, auth};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use suanwang_api::{IssuedToken, NewTenant, NewToken, TenantDoc, TokenDoc};
use suanwang_store::Store;

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

fn check_tenant_name(name: &str, field: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("tenant name {name:?}: 1 to 64 letters, digits, '-', '_' or '.'"),
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

#[utoipa::path(get, path = "/v1/tokens", operation_id = "list_tokens", tag = "admin",
    responses((status = 200, description = "every token, by id (never the token itself)", body = Vec<TokenDoc>),
        (status = 403, description = "only an admin may list tokens", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn tokens<S: Store>(
    State(app): Shared<S>,
    _: Admin,
) -> Result<Json<Vec<TokenDoc>>, ApiError> {
    Ok(Json(
        app.store
            .tokens()
            .await?
            .into_iter()
            .map(|t| TokenDoc {
                id: t.record.digest.chars().take(TOKEN_ID_LEN).collect(),
                role: t.record.role,
                tenant_id: t.record.tenant_id,
                created_at: t.created_at,
            })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/v1/tokens", operation_id = "create_token", tag = "admin", request_body = NewToken,
    responses((status = 201, description = "the token, shown this once", body = IssuedToken),
        (status = 403, description = "only an admin may issue tokens", body = suanwang_api::ErrorBody),
        (status = 422, description = "the tenant's name is not acceptable", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_token<S: Store>(
    State(app): Shared<S>,
    _: Admin,
    Body(request): Body<NewToken>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    if let Some(name) = request.tenant() {
        check_tenant_name(name, "/tenant")?;
    }
    let token = auth::issue_token(
        &app.store,
        request.role(),
        request.tenant(),
        app.clock.now(),
    )
    .await?;
    let id = auth::digest(&token).chars().take(TOKEN_ID_LEN).collect();
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            token,
            id,
            role: request.role(),
            tenant: request.tenant().map(str::to_string),
        }),
    ))
}

#[utoipa::path(delete, path = "/v1/tokens/{id}", operation_id = "revoke_token", tag = "admin",
    params(("id" = String, Path, description = "the token's id: at least its first 12 hex digits")),
    responses((status = 200, description = "the token, revoked", body = TokenDoc),
        (status = 403, description = "only an admin may revoke tokens", body = suanwang_api::ErrorBody),
        (status = 404, description = "no token has this id", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn revoke_token<S: Store>(
    State(app): Shared<S>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<TokenDoc>, ApiError> {
    let created_at = app
        .store
        .tokens()
        .await?
        .iter()
        .find(|t| id.len() >= 12 && t.record.digest.starts_with(&id.to_ascii_lowercase()))
        .map_or(0, |t| t.created_at);
    let record = app.store.revoke_token(&id).await?;
    // Forget it now rather than when the cache entry would expire.
    app.tokens.forget(&record.digest);
    tracing::info!(token = %id, role = record.role.name(), "token revoked");
    Ok(Json(TokenDoc {
        id: record.digest.chars().take(TOKEN_ID_LEN).collect(),
        role: record.role,
        tenant_id: record.tenant_id,
        created_at,
    }))
}
