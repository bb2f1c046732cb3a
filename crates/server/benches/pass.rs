//! The scheduler's pass, idle and busy, over a real SQLite database with agents
//! that heartbeat telemetry (docs/BENCHMARKS.md, "The scheduler's pass").
//!
//! `cargo bench -p suanwang-server --bench pass -- MODE PASSES [AGENTS]`:
//! `idle` runs PASSES passes with nothing pending; `busy` submits 100 one-core
//! jobs before each pass (outside the timing) and places them; `parse` times
//! the capacity rule's parsing of every agent without its cache. Prints the
//! median and spread of the passes' wall times. For instruction counts, run it
//! under callgrind with PASSES = 0 and PASSES = N and divide the difference by N.

use std::time::Instant;
use suanwang_server::scheduler::Scheduler;
use suanwang_store::{Actor, AgentRecord, NewJob, SqliteStore, Store};

/// About a real agent's sample (see crates/cli/src/loadgen.rs `sample`).
const TELEMETRY: &str = r#"{"source":"host","executor":"local","running_jobs":3,"busy":{"cpu":40},"capacity":{"cpu":64,"mem_gib":512},"cpu":{"cores":64,"utilisation":0.41,"load_1m":12.5},"memory":{"total_gib":512.0,"used_gib":201.5,"utilisation":0.39},"power":{"watts":5230.0,"source":"estimated","model":"idle 0 W + 10 W per busy core"}}"#;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mode = args.first().map_or("idle", String::as_str).to_string();
    let passes: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let agents: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let dir = std::env::temp_dir().join(format!("suanwang-bench-pass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::connect(&format!("sqlite://{}", dir.join("db.sqlite").display()))
            .await
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let topology = suanwang_topology::builtin("cn-west").unwrap();
        let sites: Vec<String> = topology.sites.iter().map(|s| s.id.0.clone()).collect();
        for i in 0..agents {
            let site = &sites[i % sites.len()];
            let id = format!("ag_{i:04}");
            store
                .register_agent(&Actor::system(), &AgentRecord {
                    id: id.clone(),
                    site: site.clone(),
                    info: format!(
                        r#"{{"site":"{site}","executor":"local","capacity":{{"cpu":64,"mem_gib":512}}}}"#
                    ),
                    registered_at: now,
                    last_seen: now,
                    telemetry: None,
                })
                .await
                .unwrap();
            store
                .heartbeat(&id, Some(TELEMETRY), &[], now + 30, now)
                .await
                .unwrap();
        }
        let tenant = store.tenant("bench", now).await.unwrap();
        let spec = r#"{"demand":[{"class":"cpu","count":1}],"duration":"1h","command":["true"]}"#;
        let spec: suanwang_api::JobSubmission = serde_json::from_str(spec).unwrap();
        let spec = serde_json::to_string(&spec).unwrap();
        if mode == "parse" {
            // What the pass's capacity rule costs without its cache: every
            // agent's registration and latest sample parsed, PASSES times.
            let records = store.agents().await.unwrap();
            let began = Instant::now();
            for _ in 0..passes {
                std::hint::black_box(suanwang_server::capacity::measure(&records, now, 30, None));
            }
            println!(
                "parse: {passes} rounds, {agents} agents; µs per round: {:.1}",
                began.elapsed().as_secs_f64() * 1e6 / passes.max(1) as f64
            );
            return;
        }
        let scheduler = Scheduler::new(topology, now).with_lease_secs(30);
        // One pass first, so that what is measured is the steady state.
        scheduler.pass(&store, now).await.unwrap();
        let mut times = Vec::with_capacity(passes);
        let mut placed = 0;
        for _ in 0..passes {
            if mode == "busy" {
                let jobs: Vec<NewJob> = (0..100)
                    .map(|_| NewJob {
                        tenant_id: tenant.id,
                        actor: Actor::system(),
                        idempotency_key: None,
                        spec: spec.clone(),
                    })
                    .collect();
                store.submit_many(&jobs, now).await.unwrap();
            }
            let began = Instant::now();
            let report = scheduler.pass(&store, now).await.unwrap();
            times.push(began.elapsed().as_secs_f64() * 1000.0);
            placed += report.placed;
        }
        times.sort_by(f64::total_cmp);
        if !times.is_empty() {
            println!(
                "{mode}: {passes} passes, {agents} agents, {placed} placed; ms per pass: median {:.3}, min {:.3}, max {:.3}",
                times[times.len() / 2],
                times[0],
                times[times.len() - 1]
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}
