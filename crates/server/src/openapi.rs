//! The OpenAPI 3.1 document of the API (`GET /openapi.json`), generated from the
//! handlers' annotations and `suanwang-api`'s schemas.
//!
//! Each handler's annotation lists what is particular to it: its success
//! answers and the refusals its own checks make (403, 404, 409, 422). The
//! refusals every route of a kind can make are added here, by [`CommonErrors`],
//! from what the route's extractors do ([`crate::extract`]): a route with a token
//! answers 401 without one, 429 past its rate limit ([`crate::limits`]) and 503
//! when the database does not answer; a route with
//! a body answers 400 when it does not decode and 413 when it is too large; a
//! route with parameters answers 400 when one does not parse. So the document
//! cannot forget them, and says nothing a route cannot answer.

use axum::Json;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{ContentBuilder, Ref, RefOr};

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "an API token (`sw_…`) issued by `suanwang admin token` or `POST /v1/tokens`",
                    ))
                    .build(),
            ),
        );
    }
}

/// Adds the refusals that follow from a route's extractors (see the module's
/// documentation).
struct CommonErrors;

fn add_error(operation: &mut Operation, status: &str, description: &str) {
    let body = ContentBuilder::new()
        .schema(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))))
        .build();
    operation
        .responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| {
            ResponseBuilder::new()
                .description(description)
                .content("application/json", body)
                .build()
                .into()
        });
}

/// 429 with its `Retry-After` header ([`crate::limits`]).
fn add_rate_limited(operation: &mut Operation) {
    use utoipa::openapi::{ObjectBuilder, Type, header::HeaderBuilder};
    let body = ContentBuilder::new()
        .schema(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))))
        .build();
    let seconds = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .build();
    operation
        .responses
        .responses
        .entry("429".to_string())
        .or_insert_with(|| {
            ResponseBuilder::new()
                .description(
                    "too many requests: this token is over its request rate, or this address failed to authenticate too often (code `rate_limited`); wait the `Retry-After` seconds",
                )
                .header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(Some(seconds))
                        .description(Some("whole seconds to wait before trying again"))
                        .build(),
                )
                .content("application/json", body)
                .build()
                .into()
        });
}

impl utoipa::Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                if operation.security.is_some() {
                    add_error(
                        operation,
                        "401",
                        "no `Authorization: Bearer` token, or one the server does not know",
                    );
                    add_rate_limited(operation);
                    add_error(
                        operation,
                        "503",
                        "the database does not answer; try again later",
                    );
                }
                if operation.request_body.is_some() {
                    add_error(
                        operation,
                        "400",
                        "the request does not decode (not JSON, an unknown field, a wrong type, a bad parameter); `field` names what is at fault",
                    );
                    add_error(operation, "413", "the body is larger than this route takes");
                }
                let parameters = operation.parameters.iter().flatten();
                let parsed = parameters.filter_map(|p| match p {
                    RefOr::T(p) => Some(&p.parameter_in),
                    RefOr::Ref(_) => None,
                });
                if parsed.into_iter().any(|at| {
                    matches!(
                        at,
                        ParameterIn::Query | ParameterIn::Path | ParameterIn::Header
                    )
                }) {
                    add_error(
                        operation,
                        "400",
                        "a parameter does not parse (a wrong type, a value not in its enum, an unknown query parameter); `field` names it",
                    );
                }
            }
        }
    }
}

/// Links from the answers that create things to the routes that use them (a new
/// job's id to its routes, a new agent's id to the agent protocol, a new
/// token's id to its revocation), so that clients and stateful testers can
/// follow them.
struct Links;

impl utoipa::Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::link::LinkBuilder;
        let links: [(&str, &str, &str, &[&str]); 3] = [
            (
                "/v1/jobs",
                "201",
                "$response.body#/id",
                &["get_job", "cancel_job", "job_logs", "explain_job"],
            ),
            (
                "/v1/agents",
                "201",
                "$response.body#/agent_id",
                // Not `report`: it needs a job leased to the agent as well.
                &["heartbeat", "lease"],
            ),
            ("/v1/tokens", "201", "$response.body#/id", &["revoke_token"]),
        ];
        for (path, status, id, targets) in links {
            let Some(operation) = openapi
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut())
            else {
                continue;
            };
            let Some(RefOr::T(response)) = operation.responses.responses.get_mut(status) else {
                continue;
            };
            for target in targets {
                let link = LinkBuilder::new()
                    .operation_id(*target)
                    .parameter("id", id)
                    .build();
                response.links.insert(target.to_string(), RefOr::T(link));
            }
        }
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "suanwang",
        description = "The control plane of a computing-power network (算网): places each job on a site and a start time, and says why.\n\nErrors have the body `ErrorBody` (`{code, message, field?}`); `field` names the JSON pointer, parameter or header at fault. Times are unix seconds of the network's clock.\n\nLimits: each token has a request rate (by default 100 requests/s with bursts of 200 for tenants', providers' and agents' tokens; operators and admins unlimited; `serve --rate-limit`, `--staff-rate-limit`), and an address that fails to authenticate 30 times in a minute waits out the minute; both answer 429 with `Retry-After`. Bodies are capped per route (413) and list pages by their `limit`."
    ),
    paths(
        crate::jobs::submit, crate::jobs::list, crate::jobs::job, crate::jobs::cancel, crate::jobs::logs, crate::jobs::explain,
        crate::overview::overview_route, crate::overview::flows_route, crate::live::events, crate::savings::savings,
        crate::accelerators::list, crate::accelerators::put,
        crate::sites::regions, crate::sites::sites, crate::sites::site, crate::sites::put_site, crate::sites::telemetry,
        crate::sites::site_jobs, crate::sites::series, crate::sites::drain, crate::sites::undrain, crate::sites::links, crate::sites::put_link,
        crate::tenants::tenants, crate::tenants::create_tenant, crate::tenants::tokens, crate::tenants::create_token,
        crate::tenants::revoke_token, crate::tenants::providers, crate::tenants::put_provider, crate::tenants::quotas, crate::tenants::put_quota, crate::tenants::shares, crate::tenants::put_share, crate::tenants::classes, crate::tenants::put_class, crate::tenants::spills, crate::tenants::put_spill, crate::audit::list, crate::audit::export,
        crate::agent::register, crate::agent::heartbeat, crate::agent::lease, crate::agent::report, crate::agent::list,
        crate::health::healthz, crate::health::readyz, crate::health::metrics, document,
    ),
    components(schemas(suanwang_api::ErrorBody, suanwang_api::ServerEvent, suanwang_api::JobsEvent, suanwang_api::Resync, suanwang_api::Order)),
    modifiers(&BearerAuth, &CommonErrors, &Links),
    tags(
        (name = "jobs", description = "Submit jobs, follow them and ask why they went where they went (tenants see their own)."),
        (name = "network", description = "The network now: use, power, carbon and price per site, flows, savings, live events."),
        (name = "sites", description = "Sites, regions, links and the accelerator catalogue; operators edit and drain them, and providers their own sites."),
        (name = "admin", description = "Tenants, providers and API tokens (admins; providers issue their sites' agent tokens); the audit log (admins and operators all of it, providers their sites', tenants their jobs')."),
        (name = "agents", description = "The site agents' protocol: register, heartbeat, lease work, report (a site's agent token, its provider's, or an operator's)."),
        (name = "ops", description = "Health, readiness, metrics and this document; no token needed."),
    )
)]
struct ApiDoc;

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let document = <ApiDoc as utoipa::OpenApi>::openapi();
    // Two things utoipa's derive cannot say, written into the document as JSON.
    let Ok(mut json) = serde_json::to_value(&document) else {
        return document;
    };
    unsigned_bounds(&mut json);
    if let Some(variants) = json
        .pointer_mut("/components/schemas/NewToken/oneOf")
        .and_then(serde_json::Value::as_array_mut)
    {
        // An enum's variants refuse unknown fields as its structs do.
        for variant in variants {
            variant["additionalProperties"] = false.into();
        }
    }
    serde_json::from_value(json).unwrap_or(document)
}

/// utoipa writes `u32` and `u64` as `int32` and `int64` with a minimum of 0,
/// formats that bound them at 2^31 - 1 and 2^63 - 1; the server takes the whole
/// unsigned range. Such an integer without a maximum of its own gets the
/// unsigned bound instead of the format.
fn unsigned_bounds(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(fields) => {
            let unsigned = fields.get("minimum").and_then(Value::as_u64) == Some(0)
                && !fields.contains_key("maximum");
            let bound = match fields.get("format").and_then(Value::as_str) {
                Some("int32") if unsigned => Some(Value::from(u32::MAX)),
                Some("int64") if unsigned => Some(Value::from(u64::MAX)),
                _ => None,
            };
            if let Some(bound) = bound {
                fields.remove("format");
                fields.insert("maximum".into(), bound);
            }
            fields.values_mut().for_each(unsigned_bounds);
        }
        Value::Array(items) => items.iter_mut().for_each(unsigned_bounds),
        _ => {}
    }
}

#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi", tag = "ops",
    responses((status = 200, description = "this document (OpenAPI 3.1)", body = Object)))]
pub(crate) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_integers_take_their_whole_range() {
        let mut schema = serde_json::json!({"properties": {
            "a": {"type": "integer", "format": "int32", "minimum": 0},
            "b": {"type": "integer", "format": "int64", "minimum": 0},
            "c": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 10},
            "d": {"type": "integer", "format": "int64"},
        }});
        unsigned_bounds(&mut schema);
        let p = &schema["properties"];
        assert_eq!(
            p["a"],
            serde_json::json!({"type": "integer", "minimum": 0, "maximum": 4294967295u32})
        );
        assert_eq!(p["b"]["maximum"], u64::MAX);
        assert!(p["b"].get("format").is_none());
        assert_eq!(p["c"]["format"], "int32", "its own bounds stay");
        assert_eq!(p["d"]["format"], "int64", "a signed integer stays");
    }

    #[test]
    fn every_route_lists_what_its_extractors_can_refuse() {
        let document = serde_json::to_value(openapi()).unwrap();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let statuses = operation["responses"].as_object().unwrap();
                let has = |s: &str| statuses.contains_key(s);
                let what = format!("{method} {path}");
                if operation.get("security").is_some() {
                    assert!(has("401") && has("429") && has("503"), "{what}");
                }
                if operation.get("requestBody").is_some() {
                    assert!(has("400") && has("413"), "{what}");
                }
                for (status, response) in statuses {
                    assert!(
                        response["description"]
                            .as_str()
                            .is_some_and(|d| !d.is_empty()),
                        "{what} {status} has no description"
                    );
                }
            }
        }
        assert_eq!(
            document["components"]["schemas"]["NewToken"]["oneOf"][0]["additionalProperties"],
            false
        );
    }
}
