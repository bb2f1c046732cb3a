//! The routes the web console reads, over a real socket and SQLite with the
//! scheduler running: live events (and who sees what in them), flows, regions, a
//! site's price and carbon series, savings against `local-fifo`, and a graceful
//! shutdown that does not wait for open event streams.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use suanwang_server::{App, auth};
use suanwang_store::{Role, SqliteStore};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

struct Server {
    base: String,
    operator: String,
    acme: String,
    beta: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start() -> Server {
    let dir = std::env::temp_dir().join(format!("suanwang-console-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.db", COUNTER.fetch_add(1, Ordering::Relaxed)));
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
    let beta = auth::issue_token(&store, Role::Tenant, Some("beta"), 0)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = App::new(store, suanwang_topology::builtin("cn-west").unwrap());
    let (scheduler_stop, scheduler_stopped) = tokio::sync::oneshot::channel::<()>();
    app.start_scheduler(Duration::from_millis(200), async {
        let _ = scheduler_stopped.await;
    });
    let served = tokio::spawn(suanwang_server::run(listener, app, async move {
        let _ = stopped.await;
        let _ = scheduler_stop.send(());
    }));
    Server {
        base,
        operator,
        acme,
        beta,
        http: reqwest::Client::new(),
        stop: Some(stop),
        served,
    }
}

impl Server {
    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn submit(&self, token: &str, body: Value) -> i64 {
        let resp = self
            .http
            .post(format!("{}/v1/jobs", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    /// Waits until job `id` has left Pending.
    async fn placed(&self, id: i64) -> Value {
        for _ in 0..100 {
            let (_, job) = self.get(&format!("/v1/jobs/{id}"), &self.operator).await;
            if job["state"] != "Pending" {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("job {id} was never placed");
    }

    async fn events(&self, token: &str) -> Events {
        let resp = self
            .http
            .get(format!("{}/v1/events", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Events {
            resp,
            buffer: String::new(),
        }
    }
}

/// A server-sent event stream, read event by event.
struct Events {
    resp: reqwest::Response,
    buffer: String,
}

impl Events {
    /// The next event (name, data), or `None` at the end of the stream or after
    /// `wait` without one.
    async fn next(&mut self, wait: Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut name, mut data) = (String::from("message"), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if !data.is_empty() {
                    return Some((name, serde_json::from_str(&data).unwrap()));
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Jobs in `jobs` events until one satisfies `want`, within `wait`.
    async fn job_where(&mut self, wait: Duration, want: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (name, data) = self.next(left).await?;
            if name == "jobs"
                && let Some(job) = data["jobs"].as_array().unwrap().iter().find(|j| want(j))
            {
                return Some(job.clone());
            }
        }
    }
}

fn pinned(site: &str, origin: &str) -> Value {
    json!({"demand": [{"class": "cpu", "count": 8}], "duration": "1h", "site": site,
        "origin": origin, "delayable": false})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_the_network_and_each_callers_own_jobs() {
    let server = start().await;
    let mut operator = server.events(&server.operator).await;
    let mut acme = server.events(&server.acme).await;
    let mut beta = server.events(&server.beta).await;
    // Each stream opens with the network now.
    for stream in [&mut operator, &mut acme, &mut beta] {
        let (name, overview) = stream.next(Duration::from_secs(5)).await.unwrap();
        assert_eq!(name, "overview");
        assert_eq!(overview["sites"].as_array().unwrap().len(), 8);
        let (name, flows) = stream.next(Duration::from_secs(5)).await.unwrap();
        assert_eq!(name, "flows");
        assert!(flows["flows"].is_array());
    }

    let id = server
        .submit(&server.acme, pinned("hami", "chongqing"))
        .await;
    let job = acme
        .job_where(Duration::from_secs(10), |j| {
            j["id"] == id && j["state"] == "Placed"
        })
        .await
        .expect("acme sees its job placed, live");
    assert_eq!(job["site"], "hami");
    operator
        .job_where(Duration::from_secs(10), |j| {
            j["id"] == id && j["state"] == "Placed"
        })
        .await
        .expect("the operator sees it too");
    // Beta never sees acme's job, only its own.
    let mine = server
        .submit(&server.beta, pinned("guian", "chongqing"))
        .await;
    let seen = beta
        .job_where(Duration::from_secs(10), |j| {
            j["id"] == id || j["id"] == mine
        })
        .await
        .expect("beta sees its own job");
    assert_eq!(seen["id"], mine, "beta saw acme's job {id}");
    while let Some((name, data)) = beta.next(Duration::from_millis(1500)).await {
        if name == "jobs" {
            assert!(
                data["jobs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|j| j["id"] != id),
                "beta saw acme's job: {data}"
            );
        }
        if name == "flows" {
            assert!(
                data["flows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|f| f["to"] != "hami"),
                "beta saw acme's flow: {data}"
            );
        }
    }
    // A missing or wrong token gets no stream.
    let resp = server
        .http
        .get(format!("{}/v1/events", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_event_streams() {
    let mut server = start().await;
    let mut stream = server.events(&server.operator).await;
    assert!(stream.next(Duration::from_secs(5)).await.is_some());
    server.stop.take().unwrap().send(()).unwrap();
    let served = tokio::time::timeout(Duration::from_secs(5), &mut server.served)
        .await
        .expect("the server finished although a stream was open");
    served.unwrap().unwrap();
    // The stream ended (after what was already sent) rather than hanging.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while stream.next(Duration::from_secs(1)).await.is_some() {
        assert!(tokio::time::Instant::now() < deadline, "the stream goes on");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_show_live_jobs_and_their_data_per_caller() {
    let server = start().await;
    let mut body = pinned("hami", "shanghai");
    body["data"] = json!({"size_gib": 500.0, "location": "chongqing"});
    let id = server.submit(&server.acme, body).await;
    assert_eq!(server.placed(id).await["state"], "Placed");
    let (status, flows) = server.get("/v1/flows", &server.operator).await;
    assert_eq!(status, StatusCode::OK);
    let flows = flows["flows"].as_array().unwrap();
    let find = |from: &str| {
        flows
            .iter()
            .find(|f| f["from"] == from && f["to"] == "hami")
            .unwrap_or_else(|| panic!("no flow {from} → hami in {flows:?}"))
    };
    assert_eq!(find("shanghai")["jobs"], 1);
    assert_eq!(find("shanghai")["running"], 0);
    assert_eq!(find("chongqing")["data_gib"], 500.0);
    assert_eq!(find("chongqing")["jobs"], 0);
    let (_, mine) = server.get("/v1/flows", &server.acme).await;
    assert_eq!(mine["flows"].as_array().unwrap().len(), 2);
    let (_, theirs) = server.get("/v1/flows", &server.beta).await;
    assert_eq!(theirs["flows"], json!([]), "beta sees none of acme's flows");
    // While a console listens, the routes answer from the publisher's view:
    // still filtered per caller, and the same overview.
    let mut stream = server.events(&server.operator).await;
    let (_, streamed) = stream.next(Duration::from_secs(5)).await.unwrap();
    let (_, overview) = server.get("/v1/overview", &server.beta).await;
    assert_eq!(overview["sites"], streamed["sites"]);
    let (_, mine) = server.get("/v1/flows", &server.acme).await;
    assert_eq!(mine["flows"].as_array().unwrap().len(), 2);
    let (_, theirs) = server.get("/v1/flows", &server.beta).await;
    assert_eq!(theirs["flows"], json!([]), "beta sees none of acme's flows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regions_and_a_sites_series() {
    let server = start().await;
    let (status, regions) = server.get("/v1/regions", &server.beta).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = regions
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["chongqing", "chengdu", "shanghai", "beijing", "guangzhou"]
    );
    assert!(regions[0]["location"]["lat"].as_f64().unwrap() > 29.0);

    let (status, series) = server
        .get("/v1/sites/hami/series?before_h=2&after_h=3", &server.acme)
        .await;
    assert_eq!(status, StatusCode::OK, "{series}");
    let points = series["points"].as_array().unwrap();
    let now = series["now"].as_i64().unwrap();
    // Slots of 15 minutes from the slot before now-2h to now+3h.
    assert!((20..=22).contains(&points.len()), "{} points", points.len());
    assert!(
        points
            .windows(2)
            .all(|w| w[1]["at"].as_i64().unwrap() - w[0]["at"].as_i64().unwrap() == 900)
    );
    for p in points {
        let at = p["at"].as_i64().unwrap();
        assert_eq!(p["forecast"].as_bool().unwrap(), at > now);
        // The topology's own series at that instant.
        let topology = suanwang_topology::builtin("cn-west").unwrap();
        let model = suanwang_topology::SeriesModel::new(&topology, 0, None, 0.0);
        let hami = topology
            .sites
            .iter()
            .position(|s| s.id.0 == "hami")
            .unwrap();
        let t = suanwang_model::SimTime(at);
        assert_eq!(
            p["carbon_kg_per_kwh"].as_f64().unwrap(),
            model.carbon_kg_per_kwh(hami, t)
        );
        assert_eq!(
            p["tariff_cny_per_kwh"].as_f64().unwrap(),
            model.tariff_cny_per_kwh(hami, t)
        );
    }
    assert!(
        series["carbon_label"]
            .as_str()
            .unwrap()
            .contains("borrowed")
            || series["carbon_label"]
                .as_str()
                .unwrap()
                .contains("another grid")
    );
    assert_eq!(series["actual_source"], "model");
    let (status, err) = server
        .get("/v1/sites/hami/series?before_h=500", &server.acme)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["field"], "before_h");
    let (status, _) = server.get("/v1/sites/atlantis/series", &server.acme).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn savings_compare_with_local_fifo_per_tenant() {
    let server = start().await;
    // Acme's job runs where local-fifo would run it (its home site, now): no
    // difference. Beta's are free to move in space and time (one needs H800s,
    // which its home site lacks: local-fifo takes the nearest site that has
    // them): the balanced policy's guard promises they cost and emit no more
    // than local-fifo.
    let home = server
        .submit(&server.acme, pinned("cq-liangjiang", "chongqing"))
        .await;
    let h800 = server
        .submit(
            &server.beta,
            json!({"demand": [{"class": "h800", "count": 8}], "duration": "1h", "origin": "chongqing"}),
        )
        .await;
    let free = server
        .submit(
            &server.beta,
            json!({"demand": [{"class": "a800", "count": 8}], "duration": "4h", "deadline": "48h",
                "origin": "chongqing", "data": {"size_gib": 200.0, "location": "chongqing"}}),
        )
        .await;
    for id in [home, h800, free] {
        assert_eq!(server.placed(id).await["state"], "Placed");
    }
    let (status, doc) = server.get("/v1/savings?days=1", &server.operator).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    let network = &doc["network"];
    assert_eq!(network["jobs"], 3, "{doc}");
    assert_eq!(network["excluded"], 0);
    let tenants = doc["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 2);
    let row = |name: &str| {
        tenants
            .iter()
            .find(|t| t["tenant"] == name)
            .unwrap()
            .clone()
    };
    let (acme, beta) = (row("acme"), row("beta"));
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap();
    assert!(f(&acme["actual"], "cost_cny") > 0.0);
    // (Up to the second or so between submission and placement.)
    assert!(
        f(&acme, "saved_cny").abs() < 1e-4 * f(&acme["actual"], "cost_cny")
            && f(&acme, "saved_kg").abs() < 1e-4 * f(&acme["actual"], "carbon_kg"),
        "the same run as local-fifo saves nothing: {acme}"
    );
    assert_eq!(
        (acme["jobs"].clone(), beta["jobs"].clone()),
        (json!(1), json!(2))
    );
    assert!(
        f(&beta, "saved_cny") >= -1e-3 * f(&beta["actual"], "cost_cny")
            && f(&beta, "saved_kg") >= -1e-3 * f(&beta["actual"], "carbon_kg"),
        "balanced is no worse than local-fifo: {beta}"
    );
    let sum = f(&acme["actual"], "cost_cny") + f(&beta["actual"], "cost_cny");
    assert!((f(&network["actual"], "cost_cny") - sum).abs() < 1e-6);
    assert!(
        (f(network, "saved_cny")
            - (f(&network["local_fifo"], "cost_cny") - f(&network["actual"], "cost_cny")))
        .abs()
            < 1e-6
    );
    // A tenant sees only its own row.
    let (_, mine) = server.get("/v1/savings?days=1", &server.acme).await;
    assert_eq!(mine["network"], Value::Null);
    assert_eq!(mine["tenants"].as_array().unwrap().len(), 1);
    assert_eq!(mine["tenants"][0]["tenant"], "acme");
    let (status, err) = server.get("/v1/savings?days=0", &server.acme).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["field"], "days");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_gzipped_to_browsers_that_take_it() {
    let server = start().await;
    let get = |path: &str, encoding: Option<&str>| {
        let mut req = server.http.get(format!("{}{path}", server.base));
        if let Some(encoding) = encoding {
            req = req.header("accept-encoding", encoding);
        }
        req.send()
    };
    let index = get("/", None).await.unwrap();
    assert_eq!(index.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(index.headers()["cache-control"], "no-cache");
    let html = index.text().await.unwrap();
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a script in index.html")
        .to_string();
    let embedded = suanwang_console::asset(&script).unwrap();
    let gzip = embedded.gzip.expect("the bundle is embedded gzipped");

    let packed = get(&script, Some("gzip, deflate, br")).await.unwrap();
    assert_eq!(packed.headers()["content-encoding"], "gzip");
    assert_eq!(packed.headers()["vary"], "accept-encoding");
    assert!(
        packed.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(&packed.bytes().await.unwrap()[..], gzip);
    for refuses in [None, Some("identity"), Some("gzip;q=0, br")] {
        let plain = get(&script, refuses).await.unwrap();
        assert!(
            plain.headers().get("content-encoding").is_none(),
            "{refuses:?}"
        );
        assert_eq!(
            &plain.bytes().await.unwrap()[..],
            embedded.bytes,
            "{refuses:?}"
        );
    }
    // The API's own 404 for paths under /v1, never the console.
    let missing = get("/v1/nothing", Some("gzip")).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.json::<Value>().await.unwrap()["code"], "not_found");
}
