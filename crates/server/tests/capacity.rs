//! Capacity the scheduler can trust, over a real socket and a real SQLite
//! database: the scheduler plans with the smaller of declared and measured per
//! class; a site no live agent measured plans with its declaration; an agent
//! that goes away takes its capacity with it, and placed jobs that no longer fit
//! are placed again; a job that fits the declaration but not the measurement
//! waits, and its explanation says why.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use suanwang_server::scheduler::Scheduler;
use suanwang_server::{App, auth};
use suanwang_store::{Role, SqliteStore, Store};

struct Net {
    base: String,
    store: SqliteStore,
    operator: String,
    acme: String,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(name: &str, lease_ttl: Duration) -> Net {
    let dir = std::env::temp_dir().join(format!("suanwang-capacity-{}", std::process::id()));
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
    let mut app = App::new(
        store.clone(),
        suanwang_topology::builtin("cn-west").unwrap(),
    );
    app.agents.lease_ttl = lease_ttl;
    app.agents.heartbeat_every = lease_ttl / 6;
    tokio::spawn(suanwang_server::run(listener, app, async {
        let _ = stopped.await;
    }));
    Net {
        base,
        store,
        operator,
        acme,
        http: reqwest::Client::new(),
        _stop: stop,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
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

    async fn register(&self, site: &str, capacity: Value) -> String {
        let (status, reg) = self
            .post(
                "/v1/agents",
                &self.operator,
                json!({"site": site, "executor": "test", "capacity": capacity}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{reg}");
        reg["agent_id"].as_str().unwrap().to_string()
    }

    async fn beat(&self, agent: &str, telemetry: Option<Value>) {
        let (status, body) = self
            .post(
                &format!("/v1/agents/{agent}/heartbeat"),
                &self.operator,
                json!({"telemetry": telemetry}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Submits a job of `cores` cores pinned to `site` that may not wait.
    async fn submit(&self, site: &str, cores: u32) -> i64 {
        let body = json!({
            "demand": [{"class": "cpu", "count": cores}],
            "duration": "1h",
            "site": site,
            "delayable": false,
            "command": ["true"]
        });
        let (status, job) = self.post("/v1/jobs", &self.acme, body).await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        job["id"].as_i64().unwrap()
    }

    async fn job(&self, id: i64) -> Value {
        self.get(&format!("/v1/jobs/{id}"), &self.acme).await
    }

    async fn capacity(&self, site: &str) -> Value {
        self.get(&format!("/v1/sites/{site}"), &self.acme).await["capacity"].clone()
    }

    /// Jobs at `site` placed to hold cores at `at` (unix seconds), and the cores.
    async fn cores_booked_at(&self, site: &str, at: i64) -> u64 {
        let mut cores = 0;
        for id in 1..=64 {
            let doc = self.get(&format!("/v1/jobs/{id}"), &self.acme).await;
            if doc["site"].as_str() != Some(site)
                || !matches!(
                    doc["state"].as_str(),
                    Some("Placed" | "Dispatched" | "Running")
                )
            {
                continue;
            }
            let start = doc["start_at"].as_i64().unwrap();
            if start <= at && at < start + 3600 {
                cores += doc["spec"]["demand"][0]["count"].as_u64().unwrap();
            }
        }
        cores
    }
}

fn scheduler(lease_secs: i64) -> Scheduler {
    Scheduler::new(suanwang_topology::builtin("cn-west").unwrap(), now())
        .with_lease_secs(lease_secs)
}

#[tokio::test]
async fn the_scheduler_plans_with_the_smaller_of_declared_and_measured() {
    let net = start("min", Duration::from_secs(30)).await;
    let agent = net.register("hami", json!({"cpu": 8})).await;
    // The latest heartbeat's figure wins over the registration's.
    net.beat(
        &agent,
        Some(json!({"source": "host", "capacity": {"cpu": 2, "mem_gib": 16}})),
    )
    .await;
    let capacity = net.capacity("hami").await;
    assert_eq!(capacity["status"], "below-declared", "{capacity}");
    assert_eq!(capacity["declared"]["cpu"], 1536);
    assert_eq!(capacity["measured"]["cpu"], 2);
    assert_eq!(capacity["planned"]["cpu"], 2);
    assert_eq!(capacity["planned"]["mem_gib"], 16);
    assert_eq!(capacity["planned"].get("a800"), None, "{capacity}");
    assert_eq!(capacity["live_agents"], 1);

    let jobs = [
        net.submit("hami", 1).await,
        net.submit("hami", 1).await,
        net.submit("hami", 1).await,
    ];
    // Fits the declaration (1,536 cores), never the measurement (2).
    let big = net.submit("hami", 4).await;
    let at = now();
    let report = scheduler(30).pass(&net.store, at).await.unwrap();
    assert_eq!((report.placed, report.waiting), (3, 1), "{report:?}");
    // Two hold cores now; the third waits its turn (a later start), never a
    // third core at once.
    let mut starts = Vec::new();
    for id in jobs {
        let doc = net.job(id).await;
        assert_eq!(doc["state"], "Placed", "{doc}");
        starts.push(doc["start_at"].as_i64().unwrap());
    }
    starts.sort();
    assert!(starts[2] >= starts[0] + 3600, "{starts:?}");
    assert!(net.cores_booked_at("hami", at).await <= 2);
    let big_doc = net.job(big).await;
    assert_eq!(big_doc["state"], "Pending", "{big_doc}");
    let explain = net.get(&format!("/v1/jobs/{big}/explain"), &net.acme).await;
    let reason = &explain["decisions"][0]["reason"];
    assert_eq!(reason["reason"], "measured-below-declared", "{explain}");
    let detail = reason["detail"].as_str().unwrap();
    assert!(
        detail.contains("site hami") && detail.contains("cpu 2 of 1536"),
        "{detail}"
    );

    // The overview plans with the same figure.
    let overview = net.get("/v1/overview", &net.acme).await;
    let hami = overview["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["site"] == "hami")
        .unwrap();
    assert_eq!(hami["planned"]["cpu"], 2, "{hami}");
    assert_eq!(hami["capacity"]["cpu"], 1536);
    assert_eq!(hami["capacity_status"], "below-declared");
}

#[tokio::test]
async fn a_site_no_agent_measured_plans_with_what_it_declares() {
    let net = start("unmeasured", Duration::from_secs(30)).await;
    let capacity = net.capacity("zhongwei").await;
    assert_eq!(capacity["status"], "unmeasured", "{capacity}");
    assert_eq!(capacity["measured"], Value::Null);
    assert_eq!(capacity["planned"], capacity["declared"]);
    assert_eq!(capacity["live_agents"], 0);
    let id = net.submit("zhongwei", 512).await;
    let report = scheduler(30).pass(&net.store, now()).await.unwrap();
    assert_eq!(report.placed, 1, "{report:?}");
    assert_eq!(net.job(id).await["state"], "Placed");

    // An agent measuring at least what the site declares changes nothing.
    let declared = capacity["declared"].clone();
    let agent = net.register("zhongwei", declared.clone()).await;
    let capacity = net.capacity("zhongwei").await;
    assert_eq!(capacity["status"], "as-declared", "{capacity}");
    assert_eq!(capacity["planned"], declared);
    let mut more = declared.clone();
    more["cpu"] = json!(declared["cpu"].as_u64().unwrap() * 2);
    net.beat(&agent, Some(json!({"source": "host", "capacity": more})))
        .await;
    let capacity = net.capacity("zhongwei").await;
    assert_eq!(capacity["status"], "above-declared", "{capacity}");
    // Never planned past the declaration.
    assert_eq!(capacity["planned"], declared);
}

#[tokio::test]
async fn an_agent_that_goes_away_takes_its_capacity_with_it() {
    let lease = Duration::from_secs(2);
    let net = start("away", lease).await;
    let stays = net.register("hami", json!({"cpu": 2})).await;
    let goes = net.register("hami", json!({"cpu": 2})).await;
    let capacity = net.capacity("hami").await;
    assert_eq!(
        (
            capacity["measured"]["cpu"].as_u64(),
            capacity["live_agents"].as_u64()
        ),
        (Some(4), Some(2)),
        "{capacity}"
    );
    let scheduler = scheduler(2);
    let mut jobs = Vec::new();
    for _ in 0..4 {
        jobs.push(net.submit("hami", 1).await);
    }
    let report = scheduler.pass(&net.store, now()).await.unwrap();
    assert_eq!(report.placed, 4, "{report:?}");
    for id in &jobs {
        let doc = net.job(*id).await;
        assert!(doc["start_at"].as_i64().unwrap() <= now() + 900, "{doc}");
    }
    // One agent falls silent; the other heartbeats on.
    let until = std::time::Instant::now() + Duration::from_millis(3300);
    while std::time::Instant::now() < until {
        net.beat(&stays, None).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let capacity = net.capacity("hami").await;
    assert_eq!(
        (
            capacity["measured"]["cpu"].as_u64(),
            capacity["live_agents"].as_u64()
        ),
        (Some(2), Some(1)),
        "{capacity}"
    );
    assert_eq!(capacity["planned"]["cpu"], 2);
    // Nothing is pending, but the site shrank: the pass places again the
    // placed jobs that no longer fit, saying why.
    let report = scheduler.pass(&net.store, now()).await.unwrap();
    assert_eq!(report.requeued, 2, "{report:?}");
    let at = now();
    let mut requeued = 0;
    for id in &jobs {
        let explain = net.get(&format!("/v1/jobs/{id}/explain"), &net.acme).await;
        if explain["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["outcome"] == "requeued")
        {
            requeued += 1;
            let text = explain.to_string();
            assert!(text.contains("measures less than it declares"), "{text}");
        }
    }
    assert_eq!(requeued, 2);
    // Placed again, never more than the two measured cores at once.
    scheduler.pass(&net.store, at).await.unwrap();
    assert!(net.cores_booked_at("hami", at).await <= 2);

    // Every agent silent: unmeasured again, and the site is unreachable (it
    // takes no new work at all).
    tokio::time::sleep(Duration::from_millis(3300)).await;
    let doc = net.get("/v1/sites/hami", &net.acme).await;
    assert_eq!(doc["reachable"], false, "{doc}");
    assert_eq!(doc["capacity"]["status"], "unmeasured");
    let _ = goes;
    let agents = net.store.agents().await.unwrap();
    assert_eq!(agents.len(), 2);
}
