//! `suanwang loadgen`: the project's own load generator.
//!
//! - `--mode submit` (default): N concurrent clients submit small jobs (each with its
//!   own idempotency key, so every request is a durable insert) for a fixed time, on
//!   one connection each; reports acknowledged submits per second and latency
//!   percentiles.
//! - `--mode agents`: N simulated agents (operator token) register across the
//!   topology's sites and heartbeat with a realistic telemetry sample every
//!   `--every`, each followed by a lease call, as a real agent does; reports the
//!   heartbeat latency percentiles.
//! - `--mode start`: submits `--jobs` jobs pinned to `--site` (tenant token) whose
//!   command prints the time it started (`date +%s%N`), one every 200 ms, waits for
//!   them, reads their output back, and reports the time from submit to process
//!   start. Needs a real agent at that site (`suanwang agent --executor local`).

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use std::time::{Duration, Instant};
use suanwang_client::api::agents::{CpuSample, MemorySample, PowerSample};
use suanwang_client::api::{
    DemandIn, DurationValue, Heartbeat, JobSubmission, LeaseRequest, Registration, Telemetry,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Durable submits per second.
    Submit,
    /// Many agents heartbeating.
    Agents,
    /// Time from submit to process start on a real agent.
    Start,
}

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
    /// How long to run, seconds (submit and agents modes).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// What to load.
    #[arg(long, value_enum, default_value = "submit")]
    mode: Mode,
    /// Simulated agents (agents mode).
    #[arg(long, default_value_t = 500)]
    agents: usize,
    /// Heartbeat interval of each agent (agents mode), e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = crate::wall_duration)]
    every: Duration,
    /// Jobs to time (start mode).
    #[arg(long, default_value_t = 50)]
    jobs: usize,
    /// Site whose agent runs them (start mode).
    #[arg(long, default_value = "hami")]
    site: String,
}

fn percentiles(mut micros: Vec<u64>) -> (usize, f64, f64, f64) {
    micros.sort_unstable();
    let pct = |p: f64| {
        micros
            .get(((micros.len() as f64 * p) as usize).min(micros.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    (
        micros.len(),
        pct(0.5),
        pct(0.99),
        micros.last().copied().unwrap_or(0) as f64 / 1000.0,
    )
}

/// Agents mode: register, then heartbeat and lease on a fixed period, staggered.
async fn agents(args: &LoadgenArgs) -> anyhow::Result<()> {
    let client = suanwang_client::Client::new(&args.url, Some(args.token.clone()))
        .with_timeout(Duration::from_secs(30));
    let sites: Vec<String> = client.sites().await?.into_iter().map(|s| s.id).collect();
    if sites.is_empty() {
        bail!("the control plane has no sites");
    }
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for i in 0..args.agents {
        let client = client.clone();
        let site = sites[i % sites.len()].clone();
        let every = args.every;
        let offset = every.mul_f64(i as f64 / args.agents as f64);
        tasks.push(tokio::spawn(async move {
            let registration = Registration {
                site,
                executor: "loadgen".into(),
                capacity: [("cpu".to_string(), 64)].into(),
                version: None,
                hostname: None,
                probes: Vec::new(),
                resume: Vec::new(),
            };
            let id = match client.register_agent(&registration).await {
                Ok(r) => r.agent_id,
                Err(_) => return (Vec::new(), 1u64),
            };
            tokio::time::sleep(offset).await;
            let mut ticker = tokio::time::interval(every);
            let (mut latencies, mut errors) = (Vec::new(), 0u64);
            let mut n = 0u64;
            while Instant::now() < deadline {
                ticker.tick().await;
                n += 1;
                // About the size of a real agent's sample (see crates/agent/src/telemetry.rs).
                let beat = Heartbeat {
                    telemetry: Some(sample(n)),
                    held: Vec::new(),
                };
                let started = Instant::now();
                match client.heartbeat(&id, &beat).await {
                    Ok(_) => latencies.push(started.elapsed().as_micros() as u64),
                    Err(_) => errors += 1,
                }
                let lease = LeaseRequest {
                    max: 64,
                    wait_ms: 0,
                };
                if client.lease(&id, &lease).await.is_err() {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await.context("an agent task failed")?;
        latencies.extend(l);
        errors += e;
    }
    let (n, p50, p99, max) = percentiles(latencies);
    println!(
        "{} agents, one heartbeat + lease each every {:?} for {} s: {n} heartbeats ({:.0}/s); latency p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms; {errors} errors",
        args.agents,
        args.every,
        args.seconds,
        n as f64 / args.seconds as f64
    );
    Ok(())
}

/// Start mode: time from submit to the process's first instruction.
async fn start_latency(args: &LoadgenArgs) -> anyhow::Result<()> {
    let client = suanwang_client::Client::new(&args.url, Some(args.token.clone()))
        .with_timeout(Duration::from_secs(30));
    let wall_ns = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128)
    };
    let mut submitted = Vec::new();
    for _ in 0..args.jobs {
        let mut job = one_core(DurationValue::Text("5m".into()));
        job.site = Some(args.site.clone());
        job.delayable = false;
        job.command = vec!["date".into(), "+%s%N".into()];
        let at = wall_ns();
        let submitted_job = client.submit(&job, None).await?;
        submitted.push((submitted_job.job.id, at));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut latencies = Vec::new();
    let give_up = Instant::now() + Duration::from_secs(120);
    for (id, at) in submitted {
        loop {
            let logs = client.logs(id).await?;
            if logs.complete {
                let started: i128 = logs
                    .tail
                    .trim()
                    .parse()
                    .with_context(|| format!("job {id} printed {:?}", logs.tail))?;
                latencies.push(((started - at) / 1000).max(0) as u64);
                break;
            }
            if Instant::now() > give_up {
                bail!(
                    "job {id} did not finish in time: is an agent running at site {}?",
                    args.site
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let (n, p50, p99, max) = percentiles(latencies);
    println!(
        "{n} jobs at site {}: submit to process start p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
        args.site
    );
    Ok(())
}

/// A job holding one core for `duration`.
fn one_core(duration: DurationValue) -> JobSubmission {
    let demand = vec![DemandIn {
        class: "cpu".into(),
        count: 1,
    }];
    JobSubmission::new(demand, duration)
}

/// A telemetry sample about the size of a real agent's.
fn sample(n: u64) -> Telemetry {
    Telemetry {
        source: "host".into(),
        executor: Some("loadgen".into()),
        running_jobs: Some(n % 7),
        cpu: Some(CpuSample {
            cores: 64,
            utilisation: (n % 100) as f64 / 100.0,
            load_1m: 12.5,
        }),
        memory: Some(MemorySample {
            total_gib: 512.0,
            used_gib: 201.5,
            utilisation: 0.39,
        }),
        power: Some(PowerSample {
            watts: 5230.0,
            source: "estimated".into(),
            model: Some("idle 0 W + 10 W per busy core".into()),
            parts: Default::default(),
        }),
        busy: [("cpu".to_string(), 40)].into(),
        capacity: [("cpu".to_string(), 64), ("mem_gib".to_string(), 512)].into(),
        ..Telemetry::default()
    }
}

pub fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.mode {
        Mode::Agents => return runtime.block_on(agents(&args)),
        Mode::Start => return runtime.block_on(start_latency(&args)),
        Mode::Submit => {}
    }
    runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let run_id = std::process::id();
        let mut tasks = Vec::new();
        for c in 0..args.concurrency {
            let (url, token) = (format!("{}/v1/jobs", args.url.trim_end_matches('/')), args.token.clone());
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("client");
                let body = one_core(DurationValue::Text("1h".into()));
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
