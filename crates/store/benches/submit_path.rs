//! The store's submit path on a fresh SQLite file. Each round submits a batch of 64
//! jobs in one transaction (`submit_many`, as the server's group commit does; half
//! of them with idempotency keys), places them (`decide_many`), hands them to an
//! agent (`lease`), renews their leases (`heartbeat`) and reports each one finished
//! (`report`).
//!
//! `cargo bench -p suanwang-store --bench submit_path -- [ROUNDS]` (default 300)
//! prints, per call of each operation, the CPU time of the whole process
//! (`CLOCK_PROCESS_CPUTIME_ID`: SQLite runs on sqlx's worker thread) and the wall
//! time. For a count of instructions, run the built binary under
//! `valgrind --tool=callgrind` with two round counts: the difference of the totals
//! divided by the difference of the rounds is the cost of one round, without the
//! start-up and the migrations. `--until OP` stops each round after operation OP
//! (`submit_many`, `decide_many`, `lease`, `heartbeat`): the differences between
//! the costs of a round until one operation and until the next are the costs of
//! each operation alone.

use nix::time::{ClockId, clock_gettime};
use std::time::{Duration, Instant};
use suanwang_store::{Actor, JobState, NewJob, SqliteStore, Store, Transition};

/// Jobs per round: a typical group-commit batch under load.
const BATCH: usize = 64;

/// The operations measured, in the order each round calls them.
const OPS: [&str; 5] = ["submit_many", "decide_many", "lease", "heartbeat", "report"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; the round count is the first number given.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: u32 = args.iter().find_map(|arg| arg.parse().ok()).unwrap_or(300);
    let until = match args.iter().position(|arg| arg == "--until") {
        Some(at) => {
            let name = args.get(at + 1).map(String::as_str).unwrap_or_default();
            OPS.iter()
                .position(|op| *op == name)
                .ok_or_else(|| format!("--until takes one of {OPS:?}"))?
        }
        None => OPS.len() - 1,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(rounds, until))
}

/// CPU time and wall time spent in one operation.
#[derive(Default, Clone, Copy)]
struct Spent {
    cpu: Duration,
    wall: Duration,
    calls: u64,
}

/// CPU time of the whole process so far, every thread included.
fn cpu_time() -> Duration {
    match clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID) {
        Ok(now) => Duration::from(now),
        Err(_) => Duration::ZERO,
    }
}

/// Runs `work`, adding its CPU and wall time to `spent`.
async fn timed<T>(spent: &mut Spent, work: impl Future<Output = T>) -> T {
    let (cpu, wall) = (cpu_time(), Instant::now());
    let out = work.await;
    spent.wall += wall.elapsed();
    spent.cpu += cpu_time().saturating_sub(cpu);
    spent.calls += 1;
    out
}

async fn run(rounds: u32, until: usize) -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("suanwang-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store =
        SqliteStore::connect(&format!("sqlite://{}", dir.join("bench.db").display())).await?;
    let tenant = store.tenant("bench", 0).await?;
    store
        .register_agent(
            &Actor::system(),
            &suanwang_store::AgentRecord {
                id: "agent-1".into(),
                site: "site-1".into(),
                info: "{}".into(),
                registered_at: 0,
                last_seen: 0,
                telemetry: None,
            },
        )
        .await?;
    let spec = r#"{"name":"train","image":"pytorch:2","demand":[{"class":"h100","units":8}],"duration_s":3600}"#;
    let mut spent = [Spent::default(); OPS.len()];
    let system = Actor::system();
    let started = Instant::now();
    for round in 0..rounds {
        let now = i64::from(round) * 10 + 1;
        let jobs: Vec<NewJob> = (0..BATCH)
            .map(|i| NewJob {
                actor: Actor::system(),
                tenant_id: tenant.id,
                idempotency_key: (i % 2 == 0).then(|| format!("key-{round}-{i}")),
                spec: spec.to_string(),
            })
            .collect();
        let submitted = timed(&mut spent[0], store.submit_many(&jobs, now)).await?;
        if until < 1 {
            continue;
        }
        let decisions: Vec<(i64, Transition, String)> = submitted
            .iter()
            .map(|(job, _)| {
                let place = Transition {
                    from: JobState::Pending,
                    to: JobState::Placed,
                    site: Some("site-1".into()),
                    start_at: Some(now),
                    exit_code: None,
                };
                let body = r#"{"outcome":"placed","site":"site-1","reason":"cheapest"}"#;
                (job.id, place, body.to_string())
            })
            .collect();
        let placed = timed(
            &mut spent[1],
            store.decide_many(&Actor::scheduler(), &decisions, now),
        )
        .await?;
        assert!(placed.iter().all(|done| *done), "every job is placed");
        if until < 2 {
            continue;
        }
        let leased = timed(
            &mut spent[2],
            store.lease(&system, "agent-1", "site-1", BATCH as u32, now + 60, now),
        )
        .await?;
        assert_eq!(leased.len(), BATCH, "every placed job is leased");
        if until < 3 {
            continue;
        }
        let held: Vec<(i64, i64)> = leased.iter().map(|j| (j.id, j.lease_token)).collect();
        let telemetry = r#"{"gpus_busy":8,"power_w":5600}"#;
        timed(
            &mut spent[3],
            store.heartbeat("agent-1", Some(telemetry), &held, now + 120, now),
        )
        .await?;
        if until < 4 {
            continue;
        }
        for (job, token) in held {
            let report = store.report(
                &system,
                "agent-1",
                job,
                token,
                JobState::Succeeded,
                Some(0),
                now,
            );
            timed(&mut spent[4], report).await?;
        }
    }
    let elapsed = started.elapsed();
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);

    println!("{rounds} rounds of {BATCH} jobs in {elapsed:.2?}");
    println!(
        "{:<12} {:>7} {:>14} {:>14}",
        "operation", "calls", "cpu µs/call", "wall µs/call"
    );
    for (name, spent) in OPS.iter().zip(spent).filter(|(_, spent)| spent.calls > 0) {
        let calls = spent.calls.max(1) as f64;
        println!(
            "{:<12} {:>7} {:>14.1} {:>14.1}",
            name,
            spent.calls,
            spent.cpu.as_secs_f64() * 1e6 / calls,
            spent.wall.as_secs_f64() * 1e6 / calls,
        );
    }
    Ok(())
}
