//! Logging of the real binary: `RUST_LOG` decides when set, `-v`/`-q` otherwise,
//! `--log-format json` writes one JSON object per line, logs go to stderr, and a
//! request's log line names its route template and request id but never its
//! bearer token.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_suanwang")
}

fn temp_db(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("suanwang-logging-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    format!("sqlite://{}", dir.join("db.sqlite").display())
}

fn admin_token(database: &str) -> String {
    let out = Command::new(bin())
        .args(["admin", "token", "--database", database, "--role", "admin"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A GET over a plain socket; returns the answer's head and body.
fn get(addr: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// Runs `serve` with `args` and `rust_log` (None: unset), makes two requests
/// (one with a bearer token and a request id), stops it, and returns its stderr
/// lines and the token.
fn serve_and_log(name: &str, rust_log: Option<&str>, args: &[&str]) -> (Vec<String>, String) {
    let database = temp_db(name);
    let token = admin_token(&database);
    let mut command = Command::new(bin());
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &database])
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("SUANWANG_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(filter) = rust_log {
        command.env("RUST_LOG", filter);
    }
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let addr = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("serve printed no URL; stderr so far: {seen:#?}"));
        let url = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http://"))
            .map(str::to_string);
        seen.push(line);
        if let Some(url) = url {
            break url;
        }
    };
    let answer = get(&addr, "/healthz", &[("x-request-id", "it-was-me")]);
    assert!(answer.contains("x-request-id: it-was-me"), "{answer}");
    let authorization = format!("Bearer {token}");
    let answer = get(
        &addr,
        "/v1/jobs/424242",
        &[("Authorization", &authorization)],
    );
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    // Both request lines were written before their answers were sent.
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    seen.extend(lines.try_iter());
    (seen, token)
}

#[test]
fn rust_log_debug_shows_requests_and_the_default_does_not() {
    let (lines, token) = serve_and_log("debug", Some("debug"), &[]);
    let text = lines.join("\n");
    assert!(lines.iter().any(|l| l.contains("DEBUG")), "{text}");
    let healthz = lines
        .iter()
        .find(|l| l.contains("request_id=it-was-me"))
        .unwrap_or_else(|| panic!("no line for the request: {text}"));
    assert!(
        healthz.contains("route=/healthz") && healthz.contains("status=200"),
        "{healthz}"
    );
    let job = lines
        .iter()
        .find(|l| l.contains("route=/v1/jobs/{id}") && l.contains("status=404"))
        .unwrap_or_else(|| panic!("no line for GET /v1/jobs/424242 by its route: {text}"));
    assert!(!job.contains("424242"), "the raw path is not logged: {job}");
    assert!(
        !text.contains(&token),
        "the bearer token leaked into the logs"
    );

    // Without RUST_LOG: info and above from suanwang, no request lines.
    let (lines, _) = serve_and_log("default", None, &[]);
    let text = lines.join("\n");
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("DEBUG") || l.contains("request_id=")),
        "{text}"
    );
    // -v turns on debug; RUST_LOG, when set, decides instead.
    let (lines, _) = serve_and_log("verbose", None, &["-v"]);
    assert!(
        lines.iter().any(|l| l.contains("request_id=it-was-me")),
        "{lines:#?}"
    );
    let (lines, _) = serve_and_log("overridden", Some("warn"), &["-v"]);
    assert!(
        !lines.iter().any(|l| l.contains("request_id=")),
        "{lines:#?}"
    );
}

#[test]
fn json_log_lines_are_json_objects() {
    let (lines, token) = serve_and_log("json", Some("debug"), &["--log-format", "json"]);
    let mut objects = Vec::new();
    for line in &lines {
        if line.starts_with("suanwang serving on ") {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(value.is_object(), "{line}");
        assert!(
            value["level"].is_string() && value["timestamp"].is_string(),
            "{line}"
        );
        objects.push(value);
    }
    let request = objects
        .iter()
        .find(|o| o["span"]["request_id"] == "it-was-me")
        .unwrap_or_else(|| panic!("no JSON line for the request: {lines:#?}"));
    assert_eq!(request["span"]["route"], "/healthz");
    assert_eq!(request["level"], "DEBUG");
    assert!(!lines.join("\n").contains(&token));
}

#[test]
fn quiet_and_verbose_are_global_and_simulate_keeps_its_quiet() {
    // -q is taken after the subcommand too, and still hides simulate's progress.
    let out = Command::new(bin())
        .args([
            "simulate",
            "-q",
            "--synthetic-jobs",
            "20",
            "--synthetic-days",
            "1",
            "--policy",
            "cheapest",
            "--lp-max-jobs",
            "0",
        ])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(bin())
        .args(["--log-format", "yaml", "sites"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("text, json"));
}

/// A server whose stderr reader went away (its log pipe closed) keeps serving:
/// the log lines it cannot write are dropped, not turned into panics that
/// would take down each request that logs.
#[test]
fn a_closed_log_pipe_does_not_stop_the_server() {
    let database = temp_db("closed-pipe");
    let token = admin_token(&database);
    let mut child = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &database])
        .env("RUST_LOG", "debug")
        .env_remove("SUANWANG_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "serve ended");
        if let Some(url) = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http://"))
        {
            break url.to_string();
        }
    };
    drop(stderr);
    let authorization = format!("Bearer {token}");
    for _ in 0..5 {
        let answer = get(
            &addr,
            "/v1/jobs/424242",
            &[("Authorization", &authorization)],
        );
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer:?}");
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "serve is still running"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
