//! `suanwang demo` as a real process: the control plane, simulated agents over
//! real HTTP and a job stream; jobs run to completion, every site's agent is
//! live, and a second run carries on from the first's data directory.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_suanwang")
}

fn cli(url: &str, token: &str, args: &[&str]) -> Value {
    let out = Command::new(bin())
        .args(args)
        .env("SUANWANG_URL", url)
        .env("SUANWANG_TOKEN", token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs a demo for `secs` wall seconds; returns its stdout lines, URL and admin
/// token, after calling `during` while it runs.
fn demo(
    data: &std::path::Path,
    extra: &[&str],
    secs: u64,
    during: impl FnOnce(&str, &str),
) -> Vec<String> {
    let secs_arg = format!("{secs}s");
    let mut args = vec![
        "demo",
        "--listen",
        "127.0.0.1:0",
        "--data",
        data.to_str().unwrap(),
        "--speed",
        "900",
        "--rate",
        "240",
        "--for",
        &secs_arg,
    ];
    args.extend(extra);
    let mut child = Command::new(bin())
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let (mut url, mut admin) = (None, None);
    while url.is_none() || admin.is_none() {
        let line = lines
            .next()
            .expect("demo ended before printing its URL and token")
            .unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["URL", u] => url = Some(u.to_string()),
            ["admin", "token", t] => admin = Some(t.to_string()),
            _ => {}
        }
        seen.push(line);
    }
    let (url, admin) = (url.unwrap(), admin.unwrap());
    during(&url, &admin);
    seen.extend(lines.map(Result::unwrap));
    let status = child.wait().unwrap();
    assert!(status.success(), "demo exited with {status}: {seen:#?}");
    seen
}

fn count(line: &str, what: &str) -> u64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0] == what)
        .map_or(0, |w| w[1].parse().unwrap())
}

#[test]
fn the_demo_runs_jobs_through_live_agents_and_resumes() {
    let data = std::env::temp_dir().join(format!("suanwang-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let sites = suanwang_topology::builtin("cn-west").unwrap().sites.len();
    let first = demo(
        &data,
        &["--reset", "--real-site", "hami"],
        16,
        |url, admin| {
            let started = Instant::now();
            // Every site's agent registers and stays live.
            loop {
                let overview = cli(url, admin, &["top", "--once", "--json"]);
                let live = overview["sites"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| s["reachable"] == true)
                    .count();
                if live == sites {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(8),
                    "only {live} of {sites} sites live: {overview}"
                );
                std::thread::sleep(Duration::from_millis(300));
            }
            // Jobs are placed, run by the agents and succeed, with their exit code.
            loop {
                let done = cli(url, admin, &["jobs", "--state", "Succeeded", "--json"]);
                if let Some(job) = done["jobs"].as_array().unwrap().first() {
                    assert_eq!(job["exit_code"], 0);
                    assert!(
                        job["site"].is_string()
                            && job["started_at"].is_i64()
                            && job["finished_at"].is_i64(),
                        "{job}"
                    );
                    assert_eq!(job["attempt"], 1);
                    let why = cli(url, admin, &["explain", &job["id"].to_string(), "--json"]);
                    assert_eq!(why["decisions"][0]["outcome"], "placed", "{why}");
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(12),
                    "no job succeeded in time"
                );
                std::thread::sleep(Duration::from_millis(300));
            }
            // Hami's jobs run as real processes, and their output comes back.
            loop {
                let done = cli(
                    url,
                    admin,
                    &["jobs", "--site", "hami", "--state", "Succeeded", "--json"],
                );
                if let Some(job) = done["jobs"].as_array().unwrap().first() {
                    let logs = cli(url, admin, &["logs", &job["id"].to_string(), "--json"]);
                    let tail = logs["tail"].as_str().unwrap();
                    assert!(
                        tail.contains("suanwang demo job") && tail.contains("done"),
                        "{logs}"
                    );
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(14),
                    "no job ran for real at hami in time"
                );
                std::thread::sleep(Duration::from_millis(300));
            }
        },
    );
    let last = first.last().unwrap();
    assert!(last.contains("demo stopped"), "{first:#?}");
    let summary = &first[first.len() - 2];
    let succeeded = count(summary, "succeeded");
    assert!(
        count(summary, "submitted") > 20 && succeeded > 0,
        "{summary}"
    );
    assert!(data.join("suanwang.db").exists() && data.join("admin.token").exists());

    // Again on the same data: the jobs of the first run are still there.
    let second = demo(&data, &[], 3, |_, _| {});
    let summary = &second[second.len() - 2];
    assert!(
        count(summary, "succeeded") >= succeeded,
        "{summary} after {succeeded}"
    );
    // --reset starts afresh.
    let third = demo(&data, &["--reset"], 2, |_, _| {});
    let summary = &third[third.len() - 2];
    assert!(count(summary, "succeeded") < succeeded, "{summary}");
    let _ = std::fs::remove_dir_all(&data);
}
