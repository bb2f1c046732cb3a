//! The Kubernetes executor on its own, against a real API server
//! (`tools/start-kubernetes.sh`), under the agent's RBAC role: a retried start
//! of one lease finds the Job it made instead of making a second; a preempted
//! job's pod is deleted with the grace asked; a job the cluster cannot express
//! is refused before anything is made.
//!
//! Runs when `SUANWANG_TEST_KUBERNETES` names the script's state directory;
//! skipped otherwise unless `SUANWANG_REQUIRE_KUBERNETES=1` (CI).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use suanwang_agent::kubernetes::{KubeOptions, Kubernetes};
use suanwang_agent::{Assignment, Event, Executor};
use suanwang_api::{DemandIn, DurationValue, JobSubmission};
use tokio::sync::mpsc;

const NAMESPACE: &str = "suanwang-test-8";

fn cluster(test: &str) -> Option<PathBuf> {
    match std::env::var("SUANWANG_TEST_KUBERNETES") {
        Ok(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => {
            assert!(
                std::env::var("SUANWANG_REQUIRE_KUBERNETES").as_deref() != Ok("1"),
                "SUANWANG_REQUIRE_KUBERNETES=1 but SUANWANG_TEST_KUBERNETES is not set"
            );
            eprintln!("skipping {test}: set SUANWANG_TEST_KUBERNETES");
            None
        }
    }
}

/// A stand-in node for this test's pool, removed when dropped.
struct Node(std::process::Child);

impl Node {
    fn start(state: &Path, pool: &str) -> Node {
        let child = Command::new(state.join("bin/suanwang-kube-standin"))
            .arg("--kubeconfig")
            .arg(state.join("admin.kubeconfig"))
            .args(["--node", pool, "--cpu", "2", "--memory", "4Gi"])
            .args(["--label", &format!("suanwang.io/pool={pool}")])
            .arg("--workdir")
            .arg(std::env::temp_dir().join(format!("suanwang-k8s-agent-{pool}")))
            .stdin(Stdio::null())
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("the stand-in kubelet starts");
        Node(child)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
    }
}

async fn executor(state: &Path, pool: &str) -> Kubernetes {
    let mut options = KubeOptions::new("hami");
    options.kubeconfig = Some(state.join("agent.kubeconfig"));
    options.namespace = Some(NAMESPACE.into());
    options
        .node_selector
        .insert("suanwang.io/pool".into(), pool.into());
    let executor = Kubernetes::connect(options).await.expect("connects");
    // The node shows in the capacity once the watch has it.
    let started = Instant::now();
    while executor.capacity().get("cpu") != Some(&2) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the pool's node never counted: {:?}",
            executor.capacity()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    executor
}

fn assignment(job: i64, token: i64, command: &[&str]) -> Assignment {
    let mut spec = JobSubmission::new(
        vec![DemandIn {
            class: "cpu".into(),
            count: 1,
        }],
        DurationValue::Seconds(120),
    );
    spec.command = command.iter().map(|s| s.to_string()).collect();
    Assignment {
        job,
        token,
        tenant: Some(1),
        spec,
    }
}

async fn admin(state: &Path) -> kube::Client {
    let file = kube::config::Kubeconfig::read_from(state.join("admin.kubeconfig")).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    kube::Client::try_from(config).unwrap()
}

async fn next(events: &mut mpsc::UnboundedReceiver<Event>) -> Event {
    tokio::time::timeout(Duration::from_secs(60), events.recv())
        .await
        .expect("an event within a minute")
        .expect("the channel is open")
}

/// A job id unlikely to meet another run's in the shared namespace.
fn job_id() -> i64 {
    i64::from(std::process::id()) * 100
}

#[tokio::test]
async fn a_retried_start_finds_the_job_it_made_and_a_preempted_pod_is_deleted() {
    let Some(state) = cluster("kubernetes executor") else {
        return;
    };
    let pool = format!("agent-{}", std::process::id());
    let _node = Node::start(&state, &pool);
    let k8s = executor(&state, &pool).await;
    let jobs: Api<Job> = Api::namespaced(admin(&state).await, NAMESPACE);
    let pods: Api<Pod> = Api::namespaced(admin(&state).await, NAMESPACE);

    // The same lease started twice (a retry after a lost answer): one Job.
    let id = job_id();
    let job = assignment(id, 1, &["sh", "-c", "exit 0"]);
    let (tx, mut events) = mpsc::unbounded_channel();
    k8s.start(&job, tx.clone()).await.expect("starts");
    k8s.start(&job, tx.clone())
        .await
        .expect("a retried start finds its Job");
    let listed = jobs
        .list(&ListParams::default().labels(&format!("suanwang.io/job={id}")))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1, "one Job for one lease");
    loop {
        match next(&mut events).await {
            Event::Finished { job, exit_code, .. } => {
                assert_eq!((job, exit_code), (id, 0));
                break;
            }
            Event::Started(job) | Event::Queued { job, .. } => assert_eq!(job, id),
        }
    }

    // Preempted: the pod gets SIGTERM and its grace, then it and the Job go.
    let id = job_id() + 1;
    let job = assignment(id, 1, &["sleep", "300"]);
    k8s.start(&job, tx.clone()).await.expect("starts");
    while !matches!(next(&mut events).await, Event::Started(j) if j == id) {}
    k8s.preempt(id, Duration::from_secs(1)).await;
    let started = Instant::now();
    loop {
        let selector = ListParams::default().labels(&format!("suanwang.io/job={id}"));
        let left = jobs.list(&selector).await.unwrap().items.len()
            + pods.list(&selector).await.unwrap().items.len();
        if left == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the preempted job's Job or pod is still there"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(events.try_recv().is_err(), "no event follows a preemption");

    // A demand this agent maps to no resource is refused up front.
    let mut job = assignment(job_id() + 2, 1, &["true"]);
    job.spec.demand.push(DemandIn {
        class: "h20".into(),
        count: 1,
    });
    let refused = k8s.start(&job, tx).await.unwrap_err();
    assert!(
        refused.contains("maps no Kubernetes resource to h20"),
        "{refused}"
    );
}
