//! Observability over a real socket: request ids echoed (the caller's when sane,
//! else a fresh one), `/metrics` in the Prometheus text format clean under
//! `promtool check metrics` after traffic, and the Grafana dashboard's queries
//! parsed by promtool and naming only metrics the server exports.
//!
//! promtool (Debian: `prometheus`) is used when installed; with
//! `SUANWANG_REQUIRE_PROMTOOL=1` (as in CI) its absence is a failure.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use suanwang_server::{App, auth, metrics, observe};
use suanwang_store::{Role, SqliteStore};

struct Net {
    base: String,
    operator: String,
    acme: String,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(name: &str) -> Net {
    let dir = std::env::temp_dir().join(format!("suanwang-observe-{}", std::process::id()));
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
    let (scheduler_stop, scheduler_stopped) = tokio::sync::oneshot::channel::<()>();
    let topology = suanwang_topology::builtin("cn-west").unwrap();
    let app = App::new(store, topology);
    app.start_scheduler(std::time::Duration::from_millis(100), async {
        let _ = scheduler_stopped.await;
    });
    tokio::spawn(suanwang_server::run(listener, app, async move {
        let _ = stopped.await;
        let _ = scheduler_stop.send(());
    }));
    Net {
        base,
        operator,
        acme,
        http: reqwest::Client::new(),
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

    /// The `x-request-id` of the answer to `GET path`, sending `id` if given.
    async fn request_id(&self, path: &str, id: Option<&str>) -> (StatusCode, String) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        let resp = request.send().await.unwrap();
        let echoed = resp
            .headers()
            .get("x-request-id")
            .unwrap_or_else(|| panic!("no x-request-id in the answer to {path}"))
            .to_str()
            .unwrap()
            .to_string();
        (resp.status(), echoed)
    }

    /// Some traffic of every kind: an agent at hami that heartbeats with power,
    /// a job placed by the scheduler loop, reads, a 404 and a 401.
    async fn traffic(&self) {
        let (status, reg) = self
            .post(
                "/v1/agents",
                &self.operator,
                json!({"site": "hami", "executor": "test", "capacity": {"cpu": 64}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{reg}");
        let agent = reg["agent_id"].as_str().unwrap().to_string();
        let telemetry = json!({"telemetry": {"source": "host", "running_jobs": 0, "power": {"watts": 350.0, "source": "estimated"}}});
        let (status, body) = self
            .post(
                &format!("/v1/agents/{agent}/heartbeat"),
                &self.operator,
                telemetry,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let job = json!({"demand": [{"class": "cpu", "count": 4}], "duration": "1h", "site": "hami", "delayable": false});
        let (status, job) = self.post("/v1/jobs", &self.acme, job).await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        let id = job["id"].as_i64().unwrap();
        let mut placed = false;
        for _ in 0..100 {
            let (_, doc) = self.get(&format!("/v1/jobs/{id}"), &self.acme).await;
            if doc["state"] == "Placed" {
                placed = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(placed, "the scheduler loop placed job {id}");
        let (status, _) = self.get("/v1/jobs/999999", &self.acme).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = self.get("/v1/overview", "not-a-token").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    async fn scrape(&self) -> String {
        let resp = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            metrics::CONTENT_TYPE
        );
        resp.text().await.unwrap()
    }
}

#[tokio::test]
async fn a_sane_request_id_is_echoed_and_any_other_is_replaced() {
    let net = start("request-id").await;
    let (status, id) = net.request_id("/healthz", Some("trace-42.a:b/c")).await;
    assert_eq!((status, id.as_str()), (StatusCode::OK, "trace-42.a:b/c"));
    // On an API error, and on a path no route matched, too.
    let (status, id) = net.request_id("/v1/jobs/7", Some("caller-7")).await;
    assert_eq!(
        (status, id.as_str()),
        (StatusCode::UNAUTHORIZED, "caller-7")
    );
    let (status, id) = net.request_id("/no/such/route", Some("caller-8")).await;
    assert_eq!((status, id.as_str()), (StatusCode::NOT_FOUND, "caller-8"));

    let generated = |id: &str| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let (_, first) = net.request_id("/healthz", None).await;
    let (_, second) = net.request_id("/healthz", None).await;
    assert!(generated(&first) && generated(&second), "{first} {second}");
    assert_ne!(first, second, "each request gets its own id");
    let too_long = "x".repeat(observe::MAX_REQUEST_ID + 1);
    for insane in ["has space", too_long.as_str(), "tab\there"] {
        let (_, id) = net.request_id("/healthz", Some(insane)).await;
        assert!(generated(&id), "{insane:?} was replaced, not echoed: {id}");
    }
    let longest = "y".repeat(observe::MAX_REQUEST_ID);
    let (_, id) = net.request_id("/healthz", Some(&longest)).await;
    assert_eq!(id, longest);
}

/// promtool, if installed; required when `SUANWANG_REQUIRE_PROMTOOL=1`.
fn promtool() -> Option<&'static str> {
    let found = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some("promtool");
    }
    assert!(
        std::env::var("SUANWANG_REQUIRE_PROMTOOL").as_deref() != Ok("1"),
        "SUANWANG_REQUIRE_PROMTOOL=1 but promtool is not installed (Debian: apt-get install prometheus)"
    );
    eprintln!(
        "skipping the promtool checks: promtool is not installed (Debian: apt-get install prometheus)"
    );
    None
}

/// Runs `promtool ARGS` with `input` on stdin; returns (success, stdout + stderr).
fn run_promtool(promtool: &str, args: &[&str], input: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(promtool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The names of the samples in a scrape.
fn sample_names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

fn dashboards() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/grafana");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboards in {}", dir.display());
    files
}

/// Every PromQL expression of a dashboard, with where it is, Grafana's variables
/// replaced by values PromQL parses (`$__rate_interval` by a range, a multi-value
/// `$site` by a regular expression).
fn expressions(dashboard: &Value) -> Vec<(String, String)> {
    let mut panels: Vec<&Value> = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        panels.push(panel);
        panels.extend(panel["panels"].as_array().into_iter().flatten());
    }
    let mut out = Vec::new();
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_else(|| {
                panic!(
                    "panel {:?} query {} has no expr",
                    panel["title"], target["refId"]
                )
            });
            let place = format!("panel {:?} query {}", panel["title"], target["refId"]);
            out.push((place, substitute(expr)));
        }
    }
    out
}

fn substitute(expr: &str) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = match after.strip_prefix('{') {
            Some(braced) => {
                let end = braced.find('}').expect("closing brace of a ${variable}");
                (&braced[..end], end + 2)
            }
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        out.push_str(match name {
            "__rate_interval" | "__interval" | "__range" => "5m",
            "site" => ".*",
            other => panic!("{expr}: no test value for the variable ${other}"),
        });
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// The metric names an expression reads (ours all start with `suanwang_`).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("suanwang_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// A rules file recording every expression, for `promtool check rules`.
fn rules_file(expressions: &[(String, String)]) -> String {
    let mut yaml = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, expr)) in expressions.iter().enumerate() {
        // A JSON string is a YAML double-quoted scalar.
        yaml.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(expr).unwrap()
        ));
    }
    yaml
}

fn check_rules(promtool: &str, name: &str, yaml: &str) -> (bool, String) {
    let path = std::env::temp_dir().join(format!(
        "suanwang-observe-{}-{name}.rules.yml",
        std::process::id()
    ));
    std::fs::write(&path, yaml).unwrap();
    let result = run_promtool(promtool, &["check", "rules", path.to_str().unwrap()], "");
    let _ = std::fs::remove_file(&path);
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_the_dashboard_reads_only_real_metrics() {
    let net = start("metrics").await;
    net.traffic().await;
    let scrape = net.scrape().await;
    // The series the dashboard's per-route and per-site panels need exist.
    for needle in [
        "suanwang_http_requests_total{route=\"/v1/jobs/{id}\",method=\"GET\",status=\"404\"}",
        "suanwang_http_request_duration_seconds_count{route=\"/v1/jobs\"} 1",
        "suanwang_site_reachable{site=\"hami\"} 1",
        "suanwang_site_reported_power_watts{site=\"hami\",source=\"estimated\"} 350",
        "suanwang_site_utilisation{site=\"hami\",class=\"cpu\"}",
        "suanwang_placements_total 1",
        "suanwang_scheduler_pass_duration_seconds_count",
    ] {
        assert!(scrape.contains(needle), "{needle} in:\n{scrape}");
    }
    let exported = sample_names(&scrape);

    let mut all = Vec::new();
    for file in dashboards() {
        let text = std::fs::read_to_string(&file).unwrap();
        let dashboard: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", file.display()));
        let exprs = expressions(&dashboard);
        assert!(!exprs.is_empty(), "{}: no queries", file.display());
        // The variables' queries read metrics too.
        let variables = dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten();
        let variable_queries: Vec<String> = variables
            .filter_map(|v| v["query"]["query"].as_str().map(str::to_string))
            .collect();
        for (place, expr) in exprs.iter().map(|(p, e)| (p.clone(), e.clone())).chain(
            variable_queries
                .into_iter()
                .map(|q| ("a variable".to_string(), q)),
        ) {
            let names = metric_names(&expr);
            assert!(
                !names.is_empty(),
                "{}: {place} reads no suanwang metric: {expr}",
                file.display()
            );
            for name in names {
                assert!(
                    exported.contains(&name),
                    "{}: {place} reads {name}, which /metrics does not export: {expr}",
                    file.display()
                );
            }
        }
        all.extend(exprs);
    }

    let Some(promtool) = promtool() else {
        return;
    };
    let (ok, report) = run_promtool(promtool, &["check", "metrics"], &scrape);
    assert!(
        ok && report.trim().is_empty(),
        "promtool check metrics:\n{report}\n{scrape}"
    );
    let (ok, report) = check_rules(promtool, "dashboard", &rules_file(&all));
    assert!(
        ok,
        "promtool check rules on the dashboards' queries:\n{report}"
    );
    // The check is real: a query with a typo fails it.
    let broken = vec![(
        "broken".to_string(),
        "sum(rate(suanwang_http_requests_total[5m])".to_string(),
    )];
    let (ok, _) = check_rules(promtool, "broken", &rules_file(&broken));
    assert!(!ok, "promtool accepted an unbalanced parenthesis");
}

#[test]
fn dashboard_variables_are_replaced_and_metric_names_found() {
    assert_eq!(
        substitute("rate(x{site=~\"$site\"}[$__rate_interval]) + y[${__interval}]"),
        "rate(x{site=~\".*\"}[5m]) + y[5m]"
    );
    assert_eq!(
        metric_names("sum(rate(suanwang_a_total[5m])) / suanwang_b"),
        ["suanwang_a_total", "suanwang_b"]
    );
}

/// tools/grafana/check.mjs (Grafana's dashboard model, @grafana/schema), when its
/// packages are installed (`npm ci --prefix tools/grafana`; CI runs it before the
/// tests in any case).
#[test]
fn the_dashboards_match_grafanas_dashboard_model() {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/grafana");
    if !tools.join("node_modules/@grafana/schema").exists() {
        eprintln!(
            "skipping the Grafana schema check: run `npm ci --prefix tools/grafana` to install @grafana/schema"
        );
        return;
    }
    let out = Command::new("node")
        .arg(tools.join("check.mjs"))
        .output()
        .expect("node runs (it is needed to build the console too)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
