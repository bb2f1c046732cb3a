//! The HTTP API over a real socket and a real SQLite database: auth, tenant
//! isolation on every job route, idempotency, and bad input naming the field.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use suanwang_server::{App, auth};
use suanwang_store::{Role, SqliteStore};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

struct Server {
    base: String,
    admin: String,
    acme: String,
    beta: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn token(store: &SqliteStore, role: Role, tenant: Option<&str>) -> String {
    auth::issue_token(store, role, tenant, 0).await.unwrap()
}

async fn start() -> Server {
    let dir = std::env::temp_dir().join(format!("suanwang-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.db", COUNTER.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_file(&path);
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let admin = token(&store, Role::Admin, None).await;
    let acme = token(&store, Role::Tenant, Some("acme")).await;
    let beta = token(&store, Role::Tenant, Some("beta")).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let topology = suanwang_topology::builtin("cn-west").unwrap();
    let mut app = App::new(store, topology);
    // These tests knock on every route without a token, far more than the 30
    // failures a minute an address is allowed (tests/tls.rs covers that limit).
    app.limits = suanwang_server::limits::Limiter::new(suanwang_server::limits::LimitPolicy {
        auth_failures_per_minute: 0,
        ..Default::default()
    });
    tokio::spawn(suanwang_server::run(listener, app, async {
        let _ = stopped.await;
    }));
    Server {
        base,
        admin,
        acme,
        beta,
        _stop: stop,
    }
}

fn job() -> Value {
    json!({
        "demand": [{"class": "A800", "count": 8}, {"class": "cpu", "count": 64}],
        "duration": "2h",
        "deadline": "24h",
        "origin": "chongqing",
        "data": {"size_gib": 500, "location": "chongqing"},
        "residency": ["cn-mainland"],
        "command": ["python", "train.py"]
    })
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = client.post(url).bearer_auth(token).json(body);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn submit_get_list_cancel_with_idempotency() {
    let s = start().await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/jobs", s.base);
    let (status, first) = post(&client, &url, &s.acme, &job(), Some("run-1")).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["state"], "Pending");
    assert_eq!(
        first["spec"]["duration"], 7200,
        "durations are normalised to seconds"
    );
    assert_eq!(
        first["spec"]["demand"][0]["class"], "a800",
        "class names are canonical"
    );
    let (status, again) = post(&client, &url, &s.acme, &job(), Some("run-1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        again["id"], first["id"],
        "a retried submit returns the same job"
    );
    let id = first["id"].as_i64().unwrap();
    let got: Value = client
        .get(format!("{url}/{id}"))
        .bearer_auth(&s.acme)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["id"], id);
    for _ in 0..3 {
        post(&client, &url, &s.acme, &job(), None).await;
    }
    let page: Value = client
        .get(format!("{url}?limit=2"))
        .bearer_auth(&s.acme)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["jobs"].as_array().unwrap().len(), 2);
    let next = page["next"].as_i64().unwrap();
    let rest: Value = client
        .get(format!("{url}?after={next}"))
        .bearer_auth(&s.acme)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["jobs"].as_array().unwrap().len(), 2);
    // Newest first, paged with `before`.
    let get = |q: String| {
        let req = client.get(format!("{url}?{q}")).bearer_auth(&s.acme);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let ids = |page: &Value| -> Vec<i64> {
        page["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_i64().unwrap())
            .collect()
    };
    let (_, newest) = get("order=desc&limit=3".into()).await;
    let first = ids(&newest);
    assert_eq!(first.len(), 3);
    assert!(first.windows(2).all(|w| w[0] > w[1]), "{first:?}");
    let (_, older) = get(format!("order=desc&before={}", newest["next"])).await;
    assert_eq!(ids(&older), vec![id], "the oldest comes last");
    let (status, err) = get("order=sideways".into()).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "not in the document's enum"
    );
    assert_eq!(err["field"], "order");
    // Both cursors bound a range, in either order.
    let (top, bottom) = (first[0], ids(&older)[0]);
    let (status, between) = get(format!("after={bottom}&before={top}")).await;
    assert_eq!(status, StatusCode::OK, "{between}");
    let between = ids(&between);
    assert!(between.windows(2).all(|w| w[0] < w[1]), "{between:?}");
    assert!(
        between.iter().all(|id| (bottom + 1..top).contains(id)),
        "{between:?}"
    );
    let (_, reversed) = get(format!("order=desc&after={bottom}&before={top}")).await;
    let mut reversed = ids(&reversed);
    reversed.reverse();
    assert_eq!(reversed, between, "the same jobs, newest first");
    let cancelled = client
        .post(format!("{url}/{id}/cancel"))
        .bearer_auth(&s.acme)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), StatusCode::OK);
    let again = client
        .post(format!("{url}/{id}/cancel"))
        .bearer_auth(&s.acme)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let pending: Value = client
        .get(format!("{url}?state=Pending"))
        .bearer_auth(&s.acme)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pending["jobs"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn tenants_see_and_touch_only_their_own_jobs() {
    let s = start().await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/jobs", s.base);
    let (_, mine) = post(&client, &url, &s.acme, &job(), Some("same-key")).await;
    let id = mine["id"].as_i64().unwrap();
    // The other tenant: same key is its own, get and cancel are 404, list is empty.
    let (status, theirs) = post(&client, &url, &s.beta, &job(), Some("same-key")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(theirs["id"], mine["id"]);
    let get = client
        .get(format!("{url}/{id}"))
        .bearer_auth(&s.beta)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::NOT_FOUND);
    let cancel = client
        .post(format!("{url}/{id}/cancel"))
        .bearer_auth(&s.beta)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::NOT_FOUND);
    let list: Value = client
        .get(format!("{url}?tenant_id=1"))
        .bearer_auth(&s.beta)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        list["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["id"] != mine["id"]),
        "a tenant filter cannot widen a tenant's view"
    );
    // The admin sees both; but only tenants submit.
    let all: Value = client
        .get(&url)
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["jobs"].as_array().unwrap().len(), 2);
    let (status, _) = post(&client, &url, &s.admin, &job(), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn missing_or_unknown_tokens_are_401_on_every_route() {
    let s = start().await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/jobs", s.base);
    let routes = [
        client.post(&url).json(&job()),
        client.get(&url),
        client.get(format!("{url}/1")),
        client.post(format!("{url}/1/cancel")),
        client.get(format!("{url}/1/explain")),
        client.get(format!("{}/v1/sites", s.base)),
        client.get(format!("{}/v1/sites/hami", s.base)),
        client.get(format!("{}/v1/overview", s.base)),
        client.get(format!("{}/v1/events", s.base)),
        client.get(format!("{}/v1/flows", s.base)),
        client.get(format!("{}/v1/regions", s.base)),
        client.get(format!("{}/v1/savings", s.base)),
        client.get(format!("{}/v1/sites/hami/series", s.base)),
        client.get(format!("{}/v1/sites/hami/telemetry", s.base)),
        client.get(format!("{url}/1/logs")),
        client
            .post(format!("{}/v1/agents", s.base))
            .json(&json!({"site": "hami", "executor": "local"})),
        client.get(format!("{}/v1/agents", s.base)),
        client
            .put(format!("{}/v1/sites/hami", s.base))
            .json(&json!({})),
        client.post(format!("{}/v1/sites/hami/drain", s.base)),
        client.post(format!("{}/v1/sites/hami/undrain", s.base)),
        client.get(format!("{}/v1/links", s.base)),
        client
            .put(format!("{}/v1/links/hami/chongqing", s.base))
            .json(&json!({})),
        client.get(format!("{}/v1/tenants", s.base)),
        client
            .post(format!("{}/v1/tenants", s.base))
            .json(&json!({"name": "x"})),
        client.get(format!("{}/v1/tokens", s.base)),
        client
            .post(format!("{}/v1/tokens", s.base))
            .json(&json!({"role": "admin"})),
        client.delete(format!("{}/v1/tokens/0123456789abcdef", s.base)),
        client
            .post(format!("{}/v1/agents/ag_x/heartbeat", s.base))
            .json(&json!({})),
        client
            .post(format!("{}/v1/agents/ag_x/lease", s.base))
            .json(&json!({"max": 1})),
        client
            .post(format!("{}/v1/agents/ag_x/report", s.base))
            .json(&json!({"job": 1, "token": 1, "state": "Running"})),
    ];
    for req in routes {
        let req = req.build().unwrap();
        let (method, path) = (req.method().clone(), req.url().path().to_string());
        let no_token = client.execute(req.try_clone().unwrap()).await.unwrap();
        assert_eq!(
            no_token.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        let body: Value = no_token.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized");
        let mut wrong = req;
        wrong
            .headers_mut()
            .insert("authorization", "Bearer sw_nope".parse().unwrap());
        assert_eq!(
            client.execute(wrong).await.unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
    }
    let health = client
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_input_names_the_field_and_is_never_a_500() {
    let s = start().await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/jobs", s.base);
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"demand": [{"class": "a800", "count": 1}], "duration": "1h", "colour": "red"}),
            StatusCode::BAD_REQUEST,
            "/",
        ),
        (
            json!({"demand": [{"class": "a800", "count": "many"}], "duration": "1h"}),
            StatusCode::BAD_REQUEST,
            "/demand/0/count",
        ),
        (
            json!({"demand": [{"class": "v100", "count": 1}], "duration": "1h"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/demand/0/class",
        ),
        (
            json!({"demand": [{"class": "a800", "count": -4}], "duration": "1h"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/demand/0/count",
        ),
        (
            json!({"demand": [{"class": "a800", "count": 10_000_000}], "duration": "1h"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/demand/0/count",
        ),
        (
            json!({"demand": [{"class": "a800", "count": 1}], "duration": "2h", "deadline": "1h"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/deadline",
        ),
        (
            json!({"demand": [{"class": "a800", "count": 1}], "duration": "soon"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/duration",
        ),
        (
            json!({"demand": [], "duration": "1h"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/demand",
        ),
        (
            json!({"demand": [{"class": "a800", "count": 1}], "duration": "1h", "origin": "mars"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/origin",
        ),
        (
            json!({"demand": [{"class": "a800", "count": 1}], "duration": "1h", "residency": ["atlantis"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/residency/0",
        ),
    ];
    for (body, status, field) in cases {
        let (got, answer) = post(&client, &url, &s.acme, &body, None).await;
        assert_eq!(got, status, "{body} -> {answer}");
        let reported = answer["field"].as_str().unwrap_or("");
        assert!(
            reported.starts_with(field),
            "{body}: field {reported:?}, expected {field:?} ({answer})"
        );
        assert!(!answer["message"].as_str().unwrap_or("").is_empty());
    }
    // Not JSON at all, and too large.
    let resp = client
        .post(&url)
        .bearer_auth(&s.acme)
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let big = format!("{{\"command\": [\"{}\"]}}", "x".repeat(200_000));
    let resp = client
        .post(&url)
        .bearer_auth(&s.acme)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let resp = client
        .post(&url)
        .bearer_auth(&s.acme)
        .header("Idempotency-Key", "has space")
        .json(&job())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = client
        .get(format!("{url}?limit=0"))
        .bearer_auth(&s.acme)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let resp = client
        .get(format!("{url}?bogus=1"))
        .bearer_auth(&s.acme)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_scheduler_places_refuses_and_explains() {
    use suanwang_server::scheduler::Scheduler;
    let dir = std::env::temp_dir().join(format!("suanwang-sched-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.db");
    let _ = std::fs::remove_file(&path);
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let acme = token(&store, Role::Tenant, Some("acme")).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let topology = suanwang_topology::builtin("cn-west").unwrap();
    tokio::spawn(suanwang_server::run(
        listener,
        App::new(store.clone(), topology.clone()),
        std::future::pending(),
    ));
    let client = reqwest::Client::new();
    let url = format!("{base}/v1/jobs");
    let (_, ok) = post(&client, &url, &acme, &job(), None).await;
    let too_big = json!({"demand": [{"class": "a800", "count": 5000}], "duration": "1h"});
    let (_, big) = post(&client, &url, &acme, &too_big, None).await;
    let before: Value = client
        .get(format!("{url}/{}/explain", ok["id"]))
        .bearer_auth(&acme)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before["decisions"][0]["outcome"], "pending");

    let now = ok["created_at"].as_i64().unwrap();
    let scheduler = Scheduler::new(topology, now);
    let report = scheduler.pass(&store, now).await.unwrap();
    assert_eq!((report.placed, report.rejected), (1, 1), "{report:?}");

    let placed: Value = client
        .get(format!("{url}/{}", ok["id"]))
        .bearer_auth(&acme)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(placed["state"], "Placed");
    let site = placed["site"].as_str().unwrap();
    assert!(
        suanwang_topology::builtin("cn-west")
            .unwrap()
            .site(site)
            .unwrap()
            .jurisdiction
            .0
            == "cn-mainland",
        "residency holds"
    );
    assert!(placed["start_at"].as_i64().unwrap() >= now);
    let why: Value = client
        .get(format!("{url}/{}/explain", ok["id"]))
        .bearer_auth(&acme)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let decision = &why["decisions"][0];
    assert_eq!(decision["outcome"], "placed");
    assert_eq!(decision["explanation"]["chosen"]["site"], site);
    assert!(decision["explanation"]["chosen"]["score"].as_f64().unwrap() > 0.0);

    let refused: Value = client
        .get(format!("{url}/{}/explain", big["id"]))
        .bearer_auth(&acme)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refused["job"]["state"], "Failed");
    assert!(
        refused["decisions"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("largest allowed site offers"),
        "{refused}"
    );

    // The overview counts the placed job at its site (queued or running, by its start).
    let overview: Value = client
        .get(format!("{base}/v1/overview"))
        .bearer_auth(&acme)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = overview["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["site"] == site)
        .unwrap()
        .clone();
    assert_eq!(
        entry["queued"].as_u64().unwrap() + entry["running"].as_u64().unwrap(),
        1,
        "{entry}"
    );
    assert_eq!(overview["pending"], 0);
    assert!(entry["grid_kg_per_kwh"].as_f64().unwrap() > 0.0);
    // A second pass has nothing left to do, and the placement stays.
    let again = scheduler.pass(&store, now + 10).await.unwrap();
    assert_eq!((again.placed, again.rejected, again.waiting), (0, 0, 0));
    let sites: Value = client
        .get(format!("{base}/v1/sites"))
        .bearer_auth(&acme)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sites.as_array().unwrap().len(), 8);
    let hami = client
        .get(format!("{base}/v1/sites/hami"))
        .bearer_auth(&acme)
        .send()
        .await
        .unwrap();
    assert_eq!(hami.status(), StatusCode::OK);
    let nowhere = client
        .get(format!("{base}/v1/sites/atlantis"))
        .bearer_auth(&acme)
        .send()
        .await
        .unwrap();
    assert_eq!(nowhere.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn openapi_document_describes_the_routes() {
    let s = start().await;
    let doc: Value = reqwest::get(format!("{}/openapi.json", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/jobs",
        "/v1/jobs/{id}",
        "/v1/jobs/{id}/cancel",
        "/v1/jobs/{id}/explain",
        "/v1/sites",
        "/v1/sites/{id}",
        "/v1/sites/{id}/series",
        "/v1/events",
        "/v1/flows",
        "/v1/regions",
        "/v1/savings",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert!(doc["paths"]["/v1/jobs"]["post"]["responses"]["422"].is_object());
    assert!(doc["components"]["schemas"]["JobSubmission"]["properties"]["demand"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn the_accelerator_catalogue_is_listed_and_extended() {
    let s = start().await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/accelerators", s.base);
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = client.get(&url).bearer_auth(&s.acme).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let list: Vec<Value> = resp.json().await.unwrap();
    let find = |name: &str| list.iter().find(|m| m["name"] == name).cloned();
    let h100 = find("h100").expect("h100 is built in");
    assert_eq!(h100["fp16_tflops"], 989.4);
    assert_eq!(h100["family"], "nvidia-hopper");
    assert_eq!(h100["builtin"], true);
    let p800 = find("kunlunp800").expect("Kunlun P800 is built in");
    assert!(
        p800.get("fp16_tflops").is_none(),
        "no invented figure: {p800}"
    );
    assert!(
        p800["source"]
            .as_str()
            .unwrap()
            .contains("no public datasheet")
    );
    assert!(
        find("cpu").is_none() && find("mem_gib").is_none(),
        "accelerators only"
    );
    for name in [
        "a100",
        "a800",
        "h800",
        "h20",
        "h200",
        "l20",
        "l40s",
        "rtx4090",
        "ascend910b",
        "ascend910c",
        "hygonk100",
        "mlu370",
    ] {
        assert!(find(name).is_some(), "{name} missing");
    }
    let put = |token: &str, name: &str, body: Value| {
        client
            .put(format!("{url}/{name}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let spec = json!({"name": "api-xpu", "vendor": "Example", "family": "example",
        "memory_gib": 32, "fp16_tflops": 100, "aliases": ["Example XPU"]});
    let resp = put(&s.acme, "api-xpu", spec.clone()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = put(&s.admin, "api-xpu", spec.clone()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(
        (doc["builtin"].clone(), doc["model"].clone()),
        (json!(false), json!("api-xpu"))
    );
    assert_eq!(
        put(&s.admin, "api-xpu", spec.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let listed: Vec<Value> = client
        .get(&url)
        .bearer_auth(&s.beta)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed.iter().any(|m| m["name"] == "api-xpu"));
    let refused = |status: StatusCode, body: Value, field: Option<&str>, words: &[&str]| {
        assert!(
            words
                .iter()
                .all(|w| body["message"].as_str().unwrap_or("").contains(w)),
            "{status}: {body}"
        );
        if let Some(field) = field {
            assert_eq!(body["field"], field, "{body}");
        }
    };
    let mut other = spec.clone();
    other["memory_gib"] = json!(64);
    let resp = put(&s.admin, "api-xpu", other).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    refused(
        StatusCode::CONFLICT,
        resp.json().await.unwrap(),
        None,
        &["already registered", "memory_gib"],
    );
    let mut builtin = spec.clone();
    builtin["name"] = json!("h100");
    let resp = put(&s.admin, "h100", builtin).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    refused(
        StatusCode::CONFLICT,
        resp.json().await.unwrap(),
        None,
        &["built-in class \"h100\""],
    );
    let mut bad = spec.clone();
    bad["name"] = json!("api-bad");
    bad["memory_gib"] = json!(0);
    let resp = put(&s.admin, "api-bad", bad).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    refused(
        StatusCode::UNPROCESSABLE_ENTITY,
        resp.json().await.unwrap(),
        Some("/memory_gib"),
        &["out of range"],
    );
    let resp = put(&s.admin, "other-name", spec.clone()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    refused(
        StatusCode::UNPROCESSABLE_ENTITY,
        resp.json().await.unwrap(),
        Some("/name"),
        &["differs"],
    );
}
