//! `suanwang loadgen`: the project's own load generator for the submit path. N
//! concurrent clients submit small jobs (each with its own idempotency key, so every
//! request is a durable insert) for a fixed time, on one connection each, and the
//! command reports acknowledged submits per second and latency percentiles.

use anyhow::Context;
use clap::Args;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// Control plane URL.
    #[arg(long, env = "SUANWANG_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Tenant token.
    #[arg(long, env = "SUANWANG_TOKEN", hide_env_values = true)]
    token: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How long to submit, seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

pub fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let run_id = std::process::id();
        let mut tasks = Vec::new();
        for c in 0..args.concurrency {
            let (url, token) = (format!("{}/v1/jobs", args.url.trim_end_matches('/')), args.token.clone());
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("client");
                let body = serde_json::json!({"demand": [{"class": "cpu", "count": 1}], "duration": "1h"});
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let resp = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("Idempotency-Key", format!("load-{run_id}-{c}-{i}"))
                        .json(&body)
                        .send()
                        .await;
                    i += 1;
                    match resp {
                        Ok(r) if r.status().is_success() => latencies.push(started.elapsed().as_micros() as u64),
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            }));
        }
        let started = Instant::now();
        let mut latencies = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await.context("a client task failed")?;
            latencies.extend(l);
            errors += e;
        }
        let elapsed = started.elapsed().as_secs_f64().max(args.seconds as f64);
        latencies.sort_unstable();
        let pct = |p: f64| latencies.get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1))).copied().unwrap_or(0);
        println!(
            "{} acknowledged submits in {:.1} s: {:.0}/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} errors; {} clients",
            latencies.len(),
            elapsed,
            latencies.len() as f64 / elapsed,
            pct(0.50) as f64 / 1000.0,
            pct(0.99) as f64 / 1000.0,
            latencies.last().copied().unwrap_or(0) as f64 / 1000.0,
            errors,
            args.concurrency
        );
        Ok(())
    })
}
