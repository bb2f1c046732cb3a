//! The kubelet's part: the pods bound to this node, each run as a local process
//! in its own process group, their state reported through `pods/status`.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::logs::{Output, Outputs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Sets the flag when dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The annotation on each pod the stand-in runs: the file with the process's
/// stdout and stderr (there is no `pods/log` without a kubelet).
pub const OUTPUT_ANNOTATION: &str = "suanwang.io/standin-output";
/// The longest grace period honoured before SIGKILL.
const MAX_GRACE_S: i64 = 30;
/// The longest wait for a process on node shutdown before SIGKILL.
const SHUTDOWN_GRACE_S: i64 = 10;

/// Why a running pod's process is to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The pod is being deleted: SIGTERM, SIGKILL after `grace` seconds, then
    /// delete the pod with grace 0.
    Delete { grace: i64 },
    /// The node shuts down: stop the process, the pod Failed (NodeShutdown).
    Shutdown,
    /// The pod is gone from the API server already: kill the process.
    Gone,
}

enum State {
    Running {
        stop: watch::Sender<Option<Stop>>,
        task: JoinHandle<()>,
        pod: Box<Pod>,
    },
    /// Terminal (or never to run): nothing runs.
    Done,
    /// Its forced deletion was sent.
    Deleting,
}

/// What a pod's task reports when it ends.
pub struct Finished {
    uid: String,
    /// The task deleted the pod itself.
    deleted: bool,
}

/// The pods bound to this node, by uid.
pub struct Kubelet {
    client: Client,
    outputs: Outputs,
    node: String,
    workdir: PathBuf,
    pods: HashMap<String, State>,
    done: mpsc::UnboundedSender<Finished>,
    /// Tasks that ended; the caller passes each to [`Kubelet::reap`].
    pub finished: mpsc::UnboundedReceiver<Finished>,
}

fn grace_of(pod: &Pod) -> i64 {
    pod.metadata
        .deletion_grace_period_seconds
        .or(pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(30)
        .clamp(0, MAX_GRACE_S)
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn now() -> String {
    crate::now()
}

impl Kubelet {
    pub fn new(client: Client, node: String, workdir: PathBuf, outputs: Outputs) -> Kubelet {
        let (done, finished) = mpsc::unbounded_channel();
        Kubelet {
            client,
            outputs,
            node,
            workdir,
            pods: HashMap::new(),
            done,
            finished,
        }
    }

    /// A pod bound to this node was added or changed.
    pub async fn observe(&mut self, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let deleting = pod.metadata.deletion_timestamp.is_some();
        match self.pods.get(&uid) {
            Some(State::Running { stop, .. }) => {
                if deleting {
                    let grace = grace_of(&pod);
                    stop.send_if_modified(|s| {
                        if s.is_none() {
                            *s = Some(Stop::Delete { grace });
                            true
                        } else {
                            false
                        }
                    });
                }
            }
            Some(State::Done) => {
                if deleting {
                    self.force_delete(&pod);
                    self.pods.insert(uid, State::Deleting);
                }
            }
            Some(State::Deleting) => {}
            None => {
                if deleting {
                    self.force_delete(&pod);
                    self.pods.insert(uid, State::Deleting);
                } else if matches!(phase(&pod), "Succeeded" | "Failed") {
                    self.pods.insert(uid, State::Done);
                } else if phase(&pod) == "Running" {
                    // Started by an earlier run of this stand-in, whose process is
                    // gone with it.
                    let api = self.api(&pod);
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    let status = terminal_status(
                        &pod,
                        None,
                        -1,
                        Some((
                            "NodeRestarted",
                            "the stand-in node restarted; the pod's process was lost",
                        )),
                    );
                    tokio::spawn(async move { patch_status(&api, &name, status).await });
                    self.pods.insert(uid, State::Done);
                } else {
                    let (stop, stop_rx) = watch::channel(None);
                    let job = PodRun {
                        api: self.api(&pod),
                        node: self.node.clone(),
                        workdir: self.workdir.clone(),
                        outputs: self.outputs.clone(),
                        pod: pod.clone(),
                    };
                    let done = self.done.clone();
                    let id = uid.clone();
                    let task = tokio::spawn(async move {
                        let deleted = job.run(stop_rx).await;
                        let _ = done.send(Finished { uid: id, deleted });
                    });
                    self.pods.insert(
                        uid,
                        State::Running {
                            stop,
                            task,
                            pod: Box::new(pod),
                        },
                    );
                }
            }
        }
    }

    /// A pod bound to this node is gone from the API server.
    pub fn gone(&mut self, pod: &Pod) {
        let Some(uid) = pod.metadata.uid.as_deref() else {
            return;
        };
        if let (Some(ns), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) {
            self.outputs
                .lock()
                .unwrap()
                .remove(&(ns.clone(), name.clone()));
        }
        if let Some(State::Running { stop, .. }) = self.pods.remove(uid) {
            let _ = stop.send(Some(Stop::Gone));
        }
    }

    /// A pod's task ended.
    pub fn reap(&mut self, done: Finished) {
        let Some(State::Running { stop, .. }) = self.pods.get(&done.uid) else {
            return;
        };
        // A deletion that came after the process had exited (and after the task
        // last looked) is done here.
        let delete_pending = matches!(*stop.borrow(), Some(Stop::Delete { .. }));
        if done.deleted {
            self.pods.insert(done.uid, State::Deleting);
        } else if delete_pending {
            let Some(State::Running { pod, .. }) = self.pods.get(&done.uid) else {
                return;
            };
            self.force_delete(pod);
            self.pods.insert(done.uid, State::Deleting);
        } else {
            self.pods.insert(done.uid, State::Done);
        }
    }

    /// Stops every running process (their pods Failed, reason NodeShutdown) and
    /// waits for the tasks to report.
    pub async fn shutdown(&mut self) {
        let mut tasks = Vec::new();
        for (_, state) in self.pods.drain() {
            if let State::Running { stop, task, .. } = state {
                let _ = stop.send(Some(Stop::Shutdown));
                tasks.push(task);
            }
        }
        if !tasks.is_empty() {
            info!(pods = tasks.len(), "stopping the pods' processes");
        }
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(Duration::from_secs(SHUTDOWN_GRACE_S as u64 + 10), all)
            .await
            .is_err()
        {
            warn!("some pods' status could not be reported before shutdown");
        }
    }

    fn api(&self, pod: &Pod) -> Api<Pod> {
        Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        )
    }

    fn force_delete(&self, pod: &Pod) {
        let api = self.api(pod);
        let pod = pod.clone();
        tokio::spawn(async move { delete_now(&api, &pod).await });
    }
}

/// Deletes a pod with grace 0 (its process is gone), if it still has its uid.
async fn delete_now(api: &Api<Pod>, pod: &Pod) {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => info!(pod = %name, "pod deleted"),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
        Err(e) => warn!(pod = %name, "deleting the pod: {e}"),
    }
}

/// Patches `pods/status` (JSON merge patch), retrying transient failures.
async fn patch_status(api: &Api<Pod>, name: &str, status: Value) {
    let patch = Patch::Merge(json!({ "status": status }));
    for attempt in 1..=5u64 {
        match api
            .patch_status(name, &PatchParams::default(), &patch)
            .await
        {
            Ok(_) => return,
            Err(kube::Error::Api(e)) if e.code == 404 => return,
            Err(e) => {
                warn!(pod = %name, attempt, "updating the pod's status: {e}");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
        }
    }
}

fn container_id(pid: Option<u32>) -> String {
    format!("standin://{}", pid.unwrap_or(0))
}

/// The status of a pod whose container ended: `exit` is the process's status
/// (None if it never started: then `code` is used), `reason` the pod's reason
/// and message when the node, not the process, ended it.
fn terminal_status(
    pod: &Pod,
    started: Option<(&str, u32)>,
    code: i32,
    reason: Option<(&str, &str)>,
) -> Value {
    let container = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .cloned()
        .unwrap_or_default();
    let t = now();
    let (started_at, pid) = match started {
        Some((at, pid)) => (at.to_string(), Some(pid)),
        None => (t.clone(), None),
    };
    let succeeded = code == 0 && reason.is_none();
    let mut terminated = json!({
        "exitCode": code,
        "reason": if succeeded { "Completed" } else { "Error" },
        "startedAt": started_at,
        "finishedAt": t,
        "containerID": container_id(pid),
    });
    if let Some((r, m)) = reason {
        terminated["message"] = json!(m);
        if code < 0 {
            terminated["reason"] = json!(r);
            terminated["exitCode"] = json!(137);
        }
    }
    let mut status = json!({
        "phase": if succeeded { "Succeeded" } else { "Failed" },
        "conditions": conditions(false, "PodCompleted"),
        "containerStatuses": [{
            "name": container.name,
            "image": container.image.unwrap_or_default(),
            "imageID": "",
            "ready": false,
            "started": false,
            "restartCount": 0,
            "containerID": container_id(pid),
            "state": {"terminated": terminated},
        }],
    });
    if let Some((r, m)) = reason {
        status["reason"] = json!(r);
        status["message"] = json!(m);
    }
    status
}

fn conditions(ready: bool, reason: &str) -> Value {
    let t = now();
    let ready_cond = |kind: &str| {
        if ready {
            json!({"type": kind, "status": "True", "lastTransitionTime": t})
        } else {
            json!({"type": kind, "status": "False", "reason": reason, "lastTransitionTime": t})
        }
    };
    json!([
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": t},
        {"type": "Initialized", "status": "True", "lastTransitionTime": t},
        ready_cond("ContainersReady"),
        ready_cond("Ready"),
    ])
}

/// Expands `$(NAME)` references as the kubelet does (`$$(` escapes): defined
/// names are replaced, others left as they are.
fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix("$(") {
            out.push_str("$(");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('(')
            && let Some(end) = tail.find(')')
            && let Some((_, v)) = env.iter().rev().find(|(k, _)| k == &tail[..end])
        {
            out.push_str(v);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// One pod's run.
struct PodRun {
    api: Api<Pod>,
    node: String,
    workdir: PathBuf,
    outputs: Outputs,
    pod: Pod,
}

impl PodRun {
    fn name(&self) -> String {
        self.pod.metadata.name.clone().unwrap_or_default()
    }

    /// The container's environment: `value`s, and the `fieldRef`s that make
    /// sense here; `$(VAR)` references expanded.
    fn env(&self, container: &Container) -> Vec<(String, String)> {
        let meta = &self.pod.metadata;
        let mut env: Vec<(String, String)> = vec![
            (
                "PATH".into(),
                std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
            ),
            ("HOSTNAME".into(), self.name()),
        ];
        for var in container.env.iter().flatten() {
            let value = if let Some(v) = &var.value {
                expand(v, &env)
            } else if let Some(field) = var.value_from.as_ref().and_then(|f| f.field_ref.as_ref()) {
                let spec = self.pod.spec.as_ref();
                match field.field_path.as_str() {
                    "metadata.name" => self.name(),
                    "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
                    "metadata.uid" => meta.uid.clone().unwrap_or_default(),
                    "spec.nodeName" => self.node.clone(),
                    "spec.serviceAccountName" => spec
                        .and_then(|s| s.service_account_name.clone())
                        .unwrap_or_default(),
                    "status.hostIP" | "status.podIP" => "127.0.0.1".into(),
                    other => {
                        warn!(pod = %self.name(), var = %var.name, "fieldRef {other} is not supported by the stand-in; left unset");
                        continue;
                    }
                }
            } else if var.value_from.is_some() {
                warn!(pod = %self.name(), var = %var.name, "only value and fieldRef are supported by the stand-in; left unset");
                continue;
            } else {
                String::new()
            };
            env.push((var.name.clone(), value));
        }
        env
    }

    /// Runs the pod to its end; true if it deleted the pod.
    async fn run(self, mut stop: watch::Receiver<Option<Stop>>) -> bool {
        let name = self.name();
        let container = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .cloned()
            .unwrap_or_default();
        let env = self.env(&container);
        let argv: Vec<String> = container
            .command
            .iter()
            .flatten()
            .chain(container.args.iter().flatten())
            .map(|a| expand(a, &env))
            .collect();
        let dir = self.workdir.join(format!(
            "{}/{}-{}",
            self.pod.metadata.namespace.as_deref().unwrap_or("default"),
            name,
            self.pod
                .metadata
                .uid
                .as_deref()
                .unwrap_or("")
                .get(..8)
                .unwrap_or("")
        ));
        let started = match self.start(&container, &argv, &env, &dir).await {
            Ok(started) => started,
            Err(e) => {
                warn!(pod = %name, "cannot start: {e:#}");
                let mut status = terminal_status(&self.pod, None, 128, None);
                status["containerStatuses"][0]["state"]["terminated"]["reason"] =
                    json!("StartError");
                status["containerStatuses"][0]["state"]["terminated"]["message"] =
                    json!(format!("{e:#}"));
                patch_status(&self.api, &name, status).await;
                return false;
            }
        };
        let (mut child, output, started_at) = started;
        let pid = child.id().unwrap_or(0);
        // Served by the log endpoint; marked done however this ends.
        let done = Arc::new(AtomicBool::new(false));
        let _done = SetOnDrop(done.clone());
        self.outputs.lock().unwrap().insert(
            (
                self.pod.metadata.namespace.clone().unwrap_or_default(),
                name.clone(),
            ),
            Output {
                path: output.clone(),
                container: container.name.clone(),
                done,
            },
        );
        info!(pod = %name, pid, output = %output.display(), "process started");
        let running_status = json!({
            "phase": "Running",
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": started_at,
            "conditions": conditions(true, ""),
            "containerStatuses": [{
                "name": container.name,
                "image": container.image.clone().unwrap_or_default(),
                "imageID": "",
                "ready": true,
                "started": true,
                "restartCount": 0,
                "containerID": container_id(Some(pid)),
                "state": {"running": {"startedAt": started_at}},
            }],
        });
        let annotate = Patch::Merge(json!({"metadata": {"annotations": {
            OUTPUT_ANNOTATION: output.display().to_string()}}}));
        if let Err(e) = self
            .api
            .patch(&name, &PatchParams::default(), &annotate)
            .await
        {
            warn!(pod = %name, "annotating the pod with its output file: {e}");
        }
        patch_status(&self.api, &name, running_status).await;

        // Wait for the process, or for a reason to stop it.
        let why = loop {
            tokio::select! {
                status = child.wait() => break Err(status),
                changed = stop.changed() => {
                    if changed.is_err() {
                        // The Kubelet is gone (the process is exiting).
                        break Ok(Stop::Gone);
                    }
                    if let Some(why) = *stop.borrow() {
                        break Ok(why);
                    }
                }
            }
        };
        let status = match why {
            Err(status) => {
                // Like a container's end: nothing of the group outlives it.
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                status
            }
            Ok(Stop::Gone) => {
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                let _ = child.wait().await;
                info!(pod = %name, pid, "pod gone: process killed");
                return false;
            }
            Ok(Stop::Delete { grace }) => {
                let _ = terminate(&mut child, pid, grace, &name).await;
                delete_now(&self.api, &self.pod).await;
                return true;
            }
            Ok(Stop::Shutdown) => {
                let status = terminate(
                    &mut child,
                    pid,
                    grace_of(&self.pod).min(SHUTDOWN_GRACE_S),
                    &name,
                )
                .await;
                let code = status.map(exit_code).unwrap_or(137);
                let message = format!("the stand-in node {} is shutting down", self.node);
                let status = terminal_status(
                    &self.pod,
                    Some((&started_at, pid)),
                    code,
                    Some(("NodeShutdown", &message)),
                );
                patch_status(&self.api, &name, status).await;
                return false;
            }
        };
        let code = match status {
            Ok(s) => exit_code(s),
            Err(e) => {
                warn!(pod = %name, "waiting for the process: {e}");
                137
            }
        };
        info!(pod = %name, pid, code, "process exited");
        let status = terminal_status(&self.pod, Some((&started_at, pid)), code, None);
        patch_status(&self.api, &name, status).await;
        // A deletion that arrived meanwhile is left to Kubelet::reap.
        false
    }

    async fn start(
        &self,
        container: &Container,
        argv: &[String],
        env: &[(String, String)],
        dir: &Path,
    ) -> Result<(tokio::process::Child, PathBuf, String)> {
        let Some((program, args)) = argv.split_first() else {
            anyhow::bail!(
                "container '{}' has no command: the stand-in runs a container's command and args (it has no images)",
                container.name
            );
        };
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("creating {}", dir.display()))?;
        let cwd = match container.working_dir.as_deref() {
            Some(w) if !w.is_empty() => {
                tokio::fs::create_dir_all(w)
                    .await
                    .with_context(|| format!("workingDir {w}"))?;
                PathBuf::from(w)
            }
            _ => dir.to_path_buf(),
        };
        let output = dir.join("output.log");
        let file = std::fs::File::create(&output)
            .with_context(|| format!("creating {}", output.display()))?;
        let err = file.try_clone().context("duplicating the output file")?;
        let started_at = now();
        let child = tokio::process::Command::new(program)
            .args(args)
            .current_dir(&cwd)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("running {program:?} in {}", cwd.display()))?;
        Ok((child, output, started_at))
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(137)
}

/// SIGTERM to the process group, SIGKILL after `grace` seconds; the process's
/// exit status.
async fn terminate(
    child: &mut tokio::process::Child,
    pid: u32,
    grace: i64,
    name: &str,
) -> std::io::Result<ExitStatus> {
    let group = Pid::from_raw(pid as i32);
    let _ = killpg(group, Signal::SIGTERM);
    info!(pod = %name, pid, grace, "SIGTERM sent");
    match tokio::time::timeout(Duration::from_secs(grace as u64), child.wait()).await {
        Ok(status) => {
            let _ = killpg(group, Signal::SIGKILL);
            status
        }
        Err(_) => {
            info!(pod = %name, pid, "grace period over: SIGKILL");
            let _ = killpg(group, Signal::SIGKILL);
            child.wait().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn expands_like_the_kubelet() {
        let env = vec![("A".to_string(), "1".to_string())];
        assert_eq!(expand("x$(A)y", &env), "x1y");
        assert_eq!(expand("$(B)", &env), "$(B)");
        assert_eq!(expand("$$(A)", &env), "$(A)");
        assert_eq!(expand("$A $", &env), "$A $");
    }
}
