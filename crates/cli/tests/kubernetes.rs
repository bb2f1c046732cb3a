//! The Kubernetes executor against a real API server (kube-apiserver,
//! controller manager and scheduler 1.20, built and started by
//! `tools/start-kubernetes.sh`), with stand-in kubelets that run pods as local
//! processes: jobs submitted with the CLI become Jobs with the right requests,
//! their exit codes come back, cancel deletes them, a pod that fits no node
//! waits with Kubernetes's reason in `explain`, the capacity follows the nodes,
//! and an agent killed with `kill -9` and started again resumes its Job
//! instead of making a second.
//!
//! Runs when `SUANWANG_TEST_KUBERNETES` names the script's state directory;
//! skipped otherwise unless `SUANWANG_REQUIRE_KUBERNETES=1` (CI).

mod common;

use common::*;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The script's state directory, or `None` (skip) when the cluster is not up.
fn cluster(test: &str) -> Option<PathBuf> {
    match std::env::var("SUANWANG_TEST_KUBERNETES") {
        Ok(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => {
            assert!(
                std::env::var("SUANWANG_REQUIRE_KUBERNETES").as_deref() != Ok("1"),
                "SUANWANG_REQUIRE_KUBERNETES=1 but SUANWANG_TEST_KUBERNETES is not set"
            );
            eprintln!(
                "skipping {test}: set SUANWANG_TEST_KUBERNETES (eval \"$(tools/start-kubernetes.sh)\"; SUANWANG_TEST_KUBERNETES=$KUBE_STATE)"
            );
            None
        }
    }
}

/// A stand-in node (a kubelet that runs pods as local processes), removed
/// (SIGTERM: it deletes its Node) when dropped.
struct Node {
    child: std::process::Child,
}

impl Node {
    fn start(state: &Path, name: &str, pool: &str, cpu: u32) -> Node {
        let workdir = std::env::temp_dir().join(format!("suanwang-k8s-it-{name}"));
        let child = Command::new(state.join("bin/suanwang-kube-standin"))
            .arg("--kubeconfig")
            .arg(state.join("admin.kubeconfig"))
            .args(["--node", name, "--cpu", &cpu.to_string(), "--memory", "8Gi"])
            .args(["--resource", "nvidia.com/gpu=2"])
            .args(["--label", &format!("suanwang.io/pool={pool}")])
            .arg("--workdir")
            .arg(&workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("the stand-in kubelet starts");
        Node { child }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A name unique to this run, for nodes and pools.
fn unique(test: &str) -> String {
    format!("{test}-{}", std::process::id())
}

/// `suanwang agent --executor kubernetes` in `namespace` on the nodes of `pool`.
fn k8s_agent(
    url: &str,
    token: &str,
    state: &Path,
    namespace: &str,
    pool: &str,
) -> (Proc, std::sync::mpsc::Receiver<String>) {
    let kubeconfig = state.join("agent.kubeconfig").display().to_string();
    agent_with(
        url,
        token,
        "hami",
        &[
            "--executor",
            "kubernetes",
            "--kubeconfig",
            &kubeconfig,
            "--k8s-namespace",
            namespace,
            "--k8s-node-selector",
            &format!("suanwang.io/pool={pool}"),
            "--k8s-resource",
            "a800=nvidia.com/gpu",
        ],
    )
}

/// The Kubernetes Jobs of a suanwang job, read with the administrator's
/// kubeconfig.
fn kube_jobs(state: &Path, namespace: &str, id: i64) -> Vec<Job> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let file = kube::config::Kubeconfig::read_from(state.join("admin.kubeconfig")).unwrap();
        let config =
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let jobs: Api<Job> = Api::namespaced(client, namespace);
        jobs.list(&ListParams::default().labels(&format!("suanwang.io/job={id}")))
            .await
            .unwrap()
            .items
    })
}

/// Waits until the agent's latest telemetry offers `cpu` cores.
fn wait_cpu(url: &str, operator: &str, cpu: u64) -> Value {
    let started = Instant::now();
    loop {
        let out = cli(url, operator, &["agents", "--json"]);
        let agents: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let offered = agents
            .as_array()
            .and_then(|a| a.last())
            .map(|a| a["telemetry"]["capacity"]["cpu"].clone());
        if offered.as_ref().and_then(Value::as_u64) == Some(cpu) {
            return agents;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the agent does not offer {cpu} cores: {agents}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_job_submitted_with_the_cli_runs_as_a_kubernetes_job_and_its_exit_code_comes_back() {
    let Some(state) = cluster("kubernetes run") else {
        return;
    };
    let namespace = "suanwang-test-9";
    let pool = unique("run");
    // Two nodes of 2 cores: the site offers 4, but no pod of 3 fits one node.
    let _a = Node::start(&state, &format!("{pool}-a"), &pool, 2);
    let _b = Node::start(&state, &format!("{pool}-b"), &pool, 2);
    let plane = Plane::start("k8s-run", &[]);
    let (url, operator, tenant) = (&plane.url, &plane.operator, &plane.tenant);
    let _agent = k8s_agent(url, operator, &state, namespace, &pool);
    wait_cpu(url, operator, 4);

    let failing = submit_args(
        url,
        tenant,
        &[
            "--cpus",
            "1",
            "--mem",
            "1",
            "--gpus",
            "1",
            "--gpu-model",
            "a800",
            "--duration",
            "5m",
            "--site",
            "hami",
            "--no-delay",
            "--",
            "sh",
            "-c",
            "echo hello from $SUANWANG_JOB_ID; exit 3",
        ],
    );
    let done = wait_for(url, tenant, failing, 60, |j| j["state"] == "Failed");
    assert_eq!(done["exit_code"], 3, "{done}");
    // The output comes back through pods/log with the final report.
    let logs = cli(url, tenant, &["logs", &failing.to_string()]);
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(text.contains(&format!("hello from {failing}")), "{text:?}");
    let jobs = kube_jobs(&state, namespace, failing);
    assert_eq!(jobs.len(), 1, "one Job per lease");
    let pod = jobs[0]
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let container = &pod.containers[0];
    let requests = container
        .resources
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap();
    assert_eq!(requests["cpu"].0, "1");
    assert_eq!(requests["memory"].0, "1Gi");
    assert_eq!(requests["nvidia.com/gpu"].0, "1");
    assert_eq!(
        container.command.as_deref().unwrap()[2],
        "echo hello from $SUANWANG_JOB_ID; exit 3"
    );
    let labels = jobs[0].metadata.labels.as_ref().unwrap();
    assert_eq!(labels["suanwang.io/site"], "hami");
    assert_eq!(labels["suanwang.io/lease"], done["attempt"].to_string());
    assert!(labels.contains_key("suanwang.io/tenant"), "{labels:?}");

    let ok = submit(url, tenant, &["sh", "-c", "exit 0"]);
    let done = wait_for(url, tenant, ok, 60, |j| j["state"] == "Succeeded");
    assert_eq!(done["exit_code"], 0);

    // Cancel deletes the Job with its pod.
    let slow = submit(url, tenant, &["sleep", "120"]);
    wait_for(url, tenant, slow, 60, |j| j["state"] == "Running");
    assert_eq!(kube_jobs(&state, namespace, slow).len(), 1);
    let out = cli(url, tenant, &["cancel", &slow.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the cancelled job's Kubernetes Job goes", 30, || {
        kube_jobs(&state, namespace, slow).is_empty()
    });

    // Three cores fit the site (4 free) but no node (2 each): the pod waits,
    // and explain says why in Kubernetes's words.
    let wide = submit_args(
        url,
        tenant,
        &[
            "--cpus",
            "3",
            "--duration",
            "5m",
            "--site",
            "hami",
            "--no-delay",
            "--",
            "true",
        ],
    );
    let started = Instant::now();
    let text = loop {
        let out = cli(url, tenant, &["explain", &wide.to_string()]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if text.contains("Unschedulable") {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no Kubernetes reason in explain: {text}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(text.contains("Insufficient cpu"), "{text}");
    let doc = job(url, tenant, wide);
    assert_eq!(doc["state"], "Dispatched", "{doc}");
    cli(url, tenant, &["cancel", &wide.to_string()]);
}

#[test]
fn the_capacity_follows_the_nodes_and_a_killed_agent_resumes_its_job_without_a_second() {
    let Some(state) = cluster("kubernetes capacity and resume") else {
        return;
    };
    let namespace = "suanwang-test-10";
    let pool = unique("resume");
    let _a = Node::start(&state, &format!("{pool}-a"), &pool, 2);
    // Leases long enough to outlive the agent's restart.
    let plane = Plane::start("k8s-resume", &["--lease-ttl", "30s"]);
    let (url, operator, tenant) = (&plane.url, &plane.operator, &plane.tenant);
    let (mut first, _) = k8s_agent(url, operator, &state, namespace, &pool);
    wait_cpu(url, operator, 2);
    let agents = {
        let b = Node::start(&state, &format!("{pool}-b"), &pool, 3);
        let agents = wait_cpu(url, operator, 5);
        drop(b);
        agents
    };
    assert_eq!(
        agents.as_array().unwrap().last().unwrap()["telemetry"]["capacity"]["a800"],
        4,
        "{agents}"
    );
    wait_cpu(url, operator, 2);

    let id = submit(url, tenant, &["sh", "-c", "sleep 4; echo finished"]);
    wait_for(url, tenant, id, 60, |j| j["state"] == "Running");
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let (_second, _) = k8s_agent(url, operator, &state, namespace, &pool);
    let done = wait_for(url, tenant, id, 60, |j| j["state"] == "Succeeded");
    assert_eq!(done["attempt"], 1, "the same lease went on: {done}");
    assert_eq!(
        kube_jobs(&state, namespace, id).len(),
        1,
        "the restarted agent made no second Job"
    );
    let seen = outcomes(url, tenant, id);
    assert!(!seen.iter().any(|o| o == "lost"), "{seen:?}");
}
