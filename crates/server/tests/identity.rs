//! Sites owned by others, over a real socket and SQLite: providers own sites, an
//! agent's token speaks for its one site, and what each role may see and do.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use suanwang_server::scheduler::Scheduler;
use suanwang_server::{App, TopologyCell, auth};
use suanwang_store::{Role, SqliteStore, Store};

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

async fn start(name: &str) -> Net {
    let dir = std::env::temp_dir().join(format!("suanwang-identity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.db"));
    let _ = std::fs::remove_file(&path);
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

impl Net {
    async fn call(
        &self,
        method: Method,
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
        self.call(Method::GET, path, token, None).await
    }
    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }
    async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, token, Some(body)).await
    }
    /// A new token from `POST /v1/tokens`, as `issuer`.
    async fn token(&self, issuer: &str, body: Value) -> String {
        let (status, issued) = self.post("/v1/tokens", issuer, body).await;
        assert_eq!(status, StatusCode::CREATED, "{issued}");
        issued["token"].as_str().unwrap().to_string()
    }
    async fn register(&self, token: &str, site: &str) -> (StatusCode, Value) {
        self.post(
            "/v1/agents",
            token,
            json!({"site": site, "executor": "test", "capacity": {"cpu": 8}}),
        )
        .await
    }
    async fn refusals(&self) -> u64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("suanwang_identity_refusals_total "))
            .map_or(0, |v| v.trim().parse().unwrap())
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Two providers, each owning one site, with a provider token and an agent
/// token each.
struct Owners {
    west: String,
    east: String,
    hami_agent: String,
}

async fn owners(net: &Net) -> Owners {
    let (status, west) = net
        .put(
            "/v1/providers/west-dc",
            &net.admin,
            json!({"sites": ["hami"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{west}");
    assert_eq!(west["sites"], json!(["hami"]));
    let (status, _) = net
        .put(
            "/v1/providers/east-dc",
            &net.admin,
            json!({"sites": ["zhongwei"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    Owners {
        west: net
            .token(
                &net.admin,
                json!({"role": "provider", "provider": "west-dc"}),
            )
            .await,
        east: net
            .token(
                &net.admin,
                json!({"role": "provider", "provider": "east-dc"}),
            )
            .await,
        hami_agent: net
            .token(&net.admin, json!({"role": "agent", "site": "hami"}))
            .await,
    }
}

#[tokio::test]
async fn an_agent_token_for_hami_cannot_act_for_zhongwei() {
    let net = start("agent").await;
    let who = owners(&net).await;
    let before = net.refusals().await;

    let (status, refused) = net.register(&who.hami_agent, "zhongwei").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["code"], "forbidden");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("agent of hami") && message.contains("\"zhongwei\""),
        "{message}"
    );

    let (status, mine) = net.register(&who.hami_agent, "hami").await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    let mine = mine["agent_id"].as_str().unwrap().to_string();
    let (status, theirs) = net.register(&net.operator, "zhongwei").await;
    assert_eq!(status, StatusCode::CREATED, "operators act for every site");
    let theirs = theirs["agent_id"].as_str().unwrap().to_string();

    let beat = json!({"held": []});
    let lease = json!({"max": 1, "wait_ms": 0});
    let report = json!({"job": 1, "token": 1, "state": "Running"});
    for (path, body) in [
        (format!("/v1/agents/{theirs}/heartbeat"), &beat),
        (format!("/v1/agents/{theirs}/lease"), &lease),
        (format!("/v1/agents/{theirs}/report"), &report),
    ] {
        let (status, answer) = net.post(&path, &who.hami_agent, body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
    }
    let (status, answer) = net
        .post(
            &format!("/v1/agents/{mine}/heartbeat"),
            &who.hami_agent,
            beat,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = net
        .post(&format!("/v1/agents/{mine}/lease"), &who.hami_agent, lease)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(net.refusals().await, before + 4, "each refusal is counted");

    // Nor may it drain another site, edit its own, or see others' agents.
    let (status, _) = net
        .post("/v1/sites/zhongwei/drain", &who.hami_agent, json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, hami) = net.get("/v1/sites/hami", &who.hami_agent).await;
    let (status, _) = net
        .put("/v1/sites/hami", &who.hami_agent, hami["site"].clone())
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an agent's token edits no site"
    );
    let (status, agents) = net.get("/v1/agents", &who.hami_agent).await;
    assert_eq!(status, StatusCode::OK);
    let sites: Vec<&str> = agents
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["site"].as_str().unwrap())
        .collect();
    assert_eq!(sites, ["hami"]);
    let (_, agents) = net.get("/v1/agents", &who.east).await;
    assert_eq!(agents.as_array().unwrap().len(), 1, "east sees zhongwei's");
    let (status, _) = net.get("/v1/agents", &net.acme).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "tenants see no agents");
}

#[tokio::test]
async fn providers_run_their_own_sites_only() {
    let net = start("providers").await;
    let who = owners(&net).await;

    // A site has one owner.
    let (status, taken) = net
        .put(
            "/v1/providers/east-dc",
            &net.admin,
            json!({"sites": ["zhongwei", "hami"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{taken}");
    assert!(taken["message"].as_str().unwrap().contains("west-dc"));
    let (status, _) = net
        .put(
            "/v1/providers/east-dc",
            &who.west,
            json!({"sites": ["hami"]}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only admins say who owns what"
    );
    let (status, bad) = net
        .put(
            "/v1/providers/east-dc",
            &net.admin,
            json!({"sites": ["ok", "no way"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad["field"], "/sites/1");

    // Edit, drain and undrain: its own site yes, another's no.
    let (_, hami) = net.get("/v1/sites/hami", &who.west).await;
    let mut site = hami["site"].clone();
    site["name"] = json!("Hami, west-dc's");
    let (status, edited) = net.put("/v1/sites/hami", &who.west, site).await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    let (_, zhongwei) = net.get("/v1/sites/zhongwei", &who.west).await;
    let (status, _) = net
        .put("/v1/sites/zhongwei", &who.west, zhongwei["site"].clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for action in ["drain", "undrain"] {
        let (status, _) = net
            .post(
                &format!("/v1/sites/zhongwei/{action}"),
                &who.west,
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action} another's site");
        let (status, doc) = net
            .post(&format!("/v1/sites/hami/{action}"), &who.west, json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{action} its own: {doc}");
    }
    let (status, _) = net
        .put(
            "/v1/links/hami/zhongwei",
            &who.west,
            json!({"a": "hami", "b": "zhongwei", "bandwidth_gbps": 10.0, "rtt_ms": 20.0}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "links are the operators'");

    // Agent tokens for its own sites; nothing else.
    let (status, issued) = net
        .post(
            "/v1/tokens",
            &who.west,
            json!({"role": "agent", "site": "hami"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let issued_id = issued["id"].as_str().unwrap().to_string();
    let fresh = issued["token"].as_str().unwrap().to_string();
    for body in [
        json!({"role": "agent", "site": "zhongwei"}),
        json!({"role": "tenant", "tenant": "acme"}),
        json!({"role": "operator"}),
    ] {
        let (status, answer) = net.post("/v1/tokens", &who.west, body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}: {answer}");
    }
    let (status, listed) = net.get("/v1/tokens", &who.west).await;
    assert_eq!(status, StatusCode::OK);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "hami's two agent tokens only: {listed:?}");
    assert!(
        listed
            .iter()
            .all(|t| t["role"] == "agent" && t["site"] == "hami")
    );
    let (_, all) = net.get("/v1/tokens", &net.admin).await;
    let east_token = all
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "provider" && t["provider_id"] != listed[0]["provider_id"])
        .map(|t| t["id"].as_str().unwrap().to_string())
        .unwrap();
    let (status, _) = net
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{east_token}"),
            &who.west,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not its token to revoke");
    let (status, _) = net.register(&fresh, "hami").await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = net
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{issued_id}"),
            &who.west,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = net.register(&fresh, "hami").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked at once");

    // Providers see themselves; tenants no provider.
    let (_, mine) = net.get("/v1/providers", &who.west).await;
    assert_eq!(
        mine,
        json!([{"id": mine[0]["id"], "name": "west-dc", "sites": ["hami"]}])
    );
    let (_, every) = net.get("/v1/providers", &net.operator).await;
    assert_eq!(every.as_array().unwrap().len(), 2);
    let (status, _) = net.get("/v1/providers", &net.acme).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_provider_sees_the_jobs_at_its_sites_without_what_they_run() {
    let net = start("jobs").await;
    let who = owners(&net).await;
    let body = json!({
        "demand": [{"class": "cpu", "count": 2}], "duration": "30m", "site": "hami",
        "delayable": false, "command": ["train", "--secret-flag"], "env": {"API_KEY": "s3cret"},
    });
    let (status, job) = net.post("/v1/jobs", &net.acme, body).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_i64().unwrap();
    Scheduler::new(suanwang_topology::builtin("cn-west").unwrap(), now())
        .following(Arc::clone(&net.network))
        .pass(&net.store, now())
        .await
        .unwrap();

    let (status, page) = net.get("/v1/sites/hami/jobs", &who.west).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let jobs = page["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{page}");
    assert_eq!(jobs[0]["id"], id);
    assert_eq!(jobs[0]["state"], "Placed");
    assert_eq!(jobs[0]["demand"], json!([{"class": "cpu", "count": 2}]));
    let text = page.to_string();
    assert!(
        !text.contains("secret") && !text.contains("s3cret") && !text.contains("command"),
        "no command or environment: {text}"
    );
    let (status, page) = net.get("/v1/sites/hami/jobs", &who.hami_agent).await;
    assert_eq!(
        (status, page["jobs"].as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
    let (status, _) = net.get("/v1/sites/hami/jobs", &net.operator).await;
    assert_eq!(status, StatusCode::OK);

    // Not another's site, not the tenants' view, and no provider's view for tenants.
    let (status, _) = net.get("/v1/sites/hami/jobs", &who.east).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = net.get("/v1/sites/hami/jobs", &net.acme).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a tenant has no provider's view"
    );
    let (status, _) = net.get("/v1/jobs", &who.west).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for path in [
        format!("/v1/jobs/{id}"),
        format!("/v1/jobs/{id}/logs"),
        format!("/v1/jobs/{id}/explain"),
    ] {
        let (status, _) = net.get(&path, &who.west).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = net
        .post(&format!("/v1/jobs/{id}/cancel"), &who.west, json!({}))
        .await;
    assert!(status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN);
    let (status, bad) = net.get("/v1/sites/hami/jobs?limit=0", &who.west).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
}

/// Entries of `GET /v1/audit` as `token` sees them (every page), or the status.
async fn audit_of(net: &Net, token: &str, query: &str) -> Result<Vec<Value>, StatusCode> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = net
            .get(&format!("/v1/audit?limit=2&after={after}{query}"), token)
            .await;
        if status != StatusCode::OK {
            return Err(status);
        }
        out.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next"].as_i64() {
            Some(next) => after = next,
            None => return Ok(out),
        }
    }
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn refusals_and_changes_are_audited_and_each_role_sees_its_part() {
    let net = start("audit").await;
    let who = owners(&net).await;
    let beta = auth::issue_token(&net.store, Role::Tenant, Some("beta"), 0)
        .await
        .unwrap();

    // hami's agent token tries to speak for zhongwei: 403, and on the record.
    let (status, _) = net.register(&who.hami_agent, "zhongwei").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let refusals = audit_of(&net, &net.admin, "&action=identity.refused")
        .await
        .unwrap();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    let refusal = &refusals[0];
    assert_eq!(refusal["actor"]["role"], "agent");
    assert_eq!(refusal["actor"]["site"], "hami");
    assert_eq!(refusal["subject"]["site"], "zhongwei");
    assert_eq!(
        refusal["actor"]["id"].as_str().unwrap(),
        &auth::digest(&who.hami_agent)[..16],
        "the token is named by its digest's prefix"
    );
    assert!(
        refusal["detail"]
            .as_str()
            .unwrap()
            .contains("register an agent")
    );

    // Work from two tenants, placed by the scheduler; a drain by zhongwei's owner.
    let body = json!({
        "demand": [{"class": "cpu", "count": 2}], "duration": "30m", "site": "hami",
        "delayable": false, "command": ["train"], "env": {"API_KEY": "s3cret"},
    });
    let (status, job) = net.post("/v1/jobs", &net.acme, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let acme_job = job["id"].as_i64().unwrap();
    let (status, job) = net.post("/v1/jobs", &beta, body).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let beta_job = job["id"].as_i64().unwrap();
    Scheduler::new(suanwang_topology::builtin("cn-west").unwrap(), now())
        .following(Arc::clone(&net.network))
        .pass(&net.store, now())
        .await
        .unwrap();
    let (status, _) = net
        .post(
            "/v1/sites/zhongwei/drain",
            &who.east,
            json!({"reason": "power"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Admins see everything, in one unbroken chain.
    let all = audit_of(&net, &net.admin, "").await.unwrap();
    let seqs: Vec<i64> = all.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=all.len() as i64).collect::<Vec<_>>());
    for action in [
        "token.issue",
        "provider.create",
        "provider.sites",
        "identity.refused",
        "job.submit",
        "job.place",
        "site.drain",
    ] {
        assert!(
            actions(&all).contains(&action),
            "{action}: {:?}",
            actions(&all)
        );
    }
    assert!(
        !serde_json::to_string(&all).unwrap().contains("s3cret"),
        "no job's environment in the log"
    );
    let placed = all
        .iter()
        .filter(|e| e["action"] == "job.place")
        .collect::<Vec<_>>();
    assert_eq!(placed.len(), 2);
    assert!(placed.iter().all(|e| e["actor"]["role"] == "scheduler"));
    let verdict = suanwang_store::audit::verify(&net.store, |_| {})
        .await
        .unwrap();
    assert_eq!(verdict.finding, None);
    assert_eq!(verdict.checked, all.len() as u64);

    // A tenant: its own token's and job's entries only.
    let acme = audit_of(&net, &net.acme, "").await.unwrap();
    assert_eq!(actions(&acme), ["token.issue", "job.submit", "job.place"]);
    assert!(acme[1..].iter().all(|e| e["subject"]["job"] == acme_job));
    let theirs = audit_of(&net, &beta, "").await.unwrap();
    assert!(
        theirs
            .iter()
            .all(|e| e["subject"]["tenant_id"] != acme[0]["subject"]["tenant_id"])
    );
    assert!(theirs.iter().any(|e| e["subject"]["job"] == beta_job));
    // Filters narrow within a party's view, never beyond it.
    let asked = audit_of(&net, &net.acme, &format!("&job={beta_job}"))
        .await
        .unwrap();
    assert!(asked.is_empty(), "another tenant's job: {asked:?}");

    // Providers: entries about their sites or by their agents.
    let west = audit_of(&net, &who.west, "").await.unwrap();
    assert!(
        actions(&west).contains(&"identity.refused"),
        "by hami's agent"
    );
    assert!(actions(&west).contains(&"job.place"));
    assert!(
        !actions(&west).contains(&"site.drain"),
        "zhongwei's drain is east's"
    );
    let east = audit_of(&net, &who.east, "").await.unwrap();
    assert!(
        actions(&east).contains(&"identity.refused"),
        "about zhongwei"
    );
    assert!(actions(&east).contains(&"site.drain"));
    assert!(
        !actions(&east).contains(&"job.place"),
        "nothing placed at zhongwei"
    );
    let at_hami = audit_of(&net, &net.admin, "&site=hami&action=job.place")
        .await
        .unwrap();
    assert_eq!(at_hami.len(), 2);

    // Agents read no audit log.
    assert_eq!(
        audit_of(&net, &who.hami_agent, "").await.unwrap_err(),
        StatusCode::FORBIDDEN
    );
    let (status, bad) = net.get("/v1/audit?limit=0", &net.admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");

    // The export: the same entries as JSON lines.
    let resp = net
        .http
        .get(format!("{}/v1/audit/export", net.base))
        .bearer_auth(&net.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    let text = resp.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, all);
    let client = suanwang_client::Client::new(&net.base, Some(net.acme.clone()));
    let exported = client
        .audit_export(&suanwang_api::AuditQuery::default())
        .await
        .unwrap();
    assert_eq!(exported.len(), 3, "a tenant's export is its view");
    let page = client
        .audit(&suanwang_api::AuditQuery {
            action: Some("job.place".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].subject.job, Some(acme_job));
}

/// Submits written in one transaction by one tenant's token are one entry
/// covering a run of jobs: `GET /v1/audit?job=N` finds it by any job of the
/// run, for an admin and for the tenant, never for another tenant; and every
/// job submitted over HTTP at once is covered by exactly one `job.submit`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_submits_is_one_entry_found_by_each_of_its_jobs() {
    let net = start("runs").await;
    let beta = auth::issue_token(&net.store, Role::Tenant, Some("beta"), 0)
        .await
        .unwrap();
    let body = json!({
        "demand": [{"class": "cpu", "count": 1}], "duration": "5m",
        "command": ["true"],
    });
    // Many at once: the group commit writes them in batches.
    let mut submits = tokio::task::JoinSet::new();
    for _ in 0..48 {
        let req = net
            .http
            .post(format!("{}/v1/jobs", net.base))
            .bearer_auth(&net.acme)
            .json(&body);
        submits.spawn(async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        });
    }
    let mut ids = Vec::new();
    for (status, job) in submits.join_all().await {
        assert_eq!(status, StatusCode::CREATED, "{job}");
        ids.push(job["id"].as_i64().unwrap());
    }
    let submits = audit_of(&net, &net.admin, "&action=job.submit")
        .await
        .unwrap();
    assert!(submits.len() <= ids.len());
    for id in &ids {
        let found = audit_of(&net, &net.acme, &format!("&job={id}&action=job.submit"))
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "job {id}: {found:?}");
        let first = found[0]["subject"]["job"].as_i64().unwrap();
        let last = found[0]["subject"]["job_last"].as_i64().unwrap_or(first);
        assert!((first..=last).contains(id), "{found:?}");
        if last > first {
            let detail: Value = serde_json::from_str(found[0]["detail"].as_str().unwrap()).unwrap();
            assert_eq!(detail["count"], last - first + 1);
        }
    }

    // One batch of three, written as the group commit writes it.
    let acme = net.store.tenant("acme", 0).await.unwrap().id;
    let actor = suanwang_store::Actor {
        role: "tenant".into(),
        id: auth::digest(&net.acme)[..16].to_string(),
        tenant_id: Some(acme),
        provider_id: None,
        site: None,
    };
    let batch: Vec<suanwang_store::NewJob> = ["a", "b", "c"]
        .iter()
        .map(|key| suanwang_store::NewJob {
            actor: actor.clone(),
            tenant_id: acme,
            idempotency_key: Some((*key).to_string()),
            spec: "{}".into(),
        })
        .collect();
    let written = net.store.submit_many(&batch, now()).await.unwrap();
    let (first, last) = (written[0].0.id, written[2].0.id);
    assert_eq!(last, first + 2);
    for (token, seen) in [(&net.admin, 1), (&net.acme, 1), (&beta, 0)] {
        let found = audit_of(&net, token, &format!("&job={}", first + 1))
            .await
            .unwrap();
        assert_eq!(found.len(), seen, "{found:?}");
        if let Some(entry) = found.first() {
            assert_eq!(entry["action"], "job.submit");
            assert_eq!(entry["subject"]["job"], first);
            assert_eq!(entry["subject"]["job_last"], last);
            assert_eq!(entry["subject"]["tenant_id"], acme);
            assert_eq!(
                entry["detail"],
                r#"{"count":3,"idempotency_key":["a","b","c"]}"#
            );
        }
    }
    let verdict = suanwang_store::audit::verify(&net.store, |_| {})
        .await
        .unwrap();
    assert_eq!(verdict.finding, None);
}
