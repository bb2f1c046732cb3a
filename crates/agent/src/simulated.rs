//! A simulated executor, for the demo and for tests of the protocol: it "runs" a
//! job by waiting for part of its declared run time (scaled by the network
//! clock's speed) and then finishing it, now and then with a failure. Real jobs
//! seldom use their whole limit, so the run takes 35–100% of it, drawn per job.

use crate::{Assignment, Event, Executor};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;
use suanwang_api::{DurationValue, JobSubmission, Telemetry};
use suanwang_model::SimDuration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A job being "run": the task that will finish it and the units it holds.
type Run = (JoinHandle<()>, BTreeMap<String, u64>);

/// The simulated engine of one site.
#[derive(Debug)]
pub struct Simulated {
    capacity: BTreeMap<String, u64>,
    speed: f64,
    failure_rate: f64,
    seed: u64,
    running: Mutex<HashMap<i64, Run>>,
}

impl Simulated {
    /// A site offering `capacity`, on a network clock `speed` times the wall
    /// clock; a share `failure_rate` of jobs fail.
    pub fn new(capacity: BTreeMap<String, u64>, speed: f64, failure_rate: f64, seed: u64) -> Self {
        Simulated {
            capacity,
            speed: speed.max(1e-6),
            failure_rate,
            seed,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.running.lock().map_or(0, |r| r.len())
    }
}

/// A uniform draw in [0, 1) from a seed and a job id (SplitMix64).
fn draw(seed: u64, job: i64, tag: u64) -> f64 {
    let mut x = seed ^ (job as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ tag.rotate_left(17);
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The declared run time of a job spec, seconds.
pub fn declared_secs(spec: &JobSubmission) -> Result<i64, String> {
    match &spec.duration {
        DurationValue::Seconds(s) => Ok(*s),
        DurationValue::Text(t) => SimDuration::parse(t).map(|d| d.0),
    }
}

/// Units the job holds, per class.
pub fn demand(spec: &JobSubmission) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for d in &spec.demand {
        *out.entry(d.class.to_lowercase()).or_insert(0) += d.count.max(0) as u64;
    }
    out
}

impl Executor for Simulated {
    fn kind(&self) -> &'static str {
        "simulated"
    }

    fn capacity(&self) -> BTreeMap<String, u64> {
        self.capacity.clone()
    }

    async fn start(
        &self,
        job: &Assignment,
        events: mpsc::UnboundedSender<Event>,
    ) -> Result<(), String> {
        let declared = declared_secs(&job.spec)?;
        let share = 0.35 + 0.65 * draw(self.seed, job.job, 1);
        let fails = draw(self.seed, job.job, 2) < self.failure_rate;
        let run = Duration::from_secs_f64(declared as f64 * share / self.speed);
        let id = job.job;
        let _ = events.send(Event::Started(id));
        let handle = tokio::spawn(async move {
            tokio::time::sleep(run).await;
            let _ = events.send(Event::Finished {
                job: id,
                exit_code: if fails { 1 } else { 0 },
                message: fails.then(|| {
                    format!(
                        "simulated failure after {:.0}% of the declared run time",
                        share * 100.0
                    )
                }),
            });
        });
        if let Ok(mut running) = self.running.lock() {
            running.retain(|_, (h, _)| !h.is_finished());
            running.insert(id, (handle, demand(&job.spec)));
        }
        Ok(())
    }

    async fn stop(&self, job: i64) {
        if let Some((handle, _)) = self.running.lock().ok().and_then(|mut r| r.remove(&job)) {
            handle.abort();
        }
    }

    async fn log_tail(&self, _job: i64, _max: usize) -> Option<String> {
        None
    }

    async fn telemetry(&self) -> Telemetry {
        let mut busy: BTreeMap<String, u64> = BTreeMap::new();
        let mut jobs = 0;
        if let Ok(mut running) = self.running.lock() {
            running.retain(|_, (h, _)| !h.is_finished());
            jobs = running.len();
            for (_, need) in running.values() {
                for (class, units) in need {
                    *busy.entry(class.clone()).or_insert(0) += units;
                }
            }
        }
        let utilisation: BTreeMap<String, f64> = self
            .capacity
            .iter()
            .map(|(class, cap)| {
                let used = busy.get(class).copied().unwrap_or(0);
                (
                    class.clone(),
                    if *cap == 0 {
                        0.0
                    } else {
                        used as f64 / *cap as f64
                    },
                )
            })
            .collect();
        Telemetry {
            source: "simulated".into(),
            running_jobs: Some(jobs as u64),
            busy,
            capacity: self.capacity.clone(),
            utilisation,
            ..Telemetry::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job holding `cores` for `duration`.
    fn spec(cores: i64, duration: DurationValue) -> JobSubmission {
        let demand = vec![suanwang_api::DemandIn {
            class: "cpu".into(),
            count: cores,
        }];
        JobSubmission::new(demand, duration)
    }

    #[tokio::test]
    async fn a_simulated_job_starts_runs_part_of_its_time_and_finishes() {
        let sim = Simulated::new(BTreeMap::from([("cpu".into(), 64)]), 3600.0 * 100.0, 0.0, 7);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let job = Assignment {
            tenant: None,
            job: 5,
            token: 1,
            spec: spec(8, DurationValue::Text("1h".into())),
        };
        sim.start(&job, tx).await.unwrap();
        assert_eq!(rx.recv().await, Some(Event::Started(5)));
        let t = sim.telemetry().await;
        assert_eq!(t.busy["cpu"], 8);
        assert_eq!(t.utilisation["cpu"], 0.125);
        let started = std::time::Instant::now();
        match rx.recv().await {
            Some(Event::Finished {
                job: 5,
                exit_code: 0,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // An hour at 360,000× is 10 ms; the run takes 35–100% of it.
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(sim.telemetry().await.running_jobs, Some(0));
    }

    #[tokio::test]
    async fn a_stopped_job_never_finishes() {
        let sim = Simulated::new(BTreeMap::new(), 1.0, 0.0, 7);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let job = Assignment {
            tenant: None,
            job: 9,
            token: 1,
            spec: spec(1, DurationValue::Seconds(3600)),
        };
        sim.start(&job, tx).await.unwrap();
        assert_eq!(rx.recv().await, Some(Event::Started(9)));
        sim.stop(9).await;
        assert_eq!(sim.running(), 0);
        assert!(rx.recv().await.is_none(), "the sender went with the task");
        let bad = Assignment {
            tenant: None,
            job: 10,
            token: 1,
            spec: spec(1, DurationValue::Text("soon".into())),
        };
        let (tx, _rx) = mpsc::unbounded_channel();
        assert!(sim.start(&bad, tx).await.is_err());
    }
}
