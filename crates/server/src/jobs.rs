//! The tenants' routes: submit a job (with an idempotency key), get, list,
//! cancel, its output and why it is where it is. A tenant sees and touches only
//! its own jobs: another tenant's job is a 404, like a job that is not there.

use crate::error::ApiError;
use crate::extract::{Body, Caller, Path, Query, Tenant};
use crate::{App, Shared};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use suanwang_api::jobs::MAX_PAGE;
use suanwang_api::{
    Decision, DecisionDoc, JobDoc, JobExplanation, JobPage, JobQuery, JobSubmission, Logs, Order,
    PendingReason, WaitCode, WaitDoc,
};
use suanwang_store::{JobFilter, JobRecord, JobState, Store, Transition};

/// The API's document of a stored job. Its spec is sent as stored, not parsed
/// and written again.
pub(crate) fn job_doc(record: JobRecord) -> Result<JobDoc, ApiError> {
    let spec = serde_json::value::RawValue::from_string(record.spec).map_err(|e| {
        ApiError::Internal(format!("stored spec of job {} is not JSON: {e}", record.id))
    })?;
    Ok(JobDoc {
        id: record.id,
        tenant_id: record.tenant_id,
        state: record.state,
        site: record.site,
        start_at: record.start_at,
        exit_code: record.exit_code,
        spec,
        idempotency_key: record.idempotency_key,
        created_at: record.created_at,
        updated_at: record.updated_at,
        attempt: record.lease_token,
        agent: record.lease_agent,
        lease_expires_at: record.lease_expires_at,
        started_at: record.started_at,
        finished_at: record.finished_at,
        wait: None,
    })
}

/// Fills in the one-word reason of the pending jobs among `docs`, from the
/// reasons the scheduler last recorded (one query).
async fn with_waits<S: Store>(app: &App<S>, docs: &mut [JobDoc]) -> Result<(), ApiError> {
    let pending: Vec<i64> = docs
        .iter()
        .filter(|d| d.state == suanwang_store::JobState::Pending)
        .map(|d| d.id)
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let waits: std::collections::HashMap<i64, String> = app
        .store
        .waits(&pending)
        .await?
        .into_iter()
        .map(|w| (w.job_id, w.code))
        .collect();
    for doc in docs
        .iter_mut()
        .filter(|d| d.state == suanwang_store::JobState::Pending)
    {
        doc.wait = Some(match waits.get(&doc.id) {
            Some(code) => serde_json::from_value(serde_json::Value::String(code.clone()))
                .map_err(|e| ApiError::Internal(format!("stored wait of job {}: {e}", doc.id)))?,
            None => WaitCode::NotConsidered,
        });
    }
    Ok(())
}

/// The job `id` if `caller` may see it.
async fn visible_job<S: Store>(
    app: &App<S>,
    caller: &Caller,
    id: i64,
) -> Result<JobRecord, ApiError> {
    match app.store.job(id).await {
        Ok(record) if caller.0.may_see(record.tenant_id) => Ok(record),
        Ok(_) | Err(suanwang_store::StoreError::NotFound { .. }) => {
            Err(ApiError::NotFound(format!("job {id} not found")))
        }
        Err(e) => Err(e.into()),
    }
}

/// The `Idempotency-Key` header, if given: 1 to 200 visible ASCII characters
/// (400 naming the header otherwise).
pub(crate) struct IdempotencyKey(Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        value
            .to_str()
            .ok()
            .filter(|k| !k.is_empty() && k.len() <= 200 && k.bytes().all(|c| c.is_ascii_graphic()))
            .map(|k| IdempotencyKey(Some(k.to_string())))
            .ok_or_else(|| ApiError::BadRequest {
                message: "Idempotency-Key must be 1 to 200 visible ASCII characters".into(),
                field: Some("Idempotency-Key".into()),
            })
    }
}

#[utoipa::path(post, path = "/v1/jobs", operation_id = "submit_job", tag = "jobs", request_body = JobSubmission,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,200}$",
        description = "a key of the caller's choice: a retried submission with the same key returns the job the first one created (200) instead of creating another")),
    responses(
        (status = 201, description = "the job was created", body = JobDoc),
        (status = 200, description = "a job with this idempotency key exists already: it is returned", body = JobDoc),
        (status = 403, description = "only a tenant token may submit, and only up to its tenant's priority class", body = suanwang_api::ErrorBody),
        (status = 422, description = "a value is not acceptable; `field` is its JSON pointer", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn submit<S: Store>(
    State(app): Shared<S>,
    Tenant(tenant_id, who): Tenant,
    IdempotencyKey(key): IdempotencyKey,
    Body(submission): Body<JobSubmission>,
) -> Result<impl IntoResponse, ApiError> {
    let submission = crate::submission::check_submission(submission, &app.topology())?;
    // A class above the lowest is checked against the tenant's (one read, only
    // for jobs that ask one).
    if let Some(asked) = submission.class
        && asked > suanwang_model::PriorityClass::Batch
    {
        let tenant = app
            .store
            .classes()
            .await?
            .into_iter()
            .find(|(id, _, _)| *id == tenant_id);
        if let Some((_, name, class)) = tenant
            && asked > class
        {
            return Err(ApiError::Forbidden(format!(
                "class {asked} is above tenant {name}'s class {class} (an admin sets it: PUT /v1/tenants/{name}/class)"
            )));
        }
    }
    if crate::submission::names_a_provider(&submission.spill) {
        let providers = app.store.providers().await?;
        crate::submission::check_spill_providers(&submission.spill, "/spill", &providers)?;
    }
    let spec = serde_json::to_string(&submission).map_err(|e| ApiError::Internal(e.to_string()))?;
    let job = suanwang_store::NewJob {
        actor: who.actor(),
        tenant_id,
        idempotency_key: key,
        spec,
    };
    let (record, created) = app.commit.submit(job).await?;
    if created {
        app.wakeup.poke();
        app.live.note_record(&record);
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(job_doc(record)?)))
}

#[utoipa::path(get, path = "/v1/jobs/{id}", operation_id = "get_job", tag = "jobs", params(("id" = i64, Path, description = "job id")),
    responses((status = 200, description = "the job", body = JobDoc),
        (status = 404, description = "no such job, or not the caller's", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn job<S: Store>(
    State(app): Shared<S>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<JobDoc>, ApiError> {
    let record = visible_job(&app, &caller, id).await?;
    let mut doc = [job_doc(record)?];
    with_waits(&app, &mut doc).await?;
    let [doc] = doc;
    Ok(Json(doc))
}

#[utoipa::path(get, path = "/v1/jobs", operation_id = "list_jobs", tag = "jobs", params(JobQuery),
    responses((status = 200, description = "a page of jobs", body = JobPage),
        (status = 403, description = "providers and agents see a site's jobs at `GET /v1/sites/{id}/jobs`", body = suanwang_api::ErrorBody),
        (status = 422, description = "`limit` is out of range", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list<S: Store>(
    State(app): Shared<S>,
    Caller(caller): Caller,
    Query(query): Query<JobQuery>,
) -> Result<Json<JobPage>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("limit must be 1..={MAX_PAGE}"),
        ));
    }
    let tenant_id = match caller.role {
        suanwang_store::Role::Tenant => caller.tenant_id,
        suanwang_store::Role::Admin | suanwang_store::Role::Operator => query.tenant_id,
        suanwang_store::Role::Provider | suanwang_store::Role::Agent => {
            return Err(ApiError::Forbidden(
                "providers and agents see a site's jobs at GET /v1/sites/{id}/jobs".into(),
            ));
        }
    };
    let newest_first = query.order.unwrap_or_default() == Order::Desc;
    let filter = JobFilter {
        state: query.state,
        site: query.site,
        tenant_id,
        after_id: query.after,
        before_id: query.before,
        newest_first,
        limit,
        ..Default::default()
    };
    let records = app.store.list_jobs(&filter).await?;
    let next = (records.len() == limit as usize)
        .then(|| records.last().map(|r| r.id))
        .flatten();
    let mut jobs = records
        .into_iter()
        .map(job_doc)
        .collect::<Result<Vec<_>, _>>()?;
    with_waits(&app, &mut jobs).await?;
    Ok(Json(JobPage { jobs, next }))
}

#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", operation_id = "cancel_job", tag = "jobs", params(("id" = i64, Path, description = "job id")),
    responses((status = 200, description = "the job, cancelled", body = JobDoc),
        (status = 404, description = "no such job, or not the caller's", body = suanwang_api::ErrorBody),
        (status = 409, description = "the job has ended already", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn cancel<S: Store>(
    State(app): Shared<S>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<JobDoc>, ApiError> {
    let record = visible_job(&app, &caller, id).await?;
    if record.state.is_terminal() {
        return Err(ApiError::Conflict(format!(
            "job {id} is already {}",
            record.state
        )));
    }
    let change = Transition {
        from: record.state,
        to: JobState::Cancelled,
        site: None,
        start_at: None,
        exit_code: None,
    };
    let updated = app
        .store
        .transition(&caller.0.actor(), id, &change, app.clock.now())
        .await?;
    app.changed.mark(id);
    app.live.note_record(&updated);
    Ok(Json(job_doc(updated)?))
}

#[utoipa::path(get, path = "/v1/jobs/{id}/logs", operation_id = "job_logs", tag = "jobs", params(("id" = i64, Path, description = "job id")),
    responses((status = 200, description = "the tail of the job's output", body = Logs),
        (status = 404, description = "no such job, or not the caller's", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn logs<S: Store>(
    State(app): Shared<S>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Logs>, ApiError> {
    let record = visible_job(&app, &caller, id).await?;
    let (tail, updated_at) = match app.store.logs(id).await? {
        Some((tail, at)) => (tail, Some(at)),
        None => (String::new(), None),
    };
    Ok(Json(Logs {
        job: id,
        tail,
        updated_at,
        complete: record.state.is_terminal(),
    }))
}

#[utoipa::path(get, path = "/v1/jobs/{id}/explain", operation_id = "explain_job", tag = "jobs", params(("id" = i64, Path, description = "job id")),
    responses((status = 200, description = "the job and every decision about it", body = JobExplanation),
        (status = 404, description = "no such job, or not the caller's", body = suanwang_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn explain<S: Store>(
    State(app): Shared<S>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<JobExplanation>, ApiError> {
    let record = visible_job(&app, &caller, id).await?;
    let mut decisions = app
        .store
        .decisions(id)
        .await?
        .into_iter()
        .map(|d| {
            let decision: Decision = serde_json::from_str(&d.body)
                .map_err(|e| ApiError::Internal(format!("decision of job {id}: {e}")))?;
            Ok(DecisionDoc { at: d.at, decision })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    if decisions.is_empty() {
        decisions.push(DecisionDoc {
            at: record.created_at,
            decision: Decision::Pending {
                reason: PendingReason {
                    reason: WaitCode::NotConsidered,
                    detail: None,
                    earliest_start: None,
                    sites: Vec::new(),
                },
            },
        });
    }
    let wait_doc = |at: i64, body: &str| -> Result<WaitDoc, ApiError> {
        let reason = serde_json::from_str(body)
            .map_err(|e| ApiError::Internal(format!("stored wait of job {id}: {e}")))?;
        Ok(WaitDoc { at, reason })
    };
    let wait = if record.state == suanwang_store::JobState::Pending {
        match app.store.waits(&[id]).await?.first() {
            Some(w) => Some(wait_doc(w.at, &w.body)?),
            None => None,
        }
    } else {
        None
    };
    let wait_history = app
        .store
        .wait_history(id, None, suanwang_store::WAIT_HISTORY as u32)
        .await?
        .iter()
        .map(|e| wait_doc(e.at, &e.body))
        .collect::<Result<Vec<_>, _>>()?;
    let mut doc = [job_doc(record)?];
    with_waits(&app, &mut doc).await?;
    let [job] = doc;
    let preemptions = app
        .store
        .preemptions(&suanwang_store::PreemptionFilter {
            job: Some(id),
            ..Default::default()
        })
        .await?
        .into_iter()
        .map(preemption_doc)
        .collect();
    Ok(Json(JobExplanation {
        job,
        decisions,
        wait,
        wait_history,
        preemptions,
    }))
}

/// A stored preemption as the API shows it.
fn preemption_doc(p: suanwang_store::PreemptionRecord) -> suanwang_api::PreemptionDoc {
    suanwang_api::PreemptionDoc {
        job: p.job_id,
        attempt: p.attempt,
        by_job: p.by_job,
        site: p.site,
        at: p.at,
        class: suanwang_model::PriorityClass::parse(&p.class).unwrap_or_default(),
        by_class: suanwang_model::PriorityClass::parse(&p.by_class).unwrap_or_default(),
        ran_secs: p.ran_secs,
        lost_cny: p.lost_cny,
    }
}
