//! The local executor: runs each job's command as a process of its own process
//! group on this host, with the job's environment and working directory, under its
//! time limit (its declared run time), with stdout and stderr captured to a file.
//! Stopping a job signals the whole group (SIGTERM, then SIGKILL after a grace
//! period). Each running job leaves a pid file in the state directory, so that an
//! agent restarted after a crash kills what its predecessor left running: those
//! jobs' leases are gone, and the control plane runs them again elsewhere.

use crate::{Assignment, Event, Executor};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;
use suanwang_api::Telemetry;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Time between SIGTERM and SIGKILL when a job is stopped or overruns.
pub const GRACE: Duration = Duration::from_secs(5);

/// Exit code reported for a job killed at its time limit (as `timeout(1)` does).
pub const TIMED_OUT: i32 = 124;

struct Running {
    pgid: i32,
    monitor: JoinHandle<()>,
    dir: PathBuf,
    need: BTreeMap<String, u64>,
}

/// Runs jobs as local processes.
pub struct Local {
    root: PathBuf,
    capacity: BTreeMap<String, u64>,
    running: Mutex<HashMap<i64, Running>>,
    dirs: Mutex<HashMap<i64, PathBuf>>,
    host: std::sync::Arc<Mutex<crate::telemetry::HostTelemetry>>,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("root", &self.root)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

fn signal_group(pgid: i32, signal: Signal) {
    // ESRCH: the group is gone already.
    let _ = killpg(Pid::from_raw(pgid), signal);
}

impl Local {
    /// An executor keeping its state (job directories, outputs, pid files) under
    /// `root`, offering the host's CPUs, memory and GPUs as measured, with the
    /// classes `overrides` names replaced by its figures. Kills
    /// any process group a previous agent left running there; returns how many.
    pub fn new(
        root: &Path,
        overrides: Option<BTreeMap<String, u64>>,
    ) -> std::io::Result<(Local, usize)> {
        let jobs = root.join("jobs");
        std::fs::create_dir_all(&jobs)?;
        let mut reaped = 0;
        for entry in std::fs::read_dir(&jobs)? {
            let pid_file = entry?.path().join("pid");
            let Ok(text) = std::fs::read_to_string(&pid_file) else {
                continue;
            };
            if let Ok(pgid) = text.trim().parse::<i32>()
                && pgid > 1
            {
                tracing::warn!(pgid, file = %pid_file.display(), "killing a job left by an earlier agent");
                signal_group(pgid, Signal::SIGKILL);
                reaped += 1;
            }
            let _ = std::fs::remove_file(&pid_file);
        }
        let host = crate::telemetry::HostTelemetry::new();
        let capacity = crate::override_classes(host.capacity(), &overrides.unwrap_or_default());
        Ok((
            Local {
                root: root.to_path_buf(),
                capacity,
                running: Mutex::new(HashMap::new()),
                dirs: Mutex::new(HashMap::new()),
                host: std::sync::Arc::new(Mutex::new(host)),
            },
            reaped,
        ))
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.running.lock().map_or(0, |r| r.len())
    }
}

/// The tail of a file: its last `max` bytes (read from there, not from the
/// start), from a character boundary; `None` if it cannot be read. Shared by the
/// executors that keep a job's output in a file.
pub fn tail(path: &Path, max: usize) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let from = len.saturating_sub(max as u64);
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut bytes = Vec::with_capacity((len - from) as usize);
    file.take(max as u64).read_to_end(&mut bytes).ok()?;
    // Skip UTF-8 continuation bytes so the tail starts on a character.
    let start = bytes.iter().take_while(|&&b| b & 0xC0 == 0x80).count();
    Some(String::from_utf8_lossy(&bytes[start..]).into_owned())
}

/// Why the local executor refuses a gang: it runs processes on its one host.
pub fn gang_refusal(gang: u32) -> String {
    format!(
        "it is a gang of {gang} nodes, but this site's engine is the local executor, \
         which runs each job as one process on one host (gang must be 1; run gangs \
         at a site whose engine is Slurm)"
    )
}

impl Local {
    /// Stops job `job`'s whole process group: SIGTERM now, SIGKILL after
    /// `grace` (unless it has exited by then); no event follows.
    fn terminate(&self, job: i64, grace: Duration) {
        let Some(run) = self.running.lock().ok().and_then(|mut r| r.remove(&job)) else {
            return;
        };
        // No event for a stopped job: stop watching first.
        run.monitor.abort();
        signal_group(run.pgid, Signal::SIGTERM);
        let pgid = run.pgid;
        let pid_file = run.dir.join("pid");
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            signal_group(pgid, Signal::SIGKILL);
            let _ = std::fs::remove_file(pid_file);
        });
    }
}

impl Executor for Local {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn capacity(&self) -> BTreeMap<String, u64> {
        self.capacity.clone()
    }

    async fn start(
        &self,
        job: &Assignment,
        events: mpsc::UnboundedSender<Event>,
    ) -> Result<(), String> {
        if job.spec.gang > 1 {
            return Err(gang_refusal(job.spec.gang));
        }
        let Some((program, args)) = job.spec.command.split_first() else {
            return Err("the job has no command".into());
        };
        let limit = crate::simulated::declared_secs(&job.spec)?;
        let dir = self
            .root
            .join("jobs")
            .join(format!("{}-{}", job.job, job.token));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let log_path = dir.join("output.log");
        let log =
            std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let workdir = job
            .spec
            .workdir
            .as_deref()
            .map_or_else(|| dir.clone(), PathBuf::from);
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .current_dir(&workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .process_group(0)
            .env("SUANWANG_JOB_ID", job.job.to_string())
            .env("SUANWANG_LEASE", job.token.to_string());
        command.envs(&job.spec.env);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {program:?} in {}: {e}", workdir.display()))?;
        let pgid = child
            .id()
            .ok_or("the process ended before it could be watched")? as i32;
        let _ = std::fs::write(dir.join("pid"), pgid.to_string());
        let _ = events.send(Event::Started(job.job));
        let id = job.job;
        let pid_file = dir.join("pid");
        let monitor = tokio::spawn(async move {
            let limit = Duration::from_secs(limit.max(1) as u64);
            let (exit_code, message) = tokio::select! {
                status = child.wait() => match status {
                    Ok(status) => exit_of(status),
                    Err(e) => (-1, Some(format!("lost the process: {e}"))),
                },
                _ = tokio::time::sleep(limit) => {
                    signal_group(pgid, Signal::SIGTERM);
                    if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
                        signal_group(pgid, Signal::SIGKILL);
                        let _ = child.wait().await;
                    }
                    (TIMED_OUT, Some(format!("killed at its time limit of {}s", limit.as_secs())))
                }
            };
            // Whatever the command left behind in its group goes with it.
            signal_group(pgid, Signal::SIGKILL);
            let _ = std::fs::remove_file(&pid_file);
            let _ = events.send(Event::Finished {
                job: id,
                exit_code,
                message,
            });
        });
        if let Ok(mut dirs) = self.dirs.lock() {
            dirs.insert(id, dir.clone());
        }
        if let Ok(mut running) = self.running.lock() {
            running.retain(|_, r| !r.monitor.is_finished());
            running.insert(
                id,
                Running {
                    pgid,
                    monitor,
                    dir,
                    need: crate::simulated::demand(&job.spec),
                },
            );
        }
        Ok(())
    }

    async fn stop(&self, job: i64) {
        self.terminate(job, GRACE);
    }

    async fn preempt(&self, job: i64, grace: Duration) {
        self.terminate(job, grace);
    }

    async fn telemetry(&self) -> Telemetry {
        let mut busy: BTreeMap<String, u64> = BTreeMap::new();
        let mut jobs = 0;
        if let Ok(mut running) = self.running.lock() {
            running.retain(|_, r| !r.monitor.is_finished());
            jobs = running.len();
            for r in running.values() {
                for (class, units) in &r.need {
                    *busy.entry(class.clone()).or_insert(0) += units;
                }
            }
        }
        // Sampling reads files and may wait for a CPU measurement interval.
        let host = std::sync::Arc::clone(&self.host);
        let mut sample = tokio::task::spawn_blocking(move || {
            host.lock()
                .map(|mut h| h.sample())
                .unwrap_or_else(|_| Telemetry {
                    source: "host".into(),
                    ..Telemetry::default()
                })
        })
        .await
        .unwrap_or_else(|_| Telemetry {
            source: "host".into(),
            ..Telemetry::default()
        });
        sample.executor = Some("local".into());
        sample.running_jobs = Some(jobs as u64);
        sample.busy = busy;
        sample.capacity = self.capacity.clone();
        sample
    }

    async fn log_tail(&self, job: i64, max: usize) -> Option<String> {
        let dir = self.dirs.lock().ok()?.get(&job).cloned()?;
        tail(&dir.join("output.log"), max)
    }
}

/// Exit code of a finished process: its code, or 128 + the signal that ended it.
fn exit_of(status: std::process::ExitStatus) -> (i32, Option<String>) {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => (code, None),
        (None, Some(signal)) => (128 + signal, Some(format!("ended by signal {signal}"))),
        (None, None) => (-1, Some("ended without an exit code".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Job `job` running `command` for at most `secs`, on one core.
    fn assignment(job: i64, command: &[&str], secs: i64) -> Assignment {
        let demand = vec![suanwang_api::DemandIn {
            class: "cpu".into(),
            count: 1,
        }];
        let mut spec =
            suanwang_api::JobSubmission::new(demand, suanwang_api::DurationValue::Seconds(secs));
        spec.command = command.iter().map(|a| a.to_string()).collect();
        Assignment {
            tenant: None,
            job,
            token: 1,
            spec,
        }
    }

    fn root(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("suanwang-local-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn a_gang_is_refused_naming_the_gang_and_the_engine() {
        let root = root("gang");
        let (local, _) = Local::new(&root, None).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut job = assignment(7, &["touch", "ran"], 60);
        job.spec.gang = 2;
        let err = local.start(&job, tx).await.unwrap_err();
        assert!(
            err.contains("a gang of 2 nodes") && err.contains("the local executor"),
            "{err}"
        );
        // Nothing ran: no event, no job directory.
        assert!(rx.try_recv().is_err());
        assert!(!root.join("jobs").join("7-1").exists());
        // A gang of one is a plain job.
        job.spec.gang = 1;
        let (tx, mut rx) = mpsc::unbounded_channel();
        local.start(&job, tx).await.unwrap();
        assert_eq!(rx.recv().await, Some(Event::Started(7)));
    }

    #[tokio::test]
    async fn a_command_runs_with_its_environment_and_its_exit_code_comes_back() {
        let (local, _) = Local::new(&root("run"), None).unwrap();
        assert!(local.capacity()["cpu"] >= 1);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut job = assignment(
            1,
            &["sh", "-c", "echo hello $GREETING; echo oops >&2; exit 3"],
            60,
        );
        job.spec.env.insert("GREETING".into(), "world".into());
        local.start(&job, tx).await.unwrap();
        assert_eq!(rx.recv().await, Some(Event::Started(1)));
        match rx.recv().await {
            Some(Event::Finished {
                job: 1,
                exit_code: 3,
                message: None,
            }) => {}
            other => panic!("{other:?}"),
        }
        let log = local.log_tail(1, 1000).await.unwrap();
        assert!(
            log.contains("hello world") && log.contains("oops"),
            "{log:?}"
        );
        assert_eq!(local.log_tail(1, 3).await.unwrap(), "ps\n");
    }

    #[tokio::test]
    async fn stopping_kills_the_whole_group_and_sends_nothing() {
        let (local, _) = Local::new(&root("stop"), None).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let marker =
            std::env::temp_dir().join(format!("suanwang-local-marker-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        // A child of the job's shell, in the same group, would write the marker.
        let script = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        local
            .start(&assignment(2, &["sh", "-c", &script], 3600), tx)
            .await
            .unwrap();
        assert_eq!(rx.recv().await, Some(Event::Started(2)));
        local.stop(2).await;
        assert_eq!(local.running(), 0);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(!marker.exists(), "a process of the group outlived stop()");
        assert!(rx.try_recv().is_err(), "no event after stop");
    }

    #[tokio::test]
    async fn a_job_over_its_time_limit_is_killed() {
        let (local, _) = Local::new(&root("limit"), None).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        local
            .start(&assignment(3, &["sleep", "30"], 1), tx)
            .await
            .unwrap();
        assert_eq!(rx.recv().await, Some(Event::Started(3)));
        let started = std::time::Instant::now();
        match rx.recv().await {
            Some(Event::Finished {
                job: 3,
                exit_code: TIMED_OUT,
                message: Some(m),
            }) => {
                assert!(m.contains("time limit"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[tokio::test]
    async fn bad_commands_fail_to_start_and_leftovers_are_reaped() {
        let dir = root("bad");
        let (local, _) = Local::new(&dir, None).unwrap();
        let (tx, _rx) = mpsc::unbounded_channel();
        let none = local.start(&assignment(4, &[], 60), tx.clone()).await;
        assert_eq!(none.unwrap_err(), "the job has no command");
        let missing = local
            .start(&assignment(5, &["/no/such/program"], 60), tx.clone())
            .await;
        assert!(missing.unwrap_err().contains("/no/such/program"));
        // A job left running by a crashed agent is killed by the next one.
        local
            .start(&assignment(6, &["sleep", "30"], 60), tx)
            .await
            .unwrap();
        let pgid: i32 = std::fs::read_to_string(dir.join("jobs/6-1/pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::mem::forget(local);
        let (_again, reaped) = Local::new(&dir, None).unwrap();
        assert_eq!(reaped, 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            killpg(Pid::from_raw(pgid), None).is_err(),
            "the leftover group is gone"
        );
    }

    #[test]
    fn tails_start_on_a_character() {
        let dir = root("tail");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t");
        std::fs::write(&file, "ab算网").unwrap();
        assert_eq!(tail(&file, 4).unwrap(), "网");
        assert_eq!(tail(&file, 5).unwrap(), "网");
        assert_eq!(tail(&file, 100).unwrap(), "ab算网");
        assert!(tail(&dir.join("none"), 4).is_none());
    }
}
