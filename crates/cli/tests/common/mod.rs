//! What the CLI's process-level tests share: a scratch directory and database,
//! tokens, `serve` and `agent` as child processes, and the CLI calls that submit
//! a job and wait for it.
#![allow(dead_code)] // each test file uses its own part

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_suanwang")
}

/// A scratch directory for one test, with its SQLite database.
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(name: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("suanwang-agent-it-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
    pub fn db(&self) -> String {
        format!("sqlite://{}", self.0.join("db.sqlite").display())
    }
}

pub fn token(db: &str, role: &str, tenant: Option<&str>) -> String {
    let mut args = vec!["admin", "token", "--database", db, "--role", role];
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

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn serve(db: &str, port: u16) -> Proc {
    serve_with(db, port, "2s")
}

pub fn serve_with(db: &str, port: u16, lease_ttl: &str) -> Proc {
    serve_args(db, port, &["--lease-ttl", lease_ttl])
}

/// `serve` with a 300 ms heartbeat and these flags (a 2 s lease unless they
/// give `--lease-ttl`).
pub fn serve_args(db: &str, port: u16, extra: &[&str]) -> Proc {
    let ttl: &[&str] = if extra.contains(&"--lease-ttl") {
        &[]
    } else {
        &["--lease-ttl", "2s"]
    };
    let child = Command::new(bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            db,
        ])
        .args(["--heartbeat", "300ms"])
        .args(ttl)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "serve did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Proc(child)
}

pub fn agent_with(
    url: &str,
    token: &str,
    site: &str,
    extra: &[&str],
) -> (Proc, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(bin())
        .args(["agent", "--server", url, "--token", token, "--site", site])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (Proc(child), rx)
}

pub fn cli(url: &str, token: &str, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .env("SUANWANG_URL", url)
        .env("SUANWANG_TOKEN", token)
        .output()
        .unwrap()
}

pub fn job(url: &str, token: &str, id: i64) -> Value {
    let out = cli(url, token, &["job", &id.to_string(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn submit(url: &str, token: &str, command: &[&str]) -> i64 {
    let mut args = vec![
        "submit",
        "--cpus",
        "1",
        "--duration",
        "5m",
        "--site",
        "hami",
        "--no-delay",
        "--",
    ];
    args.extend(command);
    submit_args(url, token, &args[1..])
}

/// Waits until `ok` holds for the job document, or fails with the last one.
pub fn wait_for(url: &str, token: &str, id: i64, secs: u64, ok: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let doc = job(url, token, id);
        if ok(&doc) {
            return doc;
        }
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "job {id} stuck: {doc}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn outcomes(url: &str, token: &str, id: i64) -> Vec<String> {
    let out = cli(url, token, &["explain", &id.to_string(), "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["outcome"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Submits with the CLI's `submit` and these flags; the job's id.
pub fn submit_args(url: &str, token: &str, args: &[&str]) -> i64 {
    let out = cli(url, token, &[&["submit"], args].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Polls `done` every 200 ms until it holds; fails naming `what` after `secs`.
pub fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "{what}: not within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A control plane for one test: its directory, `serve` (with these flags),
/// its URL, an operator's token and tenant `acme`'s.
pub struct Plane {
    pub dir: Dir,
    pub server: Proc,
    pub url: String,
    pub operator: String,
    pub tenant: String,
}

impl Plane {
    pub fn start(name: &str, serve_flags: &[&str]) -> Plane {
        let dir = Dir::new(name);
        let db = dir.db();
        let (operator, tenant) = (
            token(&db, "operator", None),
            token(&db, "tenant", Some("acme")),
        );
        let port = free_port();
        let server = serve_args(&db, port, serve_flags);
        Plane {
            dir,
            server,
            url: format!("http://127.0.0.1:{port}"),
            operator,
            tenant,
        }
    }
}
