//! TLS end to end, as separate processes: a private CA made by `suanwang tls`,
//! `suanwang serve` over HTTPS with mutual TLS for agents, the CLI and a real
//! agent running a real job over it; a wrong CA, plain HTTP, an agent's
//! certificate for another site and an agent without one are each refused with
//! an error that says what is wrong. And the abuse limits: a token over its rate
//! gets 429 with `Retry-After`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_suanwang")
}

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("suanwang-tls-it-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
    fn db(&self) -> String {
        format!("sqlite://{}", self.0.join("db.sqlite").display())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn token(db: &str, args: &[&str]) -> String {
    let mut all = vec!["admin", "token", "--database", db];
    all.extend(args);
    ok(run(&all)).trim().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(db: &str, port: u16, extra: &[&str]) -> Proc {
    let child = Command::new(bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            db,
        ])
        .args(["--heartbeat", "300ms", "--lease-ttl", "2s"])
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

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The CLI against `url` with `token`, trusting `ca` if given.
fn cli(url: &str, token: &str, ca: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env("SUANWANG_URL", url)
        .env("SUANWANG_TOKEN", token)
        .env_remove("SUANWANG_CA_CERT");
    if let Some(ca) = ca {
        cmd.env("SUANWANG_CA_CERT", ca);
    }
    cmd.output().unwrap()
}

/// Runs an agent that is expected to give up; returns its stderr.
fn refused_agent(url: &str, token: &str, site: &str, data: &Path, extra: &[&str]) -> String {
    let mut child = Command::new(bin())
        .args(["agent", "--server", url, "--token", token, "--site", site])
        .args([
            "--executor",
            "local",
            "--capacity",
            "cpu=2,mem_gib=2",
            "--data",
        ])
        .arg(data)
        .args(extra)
        .env_remove("SUANWANG_CA_CERT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the agent did not give up");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_cli_and_an_agent_work_over_mutual_tls_and_wrong_ca_plain_http_and_wrong_certificates_are_refused()
 {
    let dir = Dir::new("mtls");
    let db = dir.db();
    let pki = dir.0.join("pki");
    let other = dir.0.join("other-pki");
    ok(run(&["tls", "init", path(&pki)]));
    ok(run(&["tls", "init", path(&other)]));
    ok(run(&["tls", "agent", path(&pki), "--site", "hami"]));
    ok(run(&["tls", "agent", path(&pki), "--site", "zhongwei"]));
    // `init` does not replace a CA.
    let again = run(&["tls", "init", path(&pki)]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not replacing it"));

    let ca = pki.join("ca.pem");
    let port = free_port();
    let _server = serve(
        &db,
        port,
        &[
            "--tls-cert",
            path(&pki.join("server.pem")),
            "--tls-key",
            path(&pki.join("server-key.pem")),
            "--tls-client-ca",
            path(&ca),
            "--require-agent-certificate",
        ],
    );
    let url = format!("https://localhost:{port}");
    let tenant = token(&db, &["--role", "tenant", "--tenant", "acme"]);
    let hami = token(&db, &["--role", "agent", "--site", "hami"]);

    // The CLI over TLS with the private CA.
    let sites = ok(cli(&url, &tenant, Some(&ca), &["sites"]));
    assert!(sites.contains("hami"), "{sites}");

    // A wrong CA: a clear error naming TLS and the way out.
    let out = cli(&url, &tenant, Some(&other.join("ca.pem")), &["sites"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TLS with the control plane") && err.contains("--ca-cert"),
        "{err}"
    );
    // No CA at all: the system's roots do not know a private CA either.
    let out = cli(&url, &tenant, None, &["sites"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS with the control plane"));
    // Plain HTTP to the TLS port is refused, and the error says to use https.
    let out = cli(
        &format!("http://127.0.0.1:{port}"),
        &tenant,
        None,
        &["sites"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("https://"), "{err}");
    // A CA file that is not there is named.
    let out = cli(&url, &tenant, Some(&dir.0.join("nope.pem")), &["sites"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.pem"));

    // An agent whose certificate names another site: refused (403), it stops.
    let err = refused_agent(
        &url,
        &hami,
        "hami",
        &dir.0.join("a1"),
        &[
            "--ca-cert",
            path(&ca),
            "--client-cert",
            path(&pki.join("agent-zhongwei.pem")),
            "--client-key",
            path(&pki.join("agent-zhongwei-key.pem")),
        ],
    );
    assert!(
        err.contains("the client certificate names site \"zhongwei\""),
        "{err}"
    );
    // An agent without a certificate, where one is required: refused.
    let err = refused_agent(
        &url,
        &hami,
        "hami",
        &dir.0.join("a2"),
        &["--ca-cert", path(&ca)],
    );
    assert!(
        err.contains("requires agents to present a client certificate"),
        "{err}"
    );
    // An agent that does not trust the server: it says so and stops.
    let err = refused_agent(
        &url,
        &hami,
        "hami",
        &dir.0.join("a3"),
        &["--ca-cert", path(&other.join("ca.pem"))],
    );
    assert!(err.contains("TLS with the control plane"), "{err}");

    // The right certificate: the agent registers and runs a real job.
    let _agent = Proc(
        Command::new(bin())
            .args([
                "agent", "--server", &url, "--token", &hami, "--site", "hami",
            ])
            .args([
                "--executor",
                "local",
                "--capacity",
                "cpu=2,mem_gib=2",
                "--data",
            ])
            .arg(dir.0.join("agent"))
            .args(["--ca-cert", path(&ca)])
            .args(["--client-cert", path(&pki.join("agent-hami.pem"))])
            .args(["--client-key", path(&pki.join("agent-hami-key.pem"))])
            .env_remove("SUANWANG_CA_CERT")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let id: i64 = ok(cli(
        &url,
        &tenant,
        Some(&ca),
        &[
            "submit",
            "--cpus",
            "1",
            "--duration",
            "5m",
            "--site",
            "hami",
            "--no-delay",
            "--",
            "sh",
            "-c",
            "echo over-tls",
        ],
    ))
    .trim()
    .parse()
    .unwrap();
    let started = Instant::now();
    loop {
        let doc: serde_json::Value = serde_json::from_str(&ok(cli(
            &url,
            &tenant,
            Some(&ca),
            &["job", &id.to_string(), "--json"],
        )))
        .unwrap();
        if doc["state"] == "Succeeded" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30) && doc["state"] != "Failed",
            "job {id} stuck: {doc}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let logs = ok(cli(&url, &tenant, Some(&ca), &["logs", &id.to_string()]));
    assert!(logs.contains("over-tls"), "{logs}");
}

#[test]
fn a_token_over_its_rate_gets_429_with_retry_after_and_an_address_failing_auth_is_held_off() {
    let dir = Dir::new("limits");
    let db = dir.db();
    let port = free_port();
    let _server = serve(
        &db,
        port,
        &["--rate-limit", "2/3", "--auth-failures-per-minute", "4"],
    );
    let url = format!("http://127.0.0.1:{port}");
    let tenant = token(&db, &["--role", "tenant", "--tenant", "acme"]);
    let admin = token(&db, &["--role", "admin"]);
    let http = reqwest::blocking::Client::new();
    let get = |token: &str| {
        http.get(format!("{url}/v1/jobs"))
            .bearer_auth(token)
            .send()
            .unwrap()
    };
    // The burst of 3 passes, the 4th waits.
    let statuses: Vec<u16> = (0..4).map(|_| get(&tenant).status().as_u16()).collect();
    assert_eq!(&statuses[..3], [200, 200, 200], "{statuses:?}");
    let limited = get(&tenant);
    assert_eq!(limited.status().as_u16(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1).contains(&retry), "{retry}");
    let body: serde_json::Value = limited.json().unwrap();
    assert_eq!(body["code"], "rate_limited", "{body}");
    // Staff tokens are not limited by default.
    for _ in 0..10 {
        assert_eq!(get(&admin).status().as_u16(), 200);
    }
    // The CLI says what happened (the bucket refills as it goes: spend it).
    let out = (0..10)
        .map(|_| cli(&url, &tenant, None, &["jobs"]))
        .find(|out| !out.status.success())
        .expect("the CLI was never limited");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("over its request rate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Four unknown tokens from this address, then even a good one waits.
    for _ in 0..4 {
        assert_eq!(get("sw_not-a-token").status().as_u16(), 401);
    }
    let held = get(&admin);
    assert_eq!(held.status().as_u16(), 429);
    let retry: u64 = held.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((50..=60).contains(&retry), "{retry}");
    // The OpenAPI document lists 429 with Retry-After on token routes.
    let doc: serde_json::Value = http
        .get(format!("{url}/openapi.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let listed = &doc["paths"]["/v1/jobs"]["get"]["responses"]["429"];
    assert!(listed["headers"]["Retry-After"].is_object(), "{listed}");
}

#[test]
fn a_bad_tls_setup_is_refused_at_start_naming_the_file() {
    let dir = Dir::new("bad");
    std::fs::write(dir.0.join("empty.pem"), "not pem\n").unwrap();
    let out = run(&[
        "serve",
        "--database",
        &dir.db(),
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        path(&dir.0.join("empty.pem")),
        "--tls-key",
        path(&dir.0.join("empty.pem")),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("empty.pem") && err.contains("no PEM certificate"),
        "{err}"
    );
}
