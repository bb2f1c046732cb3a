//! Operators' and admins' routes over a real socket and SQLite: sites created,
//! replaced, drained and undrained (and the scheduler following), links, edits
//! surviving a restart; tenants and tokens issued, listed and revoked.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use suanwang_server::scheduler::Scheduler;
use suanwang_server::{App, TopologyCell, auth};
use suanwang_store::{Role, SqliteStore};

struct Net {
    base: String,
    store: SqliteStore,
    network: Arc<TopologyCell>,
    admin: String,
    operator: String,
    acme: String,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(path: &std::path::Path) -> Net {
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let admin = auth::issue_token(&store, Role::Admin, None, 0)
        .await
        .unwrap();
    let operator = auth::issue_token(&store, Role::Operator, None, 0)
        .await
        .unwrap();
    let acme = auth::issue_token(&store, Role::Tenant, Some("acme"), 0)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = App::new(
        store.clone(),
        suanwang_topology::builtin("cn-west").unwrap(),
    );
    app.load_edits().await.unwrap();
    let network = Arc::clone(&app.network);
    tokio::spawn(suanwang_server::run(listener, app, async {
        let _ = stopped.await;
    }));
    Net {
        base,
        store,
        network,
        admin,
        operator,
        acme,
        http: reqwest::Client::new(),
        _stop: stop,
    }
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("suanwang-admin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.db"));
    let _ = std::fs::remove_file(&path);
    path
}

impl Net {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }
    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }
    async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PUT, path, token, Some(body))
            .await
    }
    fn scheduler(&self) -> Scheduler {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        Scheduler::new(suanwang_topology::builtin("cn-west").unwrap(), now)
            .following(Arc::clone(&self.network))
    }
    async fn pinned_job(&self, site: &str) -> i64 {
        let body = json!({"demand": [{"class": "cpu", "count": 4}], "duration": "30m", "site": site, "delayable": false});
        let (status, job) = self.post("/v1/jobs", &self.acme, body).await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        job["id"].as_i64().unwrap()
    }
    async fn state(&self, job: i64) -> (String, Option<String>) {
        let (_, doc) = self.get(&format!("/v1/jobs/{job}"), &self.acme).await;
        (
            doc["state"].as_str().unwrap().to_string(),
            doc["site"].as_str().map(str::to_string),
        )
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn operators_add_replace_and_drain_sites_and_the_scheduler_follows() {
    let path = temp("sites");
    let net = start(&path).await;
    let (status, sites) = net.get("/v1/sites", &net.acme).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sites.as_array().unwrap().len(), 8);
    assert!(sites[0]["drained"].is_null() && sites[0]["reachable"].is_null());
    let (_, hami) = net.get("/v1/sites/hami", &net.acme).await;
    let mut new_site = hami["site"].clone();
    new_site["id"] = json!("hami-2");
    new_site["name"] = json!("Hami phase 2");

    let (status, _) = net
        .put("/v1/sites/hami-2", &net.acme, new_site.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "tenants cannot edit sites");
    let (status, body) = net
        .put("/v1/sites/other", &net.operator, new_site.clone())
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("/id"))
    );
    let mut bad = new_site.clone();
    bad["pue"] = json!(0.5);
    let (status, body) = net.put("/v1/sites/hami-2", &net.operator, bad).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("/pue")),
        "{body}"
    );
    let mut unknown = new_site.clone();
    unknown["colour"] = json!("red");
    let (status, body) = net.put("/v1/sites/hami-2", &net.operator, unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, sites) = net.get("/v1/sites", &net.acme).await;
    assert_eq!(sites.as_array().unwrap().len(), 8, "nothing half-applied");

    let (status, created) = net
        .put("/v1/sites/hami-2", &net.operator, new_site.clone())
        .await;
    assert_eq!(
        (status, created["id"].as_str()),
        (StatusCode::CREATED, Some("hami-2")),
        "{created}"
    );
    let (status, _) = net
        .put("/v1/sites/hami-2", &net.operator, new_site.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "a replacement");
    let (_, sites) = net.get("/v1/sites", &net.acme).await;
    assert_eq!(sites.as_array().unwrap().len(), 9);

    // Jobs may name it at once, and the scheduler places them there.
    let job = net.pinned_job("hami-2").await;
    let scheduler = net.scheduler();
    scheduler.pass(&net.store, now()).await.unwrap();
    assert_eq!(
        net.state(job).await,
        ("Placed".into(), Some("hami-2".into()))
    );

    // Drained: no new work, placed work goes back; undrained: work again.
    let (status, _) = net.post("/v1/sites/hami/drain", &net.acme, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = net
        .post("/v1/sites/atlantis/drain", &net.operator, json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, drained) = net
        .post(
            "/v1/sites/hami-2/drain",
            &net.operator,
            json!({"reason": "power work"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(drained["drained"]["reason"], "power work");
    let report = scheduler.pass(&net.store, now()).await.unwrap();
    assert_eq!(report.requeued, 1, "{report:?}");
    assert_eq!(
        net.state(job).await.0,
        "Pending",
        "pinned to a drained site, it waits"
    );
    let (_, why) = net.get(&format!("/v1/jobs/{job}/explain"), &net.acme).await;
    assert!(why.to_string().contains("is drained"), "{why}");
    let (status, undrained) = net
        .post("/v1/sites/hami-2/undrain", &net.operator, json!({}))
        .await;
    assert_eq!(
        (status, undrained["drained"].is_null()),
        (StatusCode::OK, true)
    );
    scheduler.pass(&net.store, now()).await.unwrap();
    assert_eq!(
        net.state(job).await,
        ("Placed".into(), Some("hami-2".into()))
    );

    // Links: listed, replaced, added; ends must match the path.
    let (_, links) = net.get("/v1/links", &net.acme).await;
    let mut link = links[0].clone();
    let (a, b) = (
        link["a"].as_str().unwrap().to_string(),
        link["b"].as_str().unwrap().to_string(),
    );
    link["bandwidth_gbps"] = json!(800.0);
    let (status, _) = net
        .put(&format!("/v1/links/{b}/{a}"), &net.operator, link.clone())
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = net
        .put("/v1/links/hami/beijing", &net.operator, link.clone())
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("/a"))
    );
    let new_link =
        json!({"a": "hami-2", "b": "chongqing", "bandwidth_gbps": 400.0, "price_cny_per_gb": 0.02});
    let (status, _) = net
        .put("/v1/links/hami-2/chongqing", &net.operator, new_link)
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // A restart on the same database keeps the edits.
    drop(net);
    let again = start(&path).await;
    let (status, site) = again.get("/v1/sites/hami-2", &again.acme).await;
    assert_eq!(
        (status, site["site"]["name"].as_str()),
        (StatusCode::OK, Some("Hami phase 2"))
    );
    let (_, links) = again.get("/v1/links", &again.acme).await;
    assert!(links.as_array().unwrap().iter().any(|l| l["a"] == "hami-2"));
    assert!(
        links
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["bandwidth_gbps"] == 800.0)
    );
}

#[tokio::test]
async fn admins_manage_tenants_and_tokens() {
    let net = start(&temp("tokens")).await;
    for token in [&net.acme, &net.operator] {
        for path in ["/v1/tenants", "/v1/tokens"] {
            let (status, _) = net.get(path, token).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        }
        let (status, _) = net
            .post("/v1/tokens", token, json!({"role": "admin"}))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, tenant) = net
        .post("/v1/tenants", &net.admin, json!({"name": "gamma"}))
        .await;
    assert_eq!(
        (status, tenant["name"].as_str()),
        (StatusCode::CREATED, Some("gamma"))
    );
    let (status, _) = net
        .post("/v1/tenants", &net.admin, json!({"name": "gamma"}))
        .await;
    assert_eq!(status, StatusCode::OK, "it existed");
    let (status, body) = net
        .post("/v1/tenants", &net.admin, json!({"name": "no spaces"}))
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("/name"))
    );
    let (_, tenants) = net.get("/v1/tenants", &net.admin).await;
    let names: Vec<&str> = tenants
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme", "gamma"]);

    let (status, body) = net
        .post("/v1/tokens", &net.admin, json!({"role": "tenant"}))
        .await;
    // The document says a tenant's token names its tenant and the others do
    // not: a body that breaks that is malformed (400), not merely invalid.
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("tenant"),
        "{body}"
    );
    let (status, body) = net
        .post(
            "/v1/tokens",
            &net.admin,
            json!({"role": "operator", "tenant": "gamma"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("tenant"),
        "{body}"
    );
    let (status, body) = net
        .post("/v1/tokens", &net.admin, json!({"role": "root"}))
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("/role"))
    );
    let (status, issued) = net
        .post(
            "/v1/tokens",
            &net.admin,
            json!({"role": "tenant", "tenant": "gamma"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = issued["token"].as_str().unwrap();
    let id = issued["id"].as_str().unwrap();
    assert!(token.starts_with("sw_") && id.len() == 16);
    let body = json!({"demand": [{"class": "cpu", "count": 1}], "duration": "10m"});
    let (status, job) = net.post("/v1/jobs", token, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");

    let (_, tokens) = net.get("/v1/tokens", &net.admin).await;
    let listed = tokens.to_string();
    assert!(
        listed.contains(id) && !listed.contains(token),
        "ids listed, tokens never"
    );
    assert_eq!(tokens.as_array().unwrap().len(), 4);
    // Paged: three pages of at most 2, 2 and 0 following the `Link` header.
    let mut path = "/v1/tokens?limit=2".to_string();
    let mut pages = Vec::new();
    loop {
        let resp = net
            .http
            .get(format!("{}{path}", net.base))
            .bearer_auth(&net.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let link = resp
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_string());
        let page: Value = resp.json().await.unwrap();
        pages.push(page.as_array().unwrap().clone());
        let Some(link) = link else { break };
        let next = link.strip_prefix('<').unwrap().split_once('>').unwrap().0;
        assert!(link.ends_with("; rel=\"next\""), "{link}");
        path = next.to_string();
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2]);
    let paged: Vec<Value> = pages.concat();
    let mut whole = tokens.as_array().unwrap().clone();
    whole.sort_by_key(|t| t["id"].as_str().unwrap().to_string());
    assert_eq!(paged, whole, "the pages are the list, in id order");
    let (status, _) = net.get("/v1/tokens?limit=0", &net.admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, revoked) = net
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/tokens/{id}"),
            &net.admin,
            None,
        )
        .await;
    assert_eq!((status, revoked["id"].as_str()), (StatusCode::OK, Some(id)));
    assert!(revoked["created_at"].as_i64().unwrap() > 0);
    let (status, _) = net.post("/v1/jobs", token, body).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "revoked at once, cache or not"
    );
    let (status, _) = net
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/tokens/{id}"),
            &net.admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = net
        .call(reqwest::Method::DELETE, "/v1/tokens/abc", &net.admin, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "too short to name one token");
}
