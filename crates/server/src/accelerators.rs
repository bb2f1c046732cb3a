//! The accelerator catalogue over HTTP: anyone with a token lists the models this
//! control plane knows; an operator, or a provider bringing a site whose model is
//! missing, adds one. An added model is registered in the process's catalogue
//! ([`suanwang_model::catalogue`]) and stored as a topology edit of kind
//! `accelerator`, which [`App::load_edits`] applies before the sites that use it.

use crate::error::ApiError;
use crate::extract::{Body, Caller, Path, SiteActor};
use crate::{App, Shared};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use suanwang_api::{AcceleratorDoc, AcceleratorSpec};
use suanwang_model::catalogue::{self, CatalogueError};
use suanwang_model::{ResourceClass, Role};
use suanwang_store::{Store, TopologyEdit};

#[utoipa::path(get, path = "/v1/accelerators", operation_id = "list_accelerators", tag = "sites",
    responses((status = 200, description = "the accelerator models this control plane knows, built in and added, in index order", body = Vec<AcceleratorDoc>)),
    security(("bearer" = [])))]
pub(crate) async fn list<S: Store>(
    State(_app): Shared<S>,
    _: Caller,
) -> Result<Json<Vec<AcceleratorDoc>>, ApiError> {
    Ok(Json(AcceleratorDoc::all()))
}

#[utoipa::path(put, path = "/v1/accelerators/{name}", operation_id = "put_accelerator", tag = "sites",
    params(("name" = String, Path, description = "the model's class name, as in the body")),
    request_body(content = AcceleratorSpec, description = "the model, as a topology's or site file's `[[accelerator]]` table"),
    responses((status = 201, description = "the model was added to the catalogue", body = AcceleratorDoc),
        (status = 200, description = "the model was already there with the same figures", body = AcceleratorDoc),
        (status = 403, description = "only an operator or a provider may add a model", body = suanwang_api::ErrorBody),
        (status = 409, description = "the name or an alias is a built-in class's or another model's with other figures, or the catalogue is full", body = suanwang_api::ErrorBody),
        (status = 422, description = "a field is out of range; `field` is the JSON pointer at fault", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn put<S: Store>(
    State(app): Shared<S>,
    SiteActor(who): SiteActor,
    Path(name): Path<String>,
    Body(spec): Body<AcceleratorSpec>,
) -> Result<(StatusCode, Json<AcceleratorDoc>), ApiError> {
    if who.role == Role::Agent {
        return Err(ApiError::Forbidden(
            "an agent's token does not add accelerator models: use the provider's or an operator's"
                .into(),
        ));
    }
    if spec.name != name {
        return Err(ApiError::invalid(
            "/name",
            format!("name {:?} differs from the path's {name:?}", spec.name),
        ));
    }
    let existed = ResourceClass::parse(&spec.name).is_some_and(|c| c.name() == spec.name);
    let class = register(&spec)?;
    app.store
        .put_topology_edit(
            &who.actor(),
            &TopologyEdit {
                kind: "accelerator".into(),
                key: spec.name.clone(),
                body: serde_json::to_string(&spec)
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
                updated_at: app.clock.now(),
            },
        )
        .await?;
    if !existed {
        tracing::info!(accelerator = %spec.name, vendor = %spec.vendor, "accelerator model added");
    }
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(AcceleratorDoc::of(class))))
}

/// Registers `spec`, mapping the catalogue's refusals to statuses.
pub(crate) fn register(spec: &AcceleratorSpec) -> Result<ResourceClass, ApiError> {
    catalogue::register(spec).map_err(|err| match err {
        CatalogueError::Invalid { field, .. } => {
            ApiError::invalid(format!("/{field}"), err.to_string())
        }
        CatalogueError::BuiltIn { .. }
        | CatalogueError::Conflict { .. }
        | CatalogueError::Full { .. } => ApiError::Conflict(err.to_string()),
    })
}

impl<S: Store> App<S> {
    /// Registers a stored `accelerator` edit's model (see [`App::load_edits`]).
    pub(crate) fn apply_accelerator_edit(&self, body: &str) -> Result<(), String> {
        let spec: AcceleratorSpec = serde_json::from_str(body).map_err(|e| e.to_string())?;
        catalogue::register(&spec)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
