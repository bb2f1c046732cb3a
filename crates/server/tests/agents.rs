//! The agent protocol over a real socket and a real SQLite database: register,
//! lease work under fencing tokens, report, heartbeat renewals and call-backs,
//! and a silent site's jobs placed again with their old lease fenced out.

use reqwest::StatusCode;
use serde_json::{Value, json};
use suanwang_server::scheduler::Scheduler;
use suanwang_server::{App, auth};
use suanwang_store::{Role, SqliteStore};

struct Net {
    base: String,
    store: SqliteStore,
    operator: String,
    acme: String,
    http: reqwest::Client,
    placed: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    changed: std::sync::Arc<suanwang_server::scheduler::Changed>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(name: &str) -> Net {
    start_with(name, std::time::Duration::from_secs(30)).await
}

async fn start_with(name: &str, lease_ttl: std::time::Duration) -> Net {
    let dir = std::env::temp_dir().join(format!("suanwang-agents-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.db"));
    let _ = std::fs::remove_file(&path);
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
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
    let topology = suanwang_topology::builtin("cn-west").unwrap();
    let mut app = App::new(store.clone(), topology);
    app.agents.lease_ttl = lease_ttl;
    app.agents.heartbeat_every = lease_ttl / 6;
    let placed = std::sync::Arc::clone(&app.placed);
    let changed = std::sync::Arc::clone(&app.changed);
    tokio::spawn(suanwang_server::run(listener, app, async {
        let _ = stopped.await;
    }));
    Net {
        base,
        store,
        operator,
        acme,
        http: reqwest::Client::new(),
        placed,
        changed,
        _stop: stop,
    }
}

impl Net {
    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Submits a job pinned to `site` that may not wait, and runs a scheduler
    /// pass so that it is placed to start now.
    async fn placed_job(&self, site: &str) -> i64 {
        let body = json!({
            "demand": [{"class": "cpu", "count": 8}],
            "duration": "1h",
            "site": site,
            "delayable": false,
            "command": ["sleep", "1"]
        });
        let (status, job) = self.post("/v1/jobs", &self.acme, body).await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        let now = job["created_at"].as_i64().unwrap();
        let topology = suanwang_topology::builtin("cn-west").unwrap();
        Scheduler::new(topology, now)
            .pass(&self.store, now)
            .await
            .unwrap();
        let id = job["id"].as_i64().unwrap();
        let placed = self.get(&format!("/v1/jobs/{id}"), &self.acme).await;
        assert_eq!(
            (placed["state"].as_str(), placed["site"].as_str()),
            (Some("Placed"), Some(site))
        );
        id
    }

    async fn register(&self, site: &str) -> String {
        let (status, reg) = self
            .post(
                "/v1/agents",
                &self.operator,
                json!({"site": site, "executor": "test", "capacity": {"cpu": 64}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{reg}");
        assert!(reg["heartbeat_interval_ms"].as_u64().unwrap() > 0);
        assert!(
            reg["lease_ttl_ms"].as_u64().unwrap() > reg["heartbeat_interval_ms"].as_u64().unwrap()
        );
        reg["agent_id"].as_str().unwrap().to_string()
    }
}

#[tokio::test]
async fn an_agent_registers_leases_runs_and_reports() {
    let net = start("run").await;
    // Only operators (and admins) act as agents; sites must exist.
    let (status, body) = net
        .post(
            "/v1/agents",
            &net.acme,
            json!({"site": "hami", "executor": "local"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = net
        .post(
            "/v1/agents",
            &net.operator,
            json!({"site": "atlantis", "executor": "local"}),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("/site"))
    );
    let (status, body) = net
        .post(
            "/v1/agents",
            &net.operator,
            json!({"site": "hami", "executor": "local", "capacity": {"tpu": 4}}),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("/capacity/tpu"))
    );
    let (status, body) = net
        .post(
            "/v1/agents",
            &net.operator,
            json!({"site": "hami", "executor": "local", "colour": "red"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let job = net.placed_job("hami").await;
    let other_site = net.register("zhongwei").await;
    let (_, none) = net
        .post(
            &format!("/v1/agents/{other_site}/lease"),
            &net.operator,
            json!({"max": 8}),
        )
        .await;
    assert_eq!(
        none["leases"],
        json!([]),
        "work goes to its own site's agent only"
    );

    let agent = net.register("hami").await;
    let (status, body) = net
        .post(
            &format!("/v1/agents/{agent}/lease"),
            &net.operator,
            json!({"max": 0}),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("/max"))
    );
    let (status, leases) = net
        .post(
            &format!("/v1/agents/{agent}/lease"),
            &net.operator,
            json!({"max": 8}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{leases}");
    let lease = &leases["leases"][0];
    assert_eq!(lease["job"], job);
    assert_eq!(lease["token"], 1);
    assert_eq!(lease["spec"]["command"], json!(["sleep", "1"]));
    let (_, again) = net
        .post(
            &format!("/v1/agents/{agent}/lease"),
            &net.operator,
            json!({"max": 8}),
        )
        .await;
    assert_eq!(again["leases"], json!([]), "a job is handed out once");
    let seen = net.get(&format!("/v1/jobs/{job}"), &net.acme).await;
    assert_eq!(
        (seen["state"].as_str(), seen["attempt"].as_i64()),
        (Some("Dispatched"), Some(1))
    );
    assert_eq!(seen["agent"].as_str(), Some(agent.as_str()));

    let report = |token: i64, state: &str| json!({"job": job, "token": token, "state": state});
    let path = format!("/v1/agents/{agent}/report");
    let (status, body) = net.post(&path, &net.operator, report(7, "Running")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("stale_lease"))
    );
    let (status, body) = net
        .post(
            &format!("/v1/agents/{other_site}/report"),
            &net.operator,
            report(1, "Running"),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("stale_lease")),
        "not its lease"
    );
    // An agent reports Running, Succeeded or Failed: the document's enum.
    let (status, body) = net.post(&path, &net.operator, report(1, "Cancelled")).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("/state"))
    );
    let (status, running) = net.post(&path, &net.operator, report(1, "Running")).await;
    assert_eq!(
        (status, running["state"].as_str()),
        (StatusCode::OK, Some("Running"))
    );
    assert!(running["started_at"].as_i64().is_some());

    let (status, beat) = net
        .post(
            &format!("/v1/agents/{agent}/heartbeat"),
            &net.operator,
            json!({"telemetry": {"source": "host", "cpu_util": 0.25, "running_jobs": 1, "power": {"watts": 120.5, "source": "estimated"}},
                "held": [{"job": job, "token": 1, "log_tail": "epoch 1\n"}, {"job": job, "token": 0, "log_tail": "not mine"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{beat}");
    assert_eq!(beat["held"][0]["verdict"], "renewed");
    assert_eq!(beat["held"][1]["verdict"], "stale");
    let (status, body) = net
        .post(
            &format!("/v1/agents/{agent}/heartbeat"),
            &net.operator,
            json!({"telemetry": [1]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["field"].as_str().unwrap().starts_with("/telemetry"),
        "{body}"
    );
    let (status, _) = net
        .post("/v1/agents/ag_unknown/heartbeat", &net.operator, json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, done) = net
        .post(
            &path,
            &net.operator,
            json!({"job": job, "token": 1, "state": "Failed", "exit_code": 3, "message": "out of memory"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(
        (done["state"].as_str(), done["exit_code"].as_i64()),
        (Some("Failed"), Some(3))
    );
    assert!(done["finished_at"].as_i64().is_some());
    let (status, again) = net
        .post(
            &path,
            &net.operator,
            json!({"job": job, "token": 1, "state": "Failed", "exit_code": 3}),
        )
        .await;
    assert_eq!(
        (status, again["state"].as_str()),
        (StatusCode::OK, Some("Failed")),
        "a retried report is harmless"
    );
    let why = net.get(&format!("/v1/jobs/{job}/explain"), &net.acme).await;
    assert!(why.to_string().contains("out of memory"), "{why}");

    let agents = net.get("/v1/agents", &net.operator).await;
    let me = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == agent.as_str())
        .unwrap();
    assert_eq!(
        (me["site"].as_str(), me["live"].as_bool()),
        (Some("hami"), Some(true))
    );
    // Telemetry is typed: what the document names is kept, the rest dropped.
    assert_eq!(me["telemetry"]["power"]["watts"], 120.5);
    assert!(me["telemetry"].get("cpu_util").is_none());
    let history = net.get("/v1/sites/hami/telemetry", &net.acme).await;
    assert_eq!(history["reachable"], true);
    assert_eq!(
        history["samples"][0]["sample"]["running_jobs"], 1,
        "{history}"
    );
    assert_eq!(
        history["samples"][0]["agent"].as_str(),
        Some(agent.as_str())
    );
    let logs = net.get(&format!("/v1/jobs/{job}/logs"), &net.acme).await;
    assert_eq!(logs["complete"], true);
    assert_eq!(
        logs["tail"], "epoch 1\n",
        "the stale lease's tail was not kept: {logs}"
    );
    assert_eq!(me["info"]["executor"], "test");
    let (status, _) = net.post("/v1/agents", &net.acme, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let metrics = net
        .http
        .get(format!("{}/metrics", net.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("suanwang_site_reachable{site=\"hami\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("suanwang_site_grid_carbon_kg_per_kwh{site=\"cd-tianfu\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("suanwang_site_utilisation{site=\"hami\",class=\"cpu\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("suanwang_agent_heartbeats_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_cancelled_job_is_called_back_at_the_next_heartbeat() {
    let net = start("cancel").await;
    let job = net.placed_job("hami").await;
    let agent = net.register("hami").await;
    let (_, leases) = net
        .post(
            &format!("/v1/agents/{agent}/lease"),
            &net.operator,
            json!({"max": 1}),
        )
        .await;
    let token = leases["leases"][0]["token"].as_i64().unwrap();
    let (status, _) = net
        .post(&format!("/v1/jobs/{job}/cancel"), &net.acme, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, beat) = net
        .post(
            &format!("/v1/agents/{agent}/heartbeat"),
            &net.operator,
            json!({"held": [{"job": job, "token": token}]}),
        )
        .await;
    assert_eq!(beat["held"][0]["verdict"], "cancel");
    let (status, body) = net
        .post(
            &format!("/v1/agents/{agent}/report"),
            &net.operator,
            json!({"job": job, "token": token, "state": "Succeeded", "exit_code": 0}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("stale_lease"))
    );
    let seen = net.get(&format!("/v1/jobs/{job}"), &net.acme).await;
    assert_eq!(
        seen["state"], "Cancelled",
        "a late report does not revive it"
    );
}

#[tokio::test]
async fn a_silent_sites_jobs_are_placed_again_and_its_old_lease_is_fenced_out() {
    let net = start_with("failover", std::time::Duration::from_secs(1)).await;
    // Not pinned: free to go elsewhere once hami falls silent.
    let body = json!({"demand": [{"class": "cpu", "count": 8}], "duration": "1h", "delayable": false,
        "origin": "chongqing", "command": ["true"]});
    let (_, submitted) = net.post("/v1/jobs", &net.acme, body).await;
    let job = submitted["id"].as_i64().unwrap();
    let now = submitted["created_at"].as_i64().unwrap();
    let topology = suanwang_topology::builtin("cn-west").unwrap();
    let scheduler = Scheduler::new(topology, now).with_lease_secs(1);
    scheduler.pass(&net.store, now).await.unwrap();
    let placed = net.get(&format!("/v1/jobs/{job}"), &net.acme).await;
    let first_site = placed["site"].as_str().unwrap().to_string();
    let agent = net.register(&first_site).await;
    let (_, leases) = net
        .post(
            &format!("/v1/agents/{agent}/lease"),
            &net.operator,
            json!({"max": 4}),
        )
        .await;
    assert_eq!(leases["leases"][0]["job"], job);
    let (status, _) = net
        .post(
            &format!("/v1/agents/{agent}/report"),
            &net.operator,
            json!({"job": job, "token": 1, "state": "Running"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Nobody at that site heartbeats: the lease (one second) expires.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let report = scheduler.pass(&net.store, now).await.unwrap();
    assert_eq!((report.lost, report.requeued), (1, 1), "{report:?}");
    assert_eq!(report.placed, 1, "placed again: {report:?}");
    let moved = net.get(&format!("/v1/jobs/{job}"), &net.acme).await;
    assert_eq!(moved["state"], "Placed");
    assert_ne!(
        moved["site"].as_str(),
        Some(first_site.as_str()),
        "not on the silent site"
    );
    let why = net.get(&format!("/v1/jobs/{job}/explain"), &net.acme).await;
    let outcomes: Vec<&str> = why["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["placed", "lost", "requeued", "placed"], "{why}");
    let times: Vec<i64> = why["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["at"].as_i64().expect("every decision has its time"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    // The old holder comes back: its report and heartbeat are refused.
    let (status, body) = net
        .post(
            &format!("/v1/agents/{agent}/report"),
            &net.operator,
            json!({"job": job, "token": 1, "state": "Succeeded", "exit_code": 0}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("stale_lease"))
    );
    let (_, beat) = net
        .post(
            &format!("/v1/agents/{agent}/heartbeat"),
            &net.operator,
            json!({"held": [{"job": job, "token": 1}]}),
        )
        .await;
    assert_eq!(beat["held"][0]["verdict"], "stale");

    // The new site's agent runs it under lease 2.
    let new_site = moved["site"].as_str().unwrap();
    let fresh = net.register(new_site).await;
    let (_, leases) = net
        .post(
            &format!("/v1/agents/{fresh}/lease"),
            &net.operator,
            json!({"max": 4}),
        )
        .await;
    assert_eq!(
        (
            leases["leases"][0]["job"].as_i64(),
            leases["leases"][0]["token"].as_i64()
        ),
        (Some(job), Some(2))
    );
    let (status, done) = net
        .post(
            &format!("/v1/agents/{fresh}/report"),
            &net.operator,
            json!({"job": job, "token": 2, "state": "Succeeded", "exit_code": 0}),
        )
        .await;
    assert_eq!(
        (status, done["state"].as_str(), done["attempt"].as_i64()),
        (StatusCode::OK, Some("Succeeded"), Some(2))
    );
}

#[tokio::test]
async fn a_waiting_lease_answers_as_soon_as_work_is_placed() {
    let net = start("longpoll").await;
    let agent = net.register("hami").await;
    let (status, body) = net
        .post(
            &format!("/v1/agents/{agent}/lease"),
            &net.operator,
            json!({"max": 1, "wait_ms": 60_000}),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("/wait_ms"))
    );
    // Nothing due: an empty answer after the wait.
    let started = std::time::Instant::now();
    let (_, empty) = net
        .post(
            &format!("/v1/agents/{agent}/lease"),
            &net.operator,
            json!({"max": 1, "wait_ms": 300}),
        )
        .await;
    assert_eq!(empty["leases"], json!([]));
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    // Waiting while the scheduler places a job: the answer comes with it.
    let path = format!("/v1/agents/{agent}/lease");
    let waiting = {
        let (http, base, token) = (net.http.clone(), net.base.clone(), net.operator.clone());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let resp: Value = http
                .post(format!("{base}{path}"))
                .bearer_auth(token)
                .json(&json!({"max": 1, "wait_ms": 20_000}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (resp, started.elapsed())
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let body = json!({"demand": [{"class": "cpu", "count": 1}], "duration": "10m", "site": "hami",
        "delayable": false, "command": ["true"]});
    let (_, job) = net.post("/v1/jobs", &net.acme, body).await;
    let now = job["created_at"].as_i64().unwrap();
    let scheduler = Scheduler::new(suanwang_topology::builtin("cn-west").unwrap(), now)
        .notifying(std::sync::Arc::clone(&net.placed));
    let report = scheduler.pass(&net.store, now).await.unwrap();
    assert_eq!(report.placed, 1);
    let (answer, took) = waiting.await.unwrap();
    assert_eq!(answer["leases"][0]["job"], job["id"], "{answer}");
    assert!(
        took < std::time::Duration::from_secs(5),
        "answered after {took:?}"
    );
}

#[tokio::test]
async fn the_scheduler_keeps_bookings_between_passes_and_reads_what_the_api_changed() {
    let net = start("bookings").await;
    let whole_site = json!({"demand": [{"class": "h800", "count": 64}], "duration": "2h",
        "site": "singapore", "delayable": false, "command": ["true"]});
    let (_, first) = net.post("/v1/jobs", &net.acme, whole_site.clone()).await;
    let now = first["created_at"].as_i64().unwrap();
    let scheduler = Scheduler::new(suanwang_topology::builtin("cn-west").unwrap(), now)
        .tracking(std::sync::Arc::clone(&net.changed));
    assert_eq!(scheduler.pass(&net.store, now).await.unwrap().placed, 1);
    let start_of = |doc: &Value| doc["start_at"].as_i64().unwrap();
    let first = net
        .get(&format!("/v1/jobs/{}", first["id"]), &net.acme)
        .await;
    // The second waits for the first (known from the kept bookings).
    let (_, second) = net.post("/v1/jobs", &net.acme, whole_site.clone()).await;
    assert_eq!(scheduler.pass(&net.store, now).await.unwrap().placed, 1);
    let second = net
        .get(&format!("/v1/jobs/{}", second["id"]), &net.acme)
        .await;
    assert!(
        start_of(&second) >= start_of(&first) + 7200,
        "{first} {second}"
    );
    // Cancelled through the API: marked, so the next pass frees its units and
    // a third job takes them at once.
    let (status, _) = net
        .post(
            &format!("/v1/jobs/{}/cancel", first["id"]),
            &net.acme,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, third) = net.post("/v1/jobs", &net.acme, whole_site).await;
    assert_eq!(scheduler.pass(&net.store, now).await.unwrap().placed, 1);
    let third = net
        .get(&format!("/v1/jobs/{}", third["id"]), &net.acme)
        .await;
    assert!(start_of(&third) < start_of(&second), "{third} {second}");
}
