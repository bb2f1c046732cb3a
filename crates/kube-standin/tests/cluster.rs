//! The stand-in kubelet against a real control plane: set `SUANWANG_TEST_KUBERNETES`
//! to the state directory `tools/start-kubernetes.sh` prints as `KUBE_STATE`
//! (it holds `admin.kubeconfig` and `agent.kubeconfig`). Without it these tests
//! say so and pass, unless `SUANWANG_REQUIRE_KUBERNETES` is set (CI, which starts
//! the cluster): then they fail. The flag and connection checks at the end need
//! no cluster.
//!
//! Each test starts its own stand-in node (a child process, unique name, label
//! `suanwang.io/pool=<its name>`) and uses its own namespace
//! `suanwang-test-N` (the script creates 1 to 12 with the agent's Role), so they
//! run in parallel.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_suanwang-kube-standin");

/// The cluster's state directory, or `None` (after a skip line) when there is none.
fn state(test: &str) -> Option<PathBuf> {
    match std::env::var_os("SUANWANG_TEST_KUBERNETES") {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var_os("SUANWANG_REQUIRE_KUBERNETES").is_some() => {
            panic!(
                "{test}: SUANWANG_REQUIRE_KUBERNETES is set but SUANWANG_TEST_KUBERNETES (the cluster's state directory) is not"
            )
        }
        None => {
            eprintln!(
                "skipping {test}: needs a Kubernetes control plane; run tools/start-kubernetes.sh and set SUANWANG_TEST_KUBERNETES=/tmp/suanwang-kubernetes"
            );
            None
        }
    }
}

async fn client(kubeconfig: &Path) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// A name unique to this test and run (node names, pool labels, Job names).
fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{test}-{}-{:x}", std::process::id(), nanos & 0xffff)
}

/// Polls `check` every 100 ms until it gives a value, for `secs` seconds at most.
async fn wait<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{what}: not within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A stand-in node run by this test, stopped (SIGTERM) when dropped.
struct Standin {
    name: String,
    child: Option<std::process::Child>,
    workdir: PathBuf,
}

impl Standin {
    async fn start(state: &Path, test: &str, cpu: &str) -> Standin {
        Standin::start_named(state, unique(test), cpu).await
    }

    async fn start_named(state: &Path, name: String, cpu: &str) -> Standin {
        let workdir = std::env::temp_dir()
            .join("suanwang-kube-standin-tests")
            .join(&name);
        let child = Command::new(BIN)
            .arg("--kubeconfig")
            .arg(state.join("admin.kubeconfig"))
            .args(["--node", &name, "--cpu", cpu, "--memory", "4Gi"])
            .args(["--resource", "nvidia.com/gpu=1"])
            .args(["--label", &format!("suanwang.io/pool={name}")])
            .arg("--workdir")
            .arg(&workdir)
            .stdin(Stdio::null())
            // Its progress lines only when asked for (RUST_LOG=info).
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .spawn()
            .unwrap();
        let standin = Standin {
            name,
            child: Some(child),
            workdir,
        };
        let nodes: Api<Node> = Api::all(client(&state.join("admin.kubeconfig")).await);
        let name = standin.name.clone();
        wait("the stand-in's node Ready and untainted", 30, || {
            let nodes = nodes.clone();
            let name = name.clone();
            async move {
                let node = nodes.get_opt(&name).await.unwrap()?;
                let ready = node
                    .status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                let tainted = node
                    .spec
                    .and_then(|s| s.taints)
                    .is_some_and(|t| !t.is_empty());
                (ready && !tainted).then_some(())
            }
        })
        .await;
        standin
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// SIGTERM, then waits (30 s at most) for it to exit; its exit status.
    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.workdir);
    }
}

/// A batch/v1 Job for a node's pool: `restartPolicy: Never`, `backoffLimit: 0`.
fn job(name: &str, pool: &str, command: &[&str], env: &[(&str, &str)], cpu: &str) -> Job {
    let env: Vec<_> = env
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {
                "restartPolicy": "Never",
                "nodeSelector": {"suanwang.io/pool": pool},
                "terminationGracePeriodSeconds": 5,
                "containers": [{
                    "name": "main", "image": "ignored.example/none:1",
                    "command": command, "env": env,
                    "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}},
                }],
            }},
        },
    }))
    .unwrap()
}

/// Waits for a Job's Complete or Failed condition; its type.
async fn finished(jobs: &Api<Job>, name: &str) -> String {
    wait(&format!("job {name} Complete or Failed"), 30, || async {
        let job = jobs.get(name).await.unwrap();
        job.status?
            .conditions?
            .into_iter()
            .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
            .map(|c| c.type_)
    })
    .await
}

/// The (first) pod of a Job, once there is one.
async fn pod_of(pods: &Api<Pod>, job: &str) -> Pod {
    wait(&format!("a pod of job {job}"), 30, || async {
        let list = pods
            .list(&ListParams::default().labels(&format!("job-name={job}")))
            .await
            .unwrap();
        list.items.into_iter().next()
    })
    .await
}

fn terminated_exit_code(pod: &Pod) -> Option<i32> {
    pod.status.as_ref()?.container_statuses.as_ref()?[0]
        .state
        .as_ref()?
        .terminated
        .as_ref()
        .map(|t| t.exit_code)
}

#[tokio::test]
async fn jobs_complete_and_fail_with_the_real_exit_code() {
    let Some(state) = state("jobs_complete_and_fail_with_the_real_exit_code") else {
        return;
    };
    let node = Standin::start(&state, "exit", "2").await;
    let client = client(&state.join("admin.kubeconfig")).await;
    let ns = "suanwang-test-1";
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client, ns);

    let ok = unique("ok");
    let started = Instant::now();
    jobs.create(
        &PostParams::default(),
        &job(
            &ok,
            &node.name,
            &["sh", "-c", "echo hi $GREETING; exit 0"],
            &[("GREETING", "there")],
            "100m",
        ),
    )
    .await
    .unwrap();
    let bad = unique("bad");
    jobs.create(
        &PostParams::default(),
        &job(&bad, &node.name, &["sh", "-c", "exit 3"], &[], "100m"),
    )
    .await
    .unwrap();
    assert_eq!(finished(&jobs, &ok).await, "Complete");
    eprintln!(
        "first Job Complete {:.2} s after its creation",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(finished(&jobs, &bad).await, "Failed");

    let pod = pod_of(&pods, &ok).await;
    assert_eq!(
        pod.spec.as_ref().unwrap().node_name.as_deref(),
        Some(node.name.as_str())
    );
    assert_eq!(
        pod.status.as_ref().unwrap().phase.as_deref(),
        Some("Succeeded")
    );
    assert_eq!(terminated_exit_code(&pod), Some(0));
    // It really ran: its output file (named by the annotation) has its output.
    let output = pod.metadata.annotations.as_ref().unwrap()["suanwang.io/standin-output"].clone();
    assert!(
        output.starts_with(node.workdir.to_str().unwrap()),
        "{output}"
    );
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "hi there\n");
    // And pods/log serves it (the API server asks the stand-in's log endpoint).
    let pod_name = pod.metadata.name.clone().unwrap();
    assert_eq!(
        pods.logs(&pod_name, &LogParams::default()).await.unwrap(),
        "hi there\n"
    );

    let pod = pod_of(&pods, &bad).await;
    assert_eq!(
        pod.status.as_ref().unwrap().phase.as_deref(),
        Some("Failed")
    );
    assert_eq!(terminated_exit_code(&pod), Some(3));
    let terminated = pod.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(terminated.reason.as_deref(), Some("Error"));

    for name in [&ok, &bad] {
        jobs.delete(name, &DeleteParams::background())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn pod_logs_are_served_tailed_and_followed() {
    let Some(state) = state("pod_logs_are_served_tailed_and_followed") else {
        return;
    };
    let node = Standin::start(&state, "logs", "2").await;
    let client = client(&state.join("admin.kubeconfig")).await;
    let ns = "suanwang-test-6";
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client, ns);
    let name = unique("follow");
    jobs.create(
        &PostParams::default(),
        &job(
            &name,
            &node.name,
            &[
                "sh",
                "-c",
                "echo one; sleep 1; echo two >&2; sleep 1; echo three",
            ],
            &[],
            "100m",
        ),
    )
    .await
    .unwrap();
    let pod = pod_of(&pods, &name).await;
    let pod_name = pod.metadata.name.unwrap();
    wait("the pod running", 30, || async {
        let pod = pods.get(&pod_name).await.unwrap();
        (pod.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    // Following: the stream ends when the process does, with all its output.
    let follow = LogParams {
        follow: true,
        ..LogParams::default()
    };
    let mut stream = pods.log_stream(&pod_name, &follow).await.unwrap();
    let mut all = String::new();
    let started = Instant::now();
    futures::AsyncReadExt::read_to_string(&mut stream, &mut all)
        .await
        .unwrap();
    assert_eq!(all, "one\ntwo\nthree\n");
    assert!(
        started.elapsed() > Duration::from_millis(500),
        "the follow did not wait"
    );
    assert_eq!(finished(&jobs, &name).await, "Complete");
    let tail = LogParams {
        tail_lines: Some(2),
        ..LogParams::default()
    };
    assert_eq!(pods.logs(&pod_name, &tail).await.unwrap(), "two\nthree\n");
    let limit = LogParams {
        limit_bytes: Some(6),
        ..LogParams::default()
    };
    assert_eq!(pods.logs(&pod_name, &limit).await.unwrap(), "one\ntw");
    jobs.delete(&name, &DeleteParams::background())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_pod_that_does_not_fit_stays_pending_unschedulable() {
    let Some(state) = state("a_pod_that_does_not_fit_stays_pending_unschedulable") else {
        return;
    };
    let node = Standin::start(&state, "nofit", "2").await;
    let client = client(&state.join("admin.kubeconfig")).await;
    let ns = "suanwang-test-2";
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client, ns);
    let name = unique("big");
    jobs.create(
        &PostParams::default(),
        &job(&name, &node.name, &["true"], &[], "3"),
    )
    .await
    .unwrap();
    let pod = pod_of(&pods, &name).await;
    let pod_name = pod.metadata.name.unwrap();
    let reason = wait("PodScheduled=False", 30, || async {
        let pod = pods.get(&pod_name).await.unwrap();
        pod.status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            .map(|c| (c.reason, c.message))
    })
    .await;
    assert_eq!(reason.0.as_deref(), Some("Unschedulable"), "{reason:?}");
    assert!(
        reason
            .1
            .as_deref()
            .unwrap_or("")
            .contains("Insufficient cpu"),
        "{reason:?}"
    );
    // And it stays so: not bound, not started.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pod = pods.get(&pod_name).await.unwrap();
    assert_eq!(pod.spec.unwrap().node_name, None);
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Pending"));
    jobs.delete(&name, &DeleteParams::background())
        .await
        .unwrap();
}

fn process_alive(pid: i32) -> bool {
    // Not a zombie either: the stand-in reaps what it runs.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

/// Starts a Job whose process writes its pid to a file and sleeps; waits for the
/// pod Running and the pid.
async fn sleeper(jobs: &Api<Job>, pods: &Api<Pod>, node: &Standin, prefix: &str) -> (String, i32) {
    let name = unique(prefix);
    let pidfile = node.workdir.join(format!("{name}.pid"));
    jobs.create(
        &PostParams::default(),
        &job(
            &name,
            &node.name,
            &["sh", "-c", "echo $$ > \"$PIDFILE\"; exec sleep 300"],
            &[("PIDFILE", pidfile.to_str().unwrap())],
            "100m",
        ),
    )
    .await
    .unwrap();
    let pod = pod_of(pods, &name).await;
    let pod_name = pod.metadata.name.unwrap();
    wait(&format!("pod {pod_name} Running"), 30, || async {
        let pod = pods.get(&pod_name).await.unwrap();
        (pod.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    let pid = wait("the pid file", 30, || async {
        std::fs::read_to_string(&pidfile)
            .ok()?
            .trim()
            .parse::<i32>()
            .ok()
    })
    .await;
    assert!(
        process_alive(pid),
        "process {pid} of job {name} is not running"
    );
    (name, pid)
}

#[tokio::test]
async fn deleting_a_running_job_removes_its_pod_and_kills_the_process() {
    let Some(state) = state("deleting_a_running_job_removes_its_pod_and_kills_the_process") else {
        return;
    };
    let node = Standin::start(&state, "delete", "2").await;
    let client = client(&state.join("admin.kubeconfig")).await;
    let ns = "suanwang-test-3";
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client, ns);
    for (how, params) in [
        ("foreground", DeleteParams::foreground()),
        ("background", DeleteParams::background()),
    ] {
        let (name, pid) = sleeper(&jobs, &pods, &node, how).await;
        let started = Instant::now();
        jobs.delete(&name, &params).await.unwrap();
        wait(
            &format!("{how}: job {name} and its pod gone"),
            30,
            || async {
                let job = jobs.get_opt(&name).await.unwrap();
                let left = pods
                    .list(&ListParams::default().labels(&format!("job-name={name}")))
                    .await
                    .unwrap();
                (job.is_none() && left.items.is_empty()).then_some(())
            },
        )
        .await;
        eprintln!(
            "{how} deletion: job and pod gone in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        wait(&format!("{how}: process {pid} gone"), 10, || async {
            (!process_alive(pid)).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn sigterm_stops_the_pods_and_removes_the_node() {
    let Some(state) = state("sigterm_stops_the_pods_and_removes_the_node") else {
        return;
    };
    let mut node = Standin::start(&state, "sigterm", "2").await;
    let client = client(&state.join("admin.kubeconfig")).await;
    let ns = "suanwang-test-4";
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let nodes: Api<Node> = Api::all(client);
    let (name, pid) = sleeper(&jobs, &pods, &node, "shutdown").await;
    let standin_pid = node.pid();
    let status = node.stop().unwrap();
    assert!(
        status.success(),
        "stand-in {standin_pid} exited with {status}"
    );
    assert!(
        nodes.get_opt(&node.name).await.unwrap().is_none(),
        "node {} is still there",
        node.name
    );
    assert!(!process_alive(pid), "process {pid} outlived its node");
    let pod = pod_of(&pods, &name).await;
    let status = pod.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Failed"));
    assert_eq!(status.reason.as_deref(), Some("NodeShutdown"));
    // sleep died of the SIGTERM.
    let code = status.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap()
        .exit_code;
    assert_eq!(code, 128 + 15);
    assert_eq!(finished(&jobs, &name).await, "Failed");
    jobs.delete(&name, &DeleteParams::background())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_agent_identity_is_restricted_by_rbac() {
    let Some(state) = state("the_agent_identity_is_restricted_by_rbac") else {
        return;
    };
    let node = Standin::start(&state, "rbac", "2").await;
    let agent = client(&state.join("agent.kubeconfig")).await;
    let ns = "suanwang-test-5";

    // Jobs in its namespace: create, watch to the end, delete.
    let jobs: Api<Job> = Api::namespaced(agent.clone(), ns);
    let name = unique("agent");
    jobs.create(
        &PostParams::default(),
        &job(&name, &node.name, &["echo", "agent was here"], &[], "100m"),
    )
    .await
    .unwrap();
    assert_eq!(finished(&jobs, &name).await, "Complete");
    let pods: Api<Pod> = Api::namespaced(agent.clone(), ns);
    let pod = pod_of(&pods, &name).await;
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Succeeded"));
    // pods/log is the agent's too.
    let pod_name = pod.metadata.name.unwrap();
    assert_eq!(
        pods.logs(&pod_name, &LogParams::default()).await.unwrap(),
        "agent was here\n"
    );
    jobs.delete(&name, &DeleteParams::background())
        .await
        .unwrap();

    // Not in `default`, and no pods created directly.
    let elsewhere: Api<Job> = Api::namespaced(agent.clone(), "default");
    forbidden(
        elsewhere
            .create(
                &PostParams::default(),
                &job(&unique("agent"), &node.name, &["true"], &[], "100m"),
            )
            .await,
        "create a Job in default",
    );
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": unique("bare")},
        "spec": {"containers": [{"name": "main", "image": "x", "command": ["true"]}]},
    }))
    .unwrap();
    forbidden(
        pods.create(&PostParams::default(), &pod).await,
        "create a bare pod",
    );

    // Nodes: read, not delete; pods cluster-wide: list only.
    let nodes: Api<Node> = Api::all(agent.clone());
    let list = nodes.list(&ListParams::default()).await.unwrap();
    assert!(
        list.items
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(node.name.as_str()))
    );
    forbidden(
        nodes
            .delete(&node.name, &DeleteParams::default())
            .await
            .map(|_| ()),
        "delete a node",
    );
    let all_pods: Api<Pod> = Api::all(agent.clone());
    all_pods.list(&ListParams::default()).await.unwrap();
    let default_pods: Api<Pod> = Api::namespaced(agent, "default");
    forbidden(default_pods.get("anything").await, "get a pod in default");
}

fn forbidden<T>(r: Result<T, kube::Error>, what: &str) {
    match r {
        Err(kube::Error::Api(e)) if e.code == 403 => {}
        Err(e) => panic!("{what}: expected 403 Forbidden, got {e}"),
        Ok(_) => panic!("{what}: expected 403 Forbidden, but it was allowed"),
    }
}

#[tokio::test]
async fn a_restarted_standin_replaces_its_node_and_fails_the_pods_it_lost() {
    let Some(state) = state("a_restarted_standin_replaces_its_node_and_fails_the_pods_it_lost")
    else {
        return;
    };
    let mut first = Standin::start(&state, "restart", "2").await;
    let client = client(&state.join("admin.kubeconfig")).await;
    let ns = "suanwang-test-7";
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let nodes: Api<Node> = Api::all(client);
    let (name, pid) = sleeper(&jobs, &pods, &first, "lost").await;
    // Killed without a chance to clean up: its Node stays, its process runs on.
    let mut child = first.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    // Something else changed the node meanwhile: a stale label and the
    // not-ready taint.
    let patch = json!({
        "metadata": {"labels": {"stale": "yes"}},
        "spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]},
    });
    nodes
        .patch(
            &first.name,
            &Default::default(),
            &kube::api::Patch::Merge(patch),
        )
        .await
        .unwrap();
    let second = Standin::start_named(&state, first.name.clone(), "2").await;
    let node = nodes.get(&second.name).await.unwrap();
    let labels = node.metadata.labels.unwrap();
    assert!(!labels.contains_key("stale"), "{labels:?}");
    assert_eq!(labels["suanwang.io/pool"], second.name);
    let status = wait("the lost pod Failed", 30, || async {
        let pod = pod_of(&pods, &name).await;
        let status = pod.status?;
        (status.phase.as_deref() == Some("Failed")).then_some(status)
    })
    .await;
    assert_eq!(status.reason.as_deref(), Some("NodeRestarted"));
    assert_eq!(finished(&jobs, &name).await, "Failed");
    // The documented leftover: the process of a SIGKILLed stand-in runs on.
    assert!(process_alive(pid));
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    jobs.delete(&name, &DeleteParams::background())
        .await
        .unwrap();
}

// --- No cluster needed below. ---

fn standin_fails(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn bad_flag_values_name_the_flag() {
    let base = ["--kubeconfig", "/nonexistent", "--node", "n"];
    let err = standin_fails(&[&base[..], &["--cpu", "four"]].concat());
    assert!(
        err.contains("--cpu") && err.contains("'four' is not a Kubernetes quantity"),
        "{err}"
    );
    let err = standin_fails(&[&base[..], &["--memory", "8GB"]].concat());
    assert!(err.contains("--memory") && err.contains("'8GB'"), "{err}");
    let err = standin_fails(&[&base[..], &["--resource", "gpu=2"]].concat());
    assert!(
        err.contains("--resource") && err.contains("'gpu' is not an extended resource name"),
        "{err}"
    );
    let err = standin_fails(&[&base[..], &["--resource", "nvidia.com/gpu=lots"]].concat());
    assert!(
        err.contains("--resource") && err.contains("nvidia.com/gpu: 'lots'"),
        "{err}"
    );
    let err = standin_fails(&[&base[..], &["--label", "pool"]].concat());
    assert!(
        err.contains("--label") && err.contains("'pool' is not KEY=VALUE"),
        "{err}"
    );
    let err = standin_fails(&base);
    assert!(
        err.contains("--kubeconfig /nonexistent: cannot read it"),
        "{err}"
    );
}

#[test]
fn an_unreachable_api_server_is_named() {
    let dir = std::env::temp_dir().join(format!("standin-unreachable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kc = dir.join("kubeconfig");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n\
         users:\n- name: u\n  user:\n    token: x\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n\
         current-context: x\n",
    )
    .unwrap();
    let err = standin_fails(&["--kubeconfig", kc.to_str().unwrap(), "--node", "n"]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        err.contains("cannot reach the API server at https://127.0.0.1:1/"),
        "{err}"
    );
}
