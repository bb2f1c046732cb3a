//! The control plane as a real process: `admin token` offline, `serve` on a real
//! socket, and an acknowledged submit surviving `kill -9`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_suanwang")
}

fn admin_token(database: &str, role: &str, tenant: Option<&str>) -> String {
    let mut args = vec!["admin", "token", "--database", database, "--role", role];
    if let Some(t) = tenant {
        args.extend(["--tenant", t]);
    }
    let out = Command::new(bin()).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Starts `serve` on a free port and returns it with its base URL.
fn serve(database: &str) -> (Child, String) {
    let mut child = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut line = String::new();
    let mut reader = BufReader::new(stderr);
    reader.read_line(&mut line).unwrap();
    // Keep reading: a server whose stderr is closed fails to log (and
    // tracing-subscriber's report of that failure, on the same stderr, panics
    // the task that logged, e.g. the scheduler loop).
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (child, url)
}

fn temp_db(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("suanwang-serve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    format!("sqlite://{}", Path::new(&dir).join("db.sqlite").display())
}

#[test]
fn admin_token_refuses_a_tenant_token_without_a_tenant_and_bad_urls() {
    let db = temp_db("admin");
    let out = Command::new(bin())
        .args(["admin", "token", "--database", &db, "--role", "tenant"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--role tenant needs --tenant NAME"));
    let out = Command::new(bin())
        .args([
            "admin",
            "token",
            "--database",
            "mysql://x",
            "--role",
            "admin",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected sqlite://PATH or postgres://"));
    let token = admin_token(&db, "admin", None);
    assert!(token.starts_with("sw_") && token.len() == 67, "{token}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_submits_survive_kill_9() {
    let db = temp_db("kill9");
    let token = admin_token(&db, "tenant", Some("acme"));
    let (mut server, url) = serve(&db);
    let client = reqwest::Client::new();
    let body = serde_json::json!({"demand": [{"class": "cpu", "count": 4}], "duration": "1h"});
    // Four writers submit as fast as they can; the server is killed mid-stream.
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, url, token, body) = (client.clone(), url.clone(), token.clone(), body.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..10_000 {
                let key = format!("w{w}-{i}");
                let resp = client
                    .post(format!("{url}/v1/jobs"))
                    .bearer_auth(&token)
                    .header("Idempotency-Key", &key)
                    .json(&body)
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().is_success() => {
                        let doc: serde_json::Value = match r.json().await {
                            Ok(doc) => doc,
                            Err(_) => break,
                        };
                        acknowledged.push((key, doc["id"].as_i64().unwrap()));
                    }
                    _ => break,
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    // SIGKILL: no shutdown, no flush.
    server.kill().unwrap();
    server.wait().unwrap();
    let mut acknowledged = Vec::new();
    for w in writers {
        acknowledged.extend(w.await.unwrap());
    }
    assert!(
        acknowledged.len() > 20,
        "the writers got going ({} acknowledged)",
        acknowledged.len()
    );

    let (mut server, url) = serve(&db);
    let mut stored = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let mut page_url = format!("{url}/v1/jobs?limit=1000");
        if let Some(a) = after {
            page_url.push_str(&format!("&after={a}"));
        }
        let page: serde_json::Value = client
            .get(page_url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let jobs = page["jobs"].as_array().unwrap();
        stored.extend(jobs.iter().map(|j| {
            (
                j["idempotency_key"].as_str().unwrap().to_string(),
                j["id"].as_i64().unwrap(),
            )
        }));
        match page["next"].as_i64() {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let stored_map: std::collections::HashMap<_, _> = stored.iter().cloned().collect();
    assert_eq!(stored_map.len(), stored.len(), "every key is stored once");
    for (key, id) in &acknowledged {
        assert_eq!(
            stored_map.get(key),
            Some(id),
            "acknowledged job {key} (id {id}) survived"
        );
    }
    // A retry of an acknowledged submit after the restart returns the same job.
    let (key, id) = &acknowledged[0];
    let retry: serde_json::Value = client
        .post(format!("{url}/v1/jobs"))
        .bearer_auth(&token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(retry["id"].as_i64(), Some(*id));
    server.kill().unwrap();
    server.wait().unwrap();
}

fn cli(url: &str, token: &str, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .env("SUANWANG_URL", url)
        .env("SUANWANG_TOKEN", token)
        .output()
        .unwrap()
}

#[test]
fn the_cli_submits_lists_explains_and_cancels() {
    let db = temp_db("cli");
    let token = admin_token(&db, "tenant", Some("acme"));
    let (mut server, url) = serve(&db);
    let out = cli(
        &url,
        &token,
        &[
            "submit",
            "--gpus",
            "2",
            "--gpu-model",
            "h20",
            "--cpus",
            "16",
            "--duration",
            "3h",
            "--deadline",
            "12h",
            "--data",
            "200GiB@beijing",
            "--origin",
            "beijing",
            "--idempotency-key",
            "cli-1",
            "--",
            "python",
            "serve.py",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(id.parse::<i64>().is_ok(), "prints the job id: {id}");
    // The same key gives the same job.
    let again = cli(
        &url,
        &token,
        &[
            "submit",
            "--cpus",
            "1",
            "--duration",
            "1h",
            "--idempotency-key",
            "cli-1",
        ],
    );
    assert_eq!(String::from_utf8(again.stdout).unwrap().trim(), id);
    // The scheduler loop is poked by the submission; give it a moment.
    let mut placed = false;
    for _ in 0..50 {
        let out = cli(&url, &token, &["job", &id, "--json"]);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if doc["state"] == "Placed" {
            placed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(placed, "the scheduler placed the job");
    let jobs = cli(&url, &token, &["jobs"]);
    let table = String::from_utf8(jobs.stdout).unwrap();
    assert!(
        table.contains("Placed") && table.contains("2 h20"),
        "{table}"
    );
    let why = cli(&url, &token, &["explain", &id]);
    let text = String::from_utf8(why.stdout).unwrap();
    assert!(text.contains("chosen"), "{text}");
    let cancel = cli(&url, &token, &["cancel", &id]);
    assert!(
        String::from_utf8(cancel.stdout)
            .unwrap()
            .contains("Cancelled")
    );
    let bad = cli(
        &url,
        &token,
        &[
            "submit",
            "--gpus",
            "1",
            "--gpu-model",
            "v100",
            "--duration",
            "1h",
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown resource class \"v100\""));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/demand/0/class"));
    let sites = cli(&url, &token, &["sites"]);
    assert!(String::from_utf8(sites.stdout).unwrap().contains("hami"));
    // A TOML job file, with a latency target from the flags.
    let file = std::path::Path::new(&db.trim_start_matches("sqlite://")).with_file_name("job.toml");
    std::fs::write(
        &file,
        "duration = \"2h\"\nresidency = [\"cn-mainland\"]\ncommand = [\"python\", \"infer.py\"]\n[[demand]]\nclass = \"l40s\"\ncount = 2\n",
    )
    .unwrap();
    let out = cli(
        &url,
        &token,
        &[
            "submit",
            "-f",
            file.to_str().unwrap(),
            "--latency",
            "40@chongqing",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["spec"]["demand"][0]["class"], "l40s");
    assert_eq!(doc["spec"]["latency_target"]["max_ms"], 40.0);
    assert_eq!(doc["spec"]["latency_target"]["region"], "chongqing");
    let bad = cli(
        &url,
        &token,
        &[
            "submit",
            "--cpus",
            "1",
            "--duration",
            "1h",
            "--latency",
            "fast",
        ],
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("MS@REGION"));
    server.kill().unwrap();
    server.wait().unwrap();
    // Nobody listening: a clear message, not a stack of errors.
    let gone = cli(&url, &token, &["jobs"]);
    assert_eq!(gone.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert!(
        stderr.contains("cannot reach the control plane") && stderr.contains("suanwang serve"),
        "{stderr}"
    );
}

/// `jobs --state Pending` gives each waiting job's reason in one word, and
/// `explain` the reason site by site and its history, as the live scheduler
/// (the server's own loop) recorded them.
#[test]
fn pending_jobs_say_why_in_one_word_and_explain_says_more() {
    let db = temp_db("why");
    let token = admin_token(&db, "tenant", Some("acme"));
    let (mut server, url) = serve(&db);
    let submit = |duration: &str| {
        let out = cli(
            &url,
            &token,
            &[
                "submit",
                "--gpus",
                "64",
                "--gpu-model",
                "h20",
                "--site",
                "hami",
                "--no-delay",
                "--duration",
                duration,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    // Every H20 at hami for 30 days (past the 7-day horizon), then one more job.
    let hog = submit("30d");
    let job = submit("1h");
    let mut waits = serde_json::Value::Null;
    for _ in 0..100 {
        let out = cli(&url, &token, &["job", &job, "--json"]);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        waits = doc["wait"].clone();
        if waits == "no-capacity-in-horizon" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(waits, "no-capacity-in-horizon");
    let out = cli(&url, &token, &["jobs", "--state", "Pending"]);
    let table = String::from_utf8(out.stdout).unwrap();
    let header = table.lines().next().unwrap();
    assert!(header.split_whitespace().last() == Some("why"), "{table}");
    let row = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(job.as_str()))
        .unwrap_or_else(|| panic!("job {job} listed: {table}"));
    assert_eq!(row.split_whitespace().last(), Some("capacity"), "{table}");
    assert!(
        !table
            .lines()
            .any(|l| l.split_whitespace().next() == Some(hog.as_str())),
        "the placed hog is not pending: {table}"
    );
    // Jobs that are not pending get no column.
    let out = cli(&url, &token, &["jobs", "--state", "Placed"]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(!table.lines().next().unwrap().contains("why"), "{table}");
    let out = cli(&url, &token, &["explain", &job]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("waiting: no-capacity-in-horizon since")
            && text.contains("earliest start: none within 7 days"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.first() == Some(&"hami") && words.get(1) == Some(&"capacity")
        }),
        "hami's reason: {text}"
    );
    assert!(text.contains("why it waited, newest first:"), "{text}");
    server.kill().unwrap();
    server.wait().unwrap();
}

/// `submit --spill`: the job lands on its first choice that meets its
/// deadline, and `explain` names the choice passed over and why; a bad choice
/// is refused naming it; `spill set|show` keep a tenant's default.
#[test]
fn the_cli_submits_a_spill_list_and_explain_names_the_choices_passed_over() {
    let db = temp_db("spill");
    let token = admin_token(&db, "tenant", Some("acme"));
    let admin = admin_token(&db, "admin", None);
    let (mut server, url) = serve(&db);
    let submit = |extra: &[&str]| {
        let mut args = vec!["submit", "--gpu-model", "h20", "--no-delay"];
        args.extend(extra);
        cli(&url, &token, &args)
    };
    let id = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let placed_at = |job: &str| {
        for _ in 0..100 {
            let out = cli(&url, &token, &["job", job, "--json"]);
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if doc["state"] == "Placed" {
                return doc["site"].as_str().unwrap().to_string();
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let out = cli(&url, &token, &["explain", job, "--json"]);
        panic!(
            "job {job} not placed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    };
    // Every H20 at hami for 30 days.
    let hog = id(submit(&[
        "--gpus",
        "64",
        "--site",
        "hami",
        "--duration",
        "30d",
    ]));
    assert_eq!(placed_at(&hog), "hami");
    let job = id(submit(&[
        "--gpus",
        "8",
        "--duration",
        "1h",
        "--deadline",
        "3h",
        "--spill",
        "site:hami,site:zhongwei,anywhere",
    ]));
    assert_eq!(placed_at(&job), "zhongwei");
    let out = cli(&url, &token, &["explain", &job]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("placed from spill-over choice site:zhongwei, after passing over:"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.starts_with(&["site:hami", "hami", "deadline"])
        }),
        "hami passed over for the deadline: {text}"
    );
    // Mistakes name the choice: in the flag, or its place in the list.
    let bad = submit(&["--gpus", "1", "--duration", "1h", "--spill", "hami"]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("--spill: spill-over choice \"hami\": expected site:ID"),
        "{stderr}"
    );
    let bad = submit(&[
        "--gpus",
        "1",
        "--duration",
        "1h",
        "--spill",
        "anywhere,site:atlantis",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("no site \"atlantis\"") && stderr.contains("/spill/1"),
        "{stderr}"
    );
    // A tenant's default, set by an admin.
    let out = cli(&url, &token, &["spill", "set", "acme", "site:guian"]);
    assert_eq!(out.status.code(), Some(1), "tenants do not set defaults");
    let out = cli(
        &url,
        &admin,
        &["spill", "set", "acme", "site:cq-liangjiang,anywhere"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&url, &token, &["spill", "show"]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [
                    "acme",
                    "site:cq-liangjiang,anywhere",
                    "-",
                    "site:cq-liangjiang,anywhere"
                ]),
        "{table}"
    );
    let plain = id(submit(&["--gpus", "1", "--duration", "1h"]));
    assert_eq!(
        placed_at(&plain),
        "cq-liangjiang",
        "the tenant's default applies"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn top_once_shows_every_site() {
    let db = temp_db("top");
    let token = admin_token(&db, "tenant", Some("acme"));
    let (mut server, url) = serve(&db);
    let out = cli(&url, &token, &["top", "--once"]);
    let frame = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        frame.contains("pending") && frame.contains("UTC"),
        "{frame}"
    );
    assert!(
        !frame.contains('\x1b'),
        "--once draws no escapes: {frame:?}"
    );
    let topology = suanwang_topology::builtin("cn-west").unwrap();
    for site in &topology.sites {
        assert!(
            frame
                .lines()
                .any(|l| l.starts_with(&format!("{} ", site.id.0))),
            "site {} has a row: {frame}",
            site.id.0
        );
    }
    let out = cli(&url, &token, &["top", "--once", "--json"]);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sites = doc["sites"].as_array().expect("a sites array");
    assert_eq!(sites.len(), topology.sites.len());
    let bad = cli(&url, &token, &["top", "--once", "--interval", "0s"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a bad flag is a bad command line"
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("more than zero"));
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn top_once_without_a_server_says_it_cannot_reach_it() {
    let out = cli("http://127.0.0.1:9", "sw_none", &["top", "--once"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot reach"), "{stderr}");
}
