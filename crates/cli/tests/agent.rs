//! Real agents running real processes for a real control plane, as separate
//! processes: a job submitted with the CLI runs on a local agent and its output and
//! exit code come back; an agent killed mid-job, or cut off and brought back, and a
//! control plane restarted mid-run — each job still completes exactly once.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts a local agent; returns it and its stderr lines as they come.
fn agent(
    url: &str,
    token: &str,
    site: &str,
    data: &Path,
) -> (Proc, std::sync::mpsc::Receiver<String>) {
    let data = data.display().to_string();
    // The scheduler plans with what the agent measures: offer more cores than
    // this (small) machine has, as an operator may for jobs that mostly sleep,
    // so that several one-core jobs run at once.
    agent_with(
        url,
        token,
        site,
        &[
            "--executor",
            "local",
            "--data",
            &data,
            "--capacity",
            "cpu=16",
        ],
    )
}

#[test]
fn a_job_submitted_with_the_cli_runs_on_a_local_agent_and_its_output_comes_back() {
    let dir = Dir::new("run");
    let db = dir.db();
    let (operator, tenant) = (
        token(&db, "operator", None),
        token(&db, "tenant", Some("acme")),
    );
    let port = free_port();
    let _server = serve(&db, port);
    let url = format!("http://127.0.0.1:{port}");
    let _agent = agent(&url, &operator, "hami", &dir.0.join("agent"));

    let failing = submit(
        &url,
        &tenant,
        &["sh", "-c", "echo hello from $SUANWANG_JOB_ID; exit 3"],
    );
    let done = wait_for(&url, &tenant, failing, 20, |j| j["state"] == "Failed");
    assert_eq!(done["exit_code"], 3);
    assert_eq!(done["site"], "hami");
    let logs = cli(&url, &tenant, &["logs", &failing.to_string()]);
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(text.contains(&format!("hello from {failing}")), "{text:?}");

    // Output shows while the job runs (heartbeats carry it), not only at the end.
    let slow = submit(
        &url,
        &tenant,
        &["sh", "-c", "echo early; sleep 4; echo late"],
    );
    wait_for(&url, &tenant, slow, 20, |j| j["state"] == "Running");
    let started = Instant::now();
    loop {
        let out = cli(&url, &tenant, &["logs", &slow.to_string(), "--json"]);
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        if doc["tail"].as_str().unwrap_or_default().contains("early") {
            assert_eq!(doc["complete"], false, "{doc}");
            assert!(!doc["tail"].as_str().unwrap().contains("late"));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "no output while running: {doc}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let listed = cli(&url, &operator, &["agents"]);
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(
        table.contains("hami") && table.contains("local") && table.contains("yes"),
        "{table}"
    );
    let out = cli(
        &url,
        &operator,
        &["drain", "hami", "--reason", "maintenance"],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("drained"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refused = cli(&url, &tenant, &["drain", "hami"]);
    assert_eq!(refused.status.code(), Some(1), "tenants cannot drain");
    let out = cli(&url, &operator, &["undrain", "hami"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("takes work"));
    let ok = submit(&url, &tenant, &["true"]);
    let done = wait_for(&url, &tenant, ok, 20, |j| j["state"] == "Succeeded");
    assert_eq!(
        (done["exit_code"].as_i64(), done["attempt"].as_i64()),
        (Some(0), Some(1))
    );
    assert!(done["started_at"].as_i64() <= done["finished_at"].as_i64());
}

#[test]
fn a_job_whose_agent_is_killed_is_placed_again_and_completes_once() {
    let dir = Dir::new("kill");
    let db = dir.db();
    let (operator, tenant) = (
        token(&db, "operator", None),
        token(&db, "tenant", Some("acme")),
    );
    let port = free_port();
    let _server = serve(&db, port);
    let url = format!("http://127.0.0.1:{port}");
    let (mut first, _) = agent(&url, &operator, "hami", &dir.0.join("a"));
    let id = submit(&url, &tenant, &["sh", "-c", "sleep 3; echo finished"]);
    wait_for(&url, &tenant, id, 20, |j| j["state"] == "Running");
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    // Another agent of the site takes over once the lease has run out.
    let (_second, _) = agent(&url, &operator, "hami", &dir.0.join("b"));
    let done = wait_for(&url, &tenant, id, 30, |j| j["state"] == "Succeeded");
    assert_eq!(done["attempt"], 2, "{done}");
    let seen = outcomes(&url, &tenant, id);
    assert_eq!(seen.iter().filter(|o| *o == "lost").count(), 1, "{seen:?}");
    assert_eq!(
        seen.iter().filter(|o| *o == "requeued").count(),
        1,
        "{seen:?}"
    );
    let logs = cli(&url, &tenant, &["logs", &id.to_string()]);
    assert_eq!(
        String::from_utf8_lossy(&logs.stdout)
            .matches("finished")
            .count(),
        1
    );
}

#[test]
fn an_agent_cut_off_and_brought_back_is_fenced_out_and_stops_its_copy() {
    let dir = Dir::new("cut");
    let db = dir.db();
    let (operator, tenant) = (
        token(&db, "operator", None),
        token(&db, "tenant", Some("acme")),
    );
    let port = free_port();
    let _server = serve(&db, port);
    let url = format!("http://127.0.0.1:{port}");
    let (cut, cut_log) = agent(&url, &operator, "hami", &dir.0.join("a"));
    let marker = dir.0.join("marker");
    // Long enough that the cut-off copy is still running when its agent is back.
    let script = format!("sleep 15; echo x >> {}", marker.display());
    let id = submit(&url, &tenant, &["sh", "-c", &script]);
    let running = wait_for(&url, &tenant, id, 20, |j| j["state"] == "Running");
    let cut_agent = running["agent"].as_str().unwrap().to_string();
    // Cut off: the agent is frozen (no heartbeats) while its process runs on.
    let pid = nix::unistd::Pid::from_raw(cut.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let (_other, _) = agent(&url, &operator, "hami", &dir.0.join("b"));
    let moved = wait_for(&url, &tenant, id, 20, |j| {
        j["attempt"] == 2 && j["state"] == "Running"
    });
    assert_ne!(moved["agent"].as_str(), Some(cut_agent.as_str()));
    // Back: its heartbeat is answered "stale", it stops its copy, and its late
    // report cannot touch the job.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let started = Instant::now();
    loop {
        let line = cut_log
            .recv_timeout(Duration::from_secs(10))
            .expect("the cut-off agent said nothing");
        if line.contains("stopping the job") || line.contains("lease lost") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no fencing seen"
        );
    }
    let done = wait_for(&url, &tenant, id, 40, |j| j["state"] == "Succeeded");
    assert_eq!(done["attempt"], 2);
    std::thread::sleep(Duration::from_secs(1));
    let marks = std::fs::read_to_string(&marker).unwrap_or_default();
    assert_eq!(
        marks.lines().count(),
        1,
        "the job's effect happened once: {marks:?}"
    );
}

#[test]
fn a_control_plane_restarted_mid_run_loses_nothing_and_doubles_nothing() {
    let dir = Dir::new("restart");
    let db = dir.db();
    let (operator, tenant) = (
        token(&db, "operator", None),
        token(&db, "tenant", Some("acme")),
    );
    let port = free_port();
    // Leases outlast the restart.
    let mut server = serve_with(&db, port, "10s");
    let url = format!("http://127.0.0.1:{port}");
    let _agent = agent(&url, &operator, "hami", &dir.0.join("a"));
    let ids: Vec<i64> = (0..4)
        .map(|_| submit(&url, &tenant, &["sleep", "2"]))
        .collect();
    wait_for(&url, &tenant, ids[0], 20, |j| j["state"] == "Running");
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let _server = serve_with(&db, port, "10s");
    for id in &ids {
        let done = wait_for(&url, &tenant, *id, 40, |j| j["state"] == "Succeeded");
        assert_eq!(done["attempt"], 1, "job {id} ran twice: {done}");
    }
}

/// The slurmrestd socket, or None (skip) — unless SUANWANG_REQUIRE_SLURM says the
/// cluster must be there.
fn slurm_socket(test: &str) -> Option<String> {
    match std::env::var("SUANWANG_TEST_SLURM") {
        Ok(socket) => Some(socket),
        Err(_) if std::env::var_os("SUANWANG_REQUIRE_SLURM").is_some() => {
            panic!("{test}: SUANWANG_REQUIRE_SLURM is set but SUANWANG_TEST_SLURM is not")
        }
        Err(_) => {
            eprintln!("skipping {test}: run tools/start-slurm.sh and set SUANWANG_TEST_SLURM");
            None
        }
    }
}

#[test]
fn a_job_submitted_with_the_cli_runs_on_a_real_slurm_cluster() {
    let Some(socket) = slurm_socket("a_job_submitted_with_the_cli_runs_on_a_real_slurm_cluster")
    else {
        return;
    };
    let dir = Dir::new("slurm");
    let db = dir.db();
    let (operator, tenant) = (
        token(&db, "operator", None),
        token(&db, "tenant", Some("acme")),
    );
    let port = free_port();
    let _server = serve(&db, port);
    let url = format!("http://127.0.0.1:{port}");
    let _agent = agent_with(
        &url,
        &operator,
        "hami",
        &["--executor", "slurm", "--slurm-socket", &socket],
    );
    let id = submit(
        &url,
        &tenant,
        &[
            "sh",
            "-c",
            "echo hello from slurm job $SLURM_JOB_ID; exit 4",
        ],
    );
    let done = wait_for(&url, &tenant, id, 60, |j| j["state"] == "Failed");
    assert_eq!(done["exit_code"], 4, "{done}");
    let logs = cli(&url, &tenant, &["logs", &id.to_string()]);
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(text.contains("hello from slurm job "), "{text:?}");
    let ok = submit(&url, &tenant, &["true"]);
    let done = wait_for(&url, &tenant, ok, 60, |j| j["state"] == "Succeeded");
    assert_eq!(done["exit_code"], 0);
}

#[test]
fn a_cancelled_job_is_killed_at_its_agent() {
    let dir = Dir::new("cancel");
    let db = dir.db();
    let (operator, tenant) = (
        token(&db, "operator", None),
        token(&db, "tenant", Some("acme")),
    );
    let port = free_port();
    let _server = serve(&db, port);
    let url = format!("http://127.0.0.1:{port}");
    let _agent = agent(&url, &operator, "hami", &dir.0.join("a"));
    let marker = dir.0.join("survived");
    let script = format!("sleep 3; echo x > {}", marker.display());
    let id = submit(&url, &tenant, &["sh", "-c", &script]);
    wait_for(&url, &tenant, id, 20, |j| j["state"] == "Running");
    let out = cli(&url, &tenant, &["cancel", &id.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !marker.exists(),
        "the cancelled job's process group was not killed"
    );
    assert_eq!(job(&url, &tenant, id)["state"], "Cancelled");
}

#[test]
fn an_agent_brings_a_new_site_into_the_network() {
    let dir = Dir::new("newsite");
    let db = dir.db();
    let (operator, tenant) = (
        token(&db, "operator", None),
        token(&db, "tenant", Some("acme")),
    );
    let port = free_port();
    let _server = serve(&db, port);
    let url = format!("http://127.0.0.1:{port}");
    let site_file = dir.0.join("lab.toml");
    std::fs::write(
        &site_file,
        r#"[site]
id = "cq-lab"
name = "Chongqing university lab"
province = "Chongqing"
hub = "chengdu-chongqing"
location = { lat = 29.56, lon = 106.55 }
jurisdiction = "cn-mainland"
pue = 1.4
capacity = { cpu = 32, mem_gib = 128 }
price_cny_per_unit_hour = { cpu = 0.2, mem_gib = 0.02 }
tariff = { base_cny_per_kwh = 0.6 }
carbon = { grid_kg_per_kwh = 0.5, source = "MEE22 Chongqing (assumed)" }
green = { share = 0.1 }
"#,
    )
    .unwrap();
    let data = dir.0.join("a").display().to_string();
    let site_arg = site_file.display().to_string();
    let _agent = agent_with(
        &url,
        &operator,
        "cq-lab",
        &[
            "--executor",
            "local",
            "--data",
            &data,
            "--site-file",
            &site_arg,
        ],
    );
    let started = Instant::now();
    loop {
        let out = cli(&url, &tenant, &["sites", "--json"]);
        if String::from_utf8_lossy(&out.stdout).contains("cq-lab") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the site did not appear"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = cli(
        &url,
        &tenant,
        &[
            "submit",
            "--cpus",
            "2",
            "--duration",
            "5m",
            "--site",
            "cq-lab",
            "--no-delay",
            "--",
            "echo",
            "hello lab",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id: i64 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let done = wait_for(&url, &tenant, id, 20, |j| j["state"] == "Succeeded");
    assert_eq!(done["site"], "cq-lab");
    // A bad site file is refused before anything is sent.
    std::fs::write(&site_file, "[site]\nid = \"cq-lab\"\npue = \"high\"\n").unwrap();
    let out = Command::new(bin())
        .args([
            "agent",
            "--server",
            &url,
            "--token",
            &operator,
            "--site",
            "cq-lab",
            "--site-file",
            &site_arg,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lab.toml") && err.contains("not a valid site"),
        "{err}"
    );
}

/// A site file declaring a model missing from the built-in catalogue, offering
/// four of its cards.
fn npu_site_file(memory_gib: u32) -> String {
    format!(
        r#"[[accelerator]]
name = "mlu590x"
vendor = "Cambricon"
model = "MLU590 (test)"
family = "cambricon"
memory_gib = {memory_gib}
fp16_tflops = 314
source = "the provider's survey (test)"
aliases = ["Cambricon MLU590X"]

[site]
id = "cq-npu-lab"
name = "Chongqing NPU lab"
province = "Chongqing"
hub = "chengdu-chongqing"
location = {{ lat = 29.56, lon = 106.55 }}
jurisdiction = "cn-mainland"
pue = 1.3
capacity = {{ cpu = 8, mem_gib = 16, mlu590x = 4 }}
price_cny_per_unit_hour = {{ cpu = 0.2, mem_gib = 0.02, mlu590x = 6.0 }}
power_kw_per_unit = {{ mlu590x = 0.35 }}
tariff = {{ base_cny_per_kwh = 0.6 }}
carbon = {{ grid_kg_per_kwh = 0.5, source = "MEE22 Chongqing (assumed)" }}
green = {{ share = 0.1 }}
"#
    )
}

#[test]
fn a_site_with_a_model_missing_from_the_catalogue_joins_and_runs_its_jobs() {
    let dir = Dir::new("newmodel");
    let db = dir.db();
    let (operator, tenant) = (
        token(&db, "operator", None),
        token(&db, "tenant", Some("acme")),
    );
    let port = free_port();
    let server = serve(&db, port);
    let url = format!("http://127.0.0.1:{port}");
    let listed = |url: &str| {
        let out = cli(url, &tenant, &["accelerators", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
    };
    let before = listed(&url);
    assert!(
        before
            .iter()
            .any(|m| m["name"] == "h100" && m["builtin"] == true)
    );
    assert!(!before.iter().any(|m| m["name"] == "mlu590x"));
    // The site file declares the model; no such card exists here, so the agent
    // offers four with --capacity.
    let site_file = dir.0.join("npu-lab.toml");
    std::fs::write(&site_file, npu_site_file(96)).unwrap();
    let data = dir.0.join("a").display().to_string();
    let site_arg = site_file.display().to_string();
    let _agent = agent_with(
        &url,
        &operator,
        "cq-npu-lab",
        &[
            "--executor",
            "local",
            "--data",
            &data,
            "--site-file",
            &site_arg,
            "--capacity",
            "cpu=8,mem_gib=16,mlu590x=4",
        ],
    );
    let started = Instant::now();
    loop {
        let out = cli(&url, &operator, &["agents"]);
        if String::from_utf8_lossy(&out.stdout).contains("cq-npu-lab") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the site's agent did not register"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let model = listed(&url)
        .into_iter()
        .find(|m| m["name"] == "mlu590x")
        .expect("the catalogue lists the declared model");
    assert_eq!(model["builtin"], false);
    assert_eq!(model["vendor"], "Cambricon");
    assert_eq!(model["memory_gib"], 96.0);
    // A job asking for the model, placed by the scheduler (not pinned): only
    // this site has it.
    let out = cli(
        &url,
        &tenant,
        &[
            "submit",
            "--cpus",
            "1",
            "--gpus",
            "2",
            "--gpu-model",
            "MLU590X",
            "--duration",
            "5m",
            "--no-delay",
            "--",
            "echo",
            "hello mlu",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id: i64 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let done = wait_for(&url, &tenant, id, 30, |j| j["state"] == "Succeeded");
    assert_eq!(done["site"], "cq-npu-lab");
    // Another process, which never saw the site file, reads the site and lists
    // the catalogue as a table.
    let out = cli(&url, &tenant, &["sites"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("mlu590x 4"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&url, &tenant, &["accelerators"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("mlu590x") && text.contains("Cambricon") && text.contains("added"),
        "{text}"
    );
    // The same name with other figures is refused, naming what differs.
    let bad_file = dir.0.join("bad.toml");
    std::fs::write(&bad_file, npu_site_file(48)).unwrap();
    let out = Command::new(bin())
        .args([
            "agent",
            "--server",
            &url,
            "--token",
            &operator,
            "--site",
            "cq-npu-lab",
        ])
        .args(["--site-file", &bad_file.display().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mlu590x") && err.contains("already registered") && err.contains("memory_gib"),
        "{err}"
    );
    // After a restart the stored model is back before the stored site needs it.
    drop(server);
    let port = free_port();
    let _server = serve(&db, port);
    let url = format!("http://127.0.0.1:{port}");
    let out = cli(&url, &tenant, &["sites", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("\"mlu590x\": 4"),
        "{text}"
    );
    assert!(listed(&url).iter().any(|m| m["name"] == "mlu590x"));
}

/// A TCP proxy that can be cut (every connection dropped, new ones refused) and
/// restored: a network partition between an agent and the control plane.
struct Proxy {
    port: u16,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = open.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !flag.load(Ordering::SeqCst) {
                    continue; // dropped: connection reset
                }
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let flag = flag.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        loop {
                            use std::io::{Read, Write};
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if !flag.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = from.shutdown(std::net::Shutdown::Both);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, open }
    }

    fn set(&self, open: bool) {
        self.open.store(open, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_partitioned_agent_retries_and_on_reconnecting_is_fenced_out() {
    let dir = Dir::new("partition");
    let db = dir.db();
    let (operator, tenant) = (
        token(&db, "operator", None),
        token(&db, "tenant", Some("acme")),
    );
    let port = free_port();
    let _server = serve(&db, port);
    let url = format!("http://127.0.0.1:{port}");
    let proxy = Proxy::start(port);
    let behind = format!("http://127.0.0.1:{}", proxy.port);
    let (_cut, cut_log) = agent(&behind, &operator, "hami", &dir.0.join("a"));
    let marker = dir.0.join("marker");
    let script = format!("sleep 12; echo x >> {}", marker.display());
    let id = submit(&url, &tenant, &["sh", "-c", &script]);
    let running = wait_for(&url, &tenant, id, 20, |j| j["state"] == "Running");
    let cut_agent = running["agent"].as_str().unwrap().to_string();
    proxy.set(false);
    // The other side of the partition: another agent of the site takes over.
    let (_other, _) = agent(&url, &operator, "hami", &dir.0.join("b"));
    let moved = wait_for(&url, &tenant, id, 20, |j| {
        j["attempt"] == 2 && j["state"] == "Running"
    });
    assert_ne!(moved["agent"].as_str(), Some(cut_agent.as_str()));
    proxy.set(true);
    let started = Instant::now();
    let mut retried = false;
    loop {
        let line = cut_log
            .recv_timeout(Duration::from_secs(15))
            .expect("the partitioned agent said nothing");
        retried |= line.contains("heartbeat failed") || line.contains("cannot report");
        if line.contains("stopping the job") || line.contains("lease lost") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no fencing seen"
        );
    }
    assert!(retried, "the agent saw the partition and retried");
    let done = wait_for(&url, &tenant, id, 40, |j| j["state"] == "Succeeded");
    assert_eq!(done["attempt"], 2);
    std::thread::sleep(Duration::from_secs(1));
    let marks = std::fs::read_to_string(&marker).unwrap_or_default();
    assert_eq!(
        marks.lines().count(),
        1,
        "the cut-off copy was stopped: {marks:?}"
    );
}

/// `suanwang tokens …` with `token`; its stdout.
fn tokens(url: &str, token: &str, args: &[&str]) -> String {
    let mut all = vec!["tokens"];
    all.extend(args);
    let out = cli(url, token, &all);
    assert!(
        out.status.success(),
        "tokens {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_site_bound_agent_token_is_refused_elsewhere_and_rotates_without_losing_its_job() {
    let dir = Dir::new("rotate");
    let db = dir.db();
    let (admin, tenant) = (
        token(&db, "admin", None),
        token(&db, "tenant", Some("acme")),
    );
    let port = free_port();
    let _server = serve(&db, port);
    let url = format!("http://127.0.0.1:{port}");
    let first = tokens(
        &url,
        &admin,
        &["issue", "--role", "agent", "--site", "hami"],
    )
    .trim()
    .to_string();

    // For another site: refused, and the agent says why and stops.
    let out = Command::new(bin())
        .args([
            "agent", "--server", &url, "--token", &first, "--site", "zhongwei",
        ])
        .args(["--executor", "local", "--data"])
        .arg(dir.0.join("wrong"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("may not register an agent for site \"zhongwei\""),
        "{stderr}"
    );

    // For its own site, from a token file.
    let file = dir.0.join("hami.token");
    std::fs::write(&file, format!("{first}\n")).unwrap();
    let mut child = Command::new(bin())
        .args([
            "agent",
            "--server",
            &url,
            "--site",
            "hami",
            "--executor",
            "local",
        ])
        .arg("--token-file")
        .arg(&file)
        .arg("--data")
        .arg(dir.0.join("a"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let id = submit(&url, &tenant, &["sh", "-c", "sleep 4; echo rotated-fine"]);
    wait_for(&url, &tenant, id, 20, |j| j["state"] == "Running");

    // Rotate mid-run: the new token into the file, then the old one revoked.
    // The old one is known by its id, listed before the new one exists (two
    // tokens issued in one second have no order to tell them apart by).
    let agent_ids = |listed: &str| -> Vec<String> {
        let listed: Value = serde_json::from_str(listed).unwrap();
        listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["role"] == "agent")
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    };
    let old = agent_ids(&tokens(&url, &admin, &["--json"]));
    assert_eq!(old.len(), 1, "{old:?}");
    let second = tokens(
        &url,
        &admin,
        &["issue", "--role", "agent", "--site", "hami"],
    )
    .trim()
    .to_string();
    assert_ne!(first, second);
    std::fs::write(&file, &second).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(agent_ids(&tokens(&url, &admin, &["--json"])).len(), 2);
    let revoked = tokens(&url, &admin, &["revoke", &old[0]]);
    assert!(revoked.contains("revoked"), "{revoked}");

    let done = wait_for(&url, &tenant, id, 30, |j| {
        j["state"] == "Succeeded" || j["state"] == "Failed" || j["state"] == "Lost"
    });
    assert_eq!(done["state"], "Succeeded", "{done}");
    assert_eq!(done["attempt"], 1, "the same run, not a second one: {done}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the agent runs on under its new token"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// The done-when of measured capacity: an agent at `hami` that offers 2 cores
/// is never handed more than 2 cores of work at once, however many cores the
/// topology declares there (1,536), and every job still finishes. The clock
/// runs 100 times faster so that the scheduler's 15-minute slots pass in 9 s.
#[test]
fn an_agent_offering_two_cores_never_holds_more_than_two_cores_of_work() {
    let dir = Dir::new("two-cores");
    let db = dir.db();
    let (operator, tenant) = (
        token(&db, "operator", None),
        token(&db, "tenant", Some("acme")),
    );
    let port = free_port();
    let child = Command::new(bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--database",
            &db,
            "--heartbeat",
            "300ms",
            "--lease-ttl",
            "3s",
        ])
        .args(["--speed", "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Proc(child);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "serve did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("http://127.0.0.1:{port}");
    let data = dir.0.join("agent").display().to_string();
    let (_agent, log) = agent_with(
        &url,
        &operator,
        "hami",
        &[
            "--executor",
            "local",
            "--data",
            &data,
            "--capacity",
            "cpu=2",
            "--probe",
        ],
    );
    // Registered, measured and probed.
    let started = Instant::now();
    let site = loop {
        let out = cli(&url, &tenant, &["sites", "--json"]);
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let hami = doc
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "hami")
            .unwrap()
            .clone();
        if hami["capacity"]["live_agents"] == 1 {
            break hami;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the agent did not register: {hami}; its log: {:?}",
            log.try_iter().collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let capacity = &site["capacity"];
    assert_eq!(capacity["status"], "below-declared", "{capacity}");
    assert_eq!(capacity["declared"]["cpu"], 1536);
    assert_eq!(
        (
            capacity["measured"]["cpu"].as_u64(),
            capacity["planned"]["cpu"].as_u64()
        ),
        (Some(2), Some(2))
    );
    let probe = &capacity["probes"][0];
    assert_eq!(
        (
            probe["probe"]["class"].as_str(),
            probe["probe"]["status"].as_str()
        ),
        (Some("cpu"), Some("ran")),
        "{capacity}"
    );
    assert!(probe["probe"]["gflops"].as_f64().unwrap() > 0.0);
    let table = String::from_utf8_lossy(&cli(&url, &tenant, &["sites"]).stdout).to_string();
    assert!(
        table.contains("BELOW declared: ") && table.contains("cpu 2 of 1536"),
        "{table}"
    );

    // A job that fits the declaration but not the measurement waits, and says why.
    let big = {
        let out = cli(
            &url,
            &tenant,
            &[
                "submit",
                "--cpus",
                "4",
                "--duration",
                "5m",
                "--site",
                "hami",
                "--no-delay",
                "--",
                "true",
            ],
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse::<i64>()
            .unwrap()
    };
    let mut jobs = Vec::new();
    for n in 0..8 {
        jobs.push(submit(
            &url,
            &tenant,
            &["sh", "-c", &format!("sleep 0.{}", 3 + n % 5)],
        ));
    }
    // At every look: the cores of jobs handed to the agent (dispatched or
    // running) at hami never exceed the 2 it offers.
    let started = Instant::now();
    let mut most = 0;
    let mut looks = 0;
    loop {
        let out = cli(&url, &tenant, &["jobs", "--json", "--limit", "100"]);
        let page: Value = serde_json::from_slice(&out.stdout).unwrap();
        let listed = page["jobs"].as_array().unwrap();
        let held: u64 = listed
            .iter()
            .filter(|j| j["site"] == "hami")
            .filter(|j| matches!(j["state"].as_str(), Some("Dispatched" | "Running")))
            .map(|j| j["spec"]["demand"][0]["count"].as_u64().unwrap())
            .sum();
        assert!(held <= 2, "{held} cores held at hami: {page}");
        most = most.max(held);
        looks += 1;
        let done = listed
            .iter()
            .filter(|j| jobs.contains(&j["id"].as_i64().unwrap()))
            .filter(|j| j["state"] == "Succeeded")
            .count();
        if done == jobs.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not all finished ({done} of {}): {page}",
            jobs.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        most, 2,
        "the two cores were used together at some look ({looks} looks)"
    );
    let out = cli(&url, &tenant, &["explain", &big.to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("pending: measured-below-declared (site hami measures less than it declares: cpu 2 of 1536"),
        "{text}"
    );
    assert_eq!(job(&url, &tenant, big)["state"], "Pending");
}

/// `suanwang quota set|show` against a real server: only an admin sets, a bad
/// class is refused naming it, and a tenant with `cpu=4` that submits ten 1-core
/// jobs never has more than 4 booked at once (the server's own scheduler loop).
#[test]
fn a_tenant_with_quota_cpu_4_never_has_more_than_4_cores_booked() {
    let dir = Dir::new("quota");
    let db = dir.db();
    let (admin, tenant) = (
        token(&db, "admin", None),
        token(&db, "tenant", Some("acme")),
    );
    let port = free_port();
    let _server = serve(&db, port);
    let url = format!("http://127.0.0.1:{port}");
    let refused = cli(&url, &tenant, &["quota", "set", "acme", "cpu=4"]);
    assert!(!refused.status.success());
    let bad = cli(&url, &admin, &["quota", "set", "acme", "warp=4"]);
    assert!(!bad.status.success());
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(said.contains("/caps/warp"), "{said}");
    let set = cli(&url, &admin, &["quota", "set", "acme", "cpu=4"]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let shown = cli(&url, &tenant, &["quota", "show", "--json"]);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown[0]["class"], "cpu", "{shown}");
    assert_eq!(shown[0]["units"], 4, "{shown}");

    let ids: Vec<i64> = (0..10).map(|_| submit(&url, &tenant, &["true"])).collect();
    // Every job gets a decision; then the placements are read back.
    let docs: Vec<Value> = ids
        .iter()
        .map(|&id| wait_for(&url, &tenant, id, 30, |j| j["state"] != "Pending"))
        .collect();
    let spans: Vec<(i64, i64)> = docs
        .iter()
        .filter(|d| d["start_at"].is_i64())
        .map(|d| {
            let start = d["start_at"].as_i64().unwrap();
            (start, start + 300)
        })
        .collect();
    assert_eq!(spans.len(), 10, "{docs:?}");
    let peak = spans
        .iter()
        .map(|&(at, _)| spans.iter().filter(|&&(s, e)| s <= at && at < e).count())
        .max()
        .unwrap();
    assert!(peak <= 4, "{peak} cores booked at once: {spans:?}");
    assert_eq!(peak, 4, "the quota is used: {spans:?}");
}

/// Gangs: a site declares two nodes of 4 cores and 8 GiB through its agent's
/// site file (its capacity taken from them); a gang of 2 is placed there and
/// its local agent refuses it, naming the gang and its engine; a gang of 3, or
/// a gang pinned to a site without nodes, is rejected saying why.
#[test]
fn a_gang_reaches_a_site_with_nodes_and_the_local_executor_refuses_it() {
    let dir = Dir::new("gang");
    let db = dir.db();
    let (operator, tenant) = (
        token(&db, "operator", None),
        token(&db, "tenant", Some("acme")),
    );
    let port = free_port();
    let _server = serve(&db, port);
    let url = format!("http://127.0.0.1:{port}");
    let site_file = dir.0.join("rack.toml");
    std::fs::write(
        &site_file,
        r#"[site]
id = "cq-rack"
name = "Chongqing rack"
province = "Chongqing"
hub = "chengdu-chongqing"
location = { lat = 29.56, lon = 106.55 }
jurisdiction = "cn-mainland"
pue = 1.4
nodes = { count = 2, per_node = { cpu = 4, mem_gib = 8 } }
price_cny_per_unit_hour = { cpu = 0.2, mem_gib = 0.02 }
tariff = { base_cny_per_kwh = 0.6 }
carbon = { grid_kg_per_kwh = 0.5, source = "MEE22 Chongqing (assumed)" }
green = { share = 0.1 }
"#,
    )
    .unwrap();
    let data = dir.0.join("a").display().to_string();
    let site_arg = site_file.display().to_string();
    // The agent offers the two nodes' cores whatever this machine has (the
    // scheduler plans with what the agent measures).
    let _agent = agent_with(
        &url,
        &operator,
        "cq-rack",
        &[
            "--executor",
            "local",
            "--data",
            &data,
            "--site-file",
            &site_arg,
            "--capacity",
            "cpu=8",
        ],
    );
    let started = Instant::now();
    let site = loop {
        let out = cli(&url, &tenant, &["sites", "--json"]);
        let sites: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if let Some(site) = sites
            .as_array()
            .and_then(|s| s.iter().find(|s| s["id"] == "cq-rack"))
        {
            break site.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the site did not appear"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(site["site"]["nodes"]["count"], 2, "{site}");
    assert_eq!(site["site"]["capacity"]["cpu"], 8, "{site}");
    assert_eq!(site["site"]["capacity"]["mem_gib"], 16, "{site}");

    let gang = |nodes: &str, site: &str| {
        submit_args(
            &url,
            &tenant,
            &[
                "--gang",
                nodes,
                "--cpus",
                "2",
                "--mem",
                "4",
                "--duration",
                "5m",
                "--site",
                site,
                "--no-delay",
                "--",
                "hostname",
            ],
        )
    };
    let refused = gang("2", "cq-rack");
    let done = wait_for(&url, &tenant, refused, 20, |j| j["state"] == "Failed");
    assert_eq!(done["site"], "cq-rack");
    let out = cli(&url, &tenant, &["explain", &refused.to_string(), "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("a gang of 2 nodes") && text.contains("the local executor"),
        "{text}"
    );

    let too_big = gang("3", "cq-rack");
    let done = wait_for(&url, &tenant, too_big, 20, |j| j["state"] == "Failed");
    let out = cli(&url, &tenant, &["explain", &too_big.to_string(), "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("a gang of 3 nodes, but the largest allowed site has 2 nodes"),
        "{done} {text}"
    );
    let no_nodes = gang("2", "hami");
    wait_for(&url, &tenant, no_nodes, 20, |j| j["state"] == "Failed");
    let out = cli(&url, &tenant, &["explain", &no_nodes.to_string(), "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no allowed site declares nodes"), "{text}");
}

/// Preemption with real processes: a `batch` tenant's preemptible job holds
/// the site's two cores; an `urgent` tenant's job that needs them, with a
/// deadline it cannot meet by waiting, arrives. The batch process gets SIGTERM
/// (its trap writes a file), the urgent job runs, and the batch job is
/// requeued and completes as attempt 2. Both explanations say who preempted
/// whom. A tenant cannot ask a class above its own, and a job of the same
/// class preempts nothing.
#[test]
fn an_urgent_job_preempts_a_batch_job_which_is_requeued_and_completes_as_attempt_2() {
    let dir = Dir::new("preempt");
    let db = dir.db();
    let (admin, batchco, urgentco) = (
        token(&db, "admin", None),
        token(&db, "tenant", Some("batchco")),
        token(&db, "tenant", Some("urgentco")),
    );
    let port = free_port();
    // Network time runs 30 times faster, so that the scheduler's 15-minute
    // slots pass in 30 s; the stop signal comes 2 network seconds before the
    // kill is due.
    let _server = serve_args(&db, port, &["--speed", "30", "--preempt-grace", "2s"]);
    let url = format!("http://127.0.0.1:{port}");
    for (tenant, class) in [("batchco", "batch"), ("urgentco", "urgent")] {
        let set = cli(&url, &admin, &["class", "set", tenant, class]);
        assert!(
            set.status.success(),
            "{}",
            String::from_utf8_lossy(&set.stderr)
        );
    }
    let shown = cli(&url, &urgentco, &["class", "show", "--json"]);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(
        shown,
        serde_json::json!([{"tenant": "urgentco", "class": "urgent"}])
    );
    let data = dir.0.join("agent");
    let (_agent, _log) = agent_with(
        &url,
        &admin,
        "hami",
        &[
            "--executor",
            "local",
            "--data",
            &data.display().to_string(),
            "--capacity",
            "cpu=2",
        ],
    );

    // A batch tenant may not ask for urgent; a preemptible job must be restartable.
    let refused = cli(
        &url,
        &batchco,
        &[
            "submit",
            "--cpus",
            "1",
            "--duration",
            "1m",
            "--class",
            "urgent",
            "--",
            "true",
        ],
    );
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("above tenant batchco's class batch"),
        "{said}"
    );

    let mark = dir.0.join("mark");
    let mark = mark.display();
    let script = format!(
        "if [ -f {mark}.first ]; then echo second run; exit 0; fi; \
         trap 'echo TERM > {mark}.term; exit 143' TERM; touch {mark}.first; sleep 600 & wait"
    );
    let batch = submit_args(
        &url,
        &batchco,
        &[
            "--cpus",
            "2",
            "--duration",
            "1h",
            "--site",
            "hami",
            "--no-delay",
            "--preemptible",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    wait_for(&url, &batchco, batch, 60, |j| j["state"] == "Running");
    let first = dir.0.join("mark.first");
    let started = Instant::now();
    while !first.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the batch job never started its script"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Another batch job (same class) cannot stop it: it waits.
    let peer = submit_args(
        &url,
        &batchco,
        &[
            "--cpus",
            "2",
            "--duration",
            "1m",
            "--deadline",
            "10m",
            "--site",
            "hami",
            "--no-delay",
            "--",
            "true",
        ],
    );
    wait_for(&url, &batchco, peer, 30, |j| {
        j["state"] != "Pending" || j["wait"].is_object()
    });
    let still = job(&url, &batchco, batch);
    assert_eq!(
        (&still["state"], &still["attempt"]),
        (&Value::from("Running"), &Value::from(1)),
        "an equal class preempted: {still}"
    );
    let cancelled = cli(&url, &batchco, &["cancel", &peer.to_string()]);
    assert!(cancelled.status.success());

    let urgent = submit_args(
        &url,
        &urgentco,
        &[
            "--cpus",
            "2",
            "--duration",
            "1m",
            "--deadline",
            "10m",
            "--site",
            "hami",
            "--no-delay",
            "--",
            "sh",
            "-c",
            "echo urgent done",
        ],
    );
    let done = wait_for(&url, &urgentco, urgent, 60, |j| j["state"] == "Succeeded");
    assert_eq!(done["attempt"], 1, "{done}");
    assert!(
        dir.0.join("mark.term").exists(),
        "the batch process got no SIGTERM"
    );

    let batch_done = wait_for(&url, &batchco, batch, 90, |j| j["state"] == "Succeeded");
    assert_eq!(batch_done["attempt"], 2, "{batch_done}");

    // Both explanations say who preempted whom, and the work lost.
    let explain = |token: &str, id: i64| -> Value {
        let out = cli(&url, token, &["explain", &id.to_string(), "--json"]);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let victim = explain(&batchco, batch);
    let p = &victim["preemptions"][0];
    assert_eq!(p["job"], batch, "{victim}");
    assert_eq!(p["by_job"], urgent, "{victim}");
    assert_eq!(p["class"], "batch");
    assert_eq!(p["by_class"], "urgent");
    assert_eq!(p["attempt"], 1);
    assert!(p["ran_secs"].as_i64().unwrap() > 0, "{p}");
    let preempted = victim["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["outcome"] == "preempted")
        .unwrap_or_else(|| panic!("no preempted decision: {victim}"));
    assert!(
        preempted["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("for job {urgent} (urgent)"))
    );
    let winner = explain(&urgentco, urgent);
    let placed = winner["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["outcome"] == "placed")
        .unwrap_or_else(|| panic!("not placed: {winner}"));
    assert_eq!(placed["preempts"][0]["job"], batch, "{winner}");
    let text = cli(&url, &urgentco, &["explain", &urgent.to_string()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("preempts: job {batch} (batch, attempt 1) at hami")),
        "{text}"
    );

    // The metrics count the preemption and the work lost.
    let metrics = reqwest::blocking::get(format!("{url}/metrics"))
        .and_then(|r| r.text())
        .unwrap();
    assert!(
        metrics.contains("suanwang_preemptions_total 1"),
        "{metrics}"
    );
}
