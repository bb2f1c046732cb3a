//! Why a job waits, live, over a real socket and SQLite: a job behind another
//! that holds a site's every GPU past the horizon waits on `capacity` there;
//! when an admin drains the site its reason becomes `drained`, and when the
//! site is undrained `capacity` again. The history keeps each change (newest
//! first) and a pass in an unchanged world writes none; `GET /v1/jobs` gives
//! the one-word code and `GET /v1/jobs/{id}/explain` the per-site detail.

mod common;

use common::tenants::{Net, now, start};
use serde_json::{Value, json};
use suanwang_server::scheduler::Scheduler;

impl Net {
    async fn post(&self, path: &str, token: &str, body: Value) -> Value {
        let (status, body) = self
            .send(
                self.http.post(format!("{}{path}", self.base)).json(&body),
                token,
            )
            .await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }
    async fn gpus_on_hami(&self, duration: &str) -> i64 {
        let body = json!({"demand": [{"class": "h20", "count": 64}], "duration": duration,
            "site": "hami", "delayable": false});
        self.post("/v1/jobs", &self.acme, body).await["id"]
            .as_i64()
            .unwrap()
    }
    /// The job's current reason code, and each site's (site, reason) pairs.
    async fn why(&self, job: i64) -> (Value, Vec<(String, String)>, Vec<String>) {
        let explain = self
            .get(&format!("/v1/jobs/{job}/explain"), &self.acme)
            .await;
        let wait = &explain["wait"];
        let sites = wait["sites"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|s| {
                assert!(s["detail"].as_str().is_some_and(|d| !d.is_empty()), "{s}");
                (
                    s["site"].as_str().unwrap().to_string(),
                    s["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let history = explain["wait_history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["reason"].as_str().unwrap().to_string())
            .collect();
        (wait["reason"].clone(), sites, history)
    }
}

#[tokio::test]
async fn a_jobs_reason_follows_the_world_and_its_history_keeps_each_change() {
    let net = start("why", "drain").await;
    let scheduler = Scheduler::new(suanwang_topology::builtin("cn-west").unwrap(), now());
    // Every H20 at hami for 30 days: past the 7-day horizon.
    let hog = net.gpus_on_hami("30d").await;
    scheduler.pass(&net.store, now()).await.unwrap();
    let job = net.gpus_on_hami("1h").await;
    let (_, history) = {
        let (reason, _, history) = net.why(job).await;
        assert!(reason.is_null(), "not weighed yet: {reason}");
        ((), history)
    };
    assert!(history.is_empty());
    let listed = net.get("/v1/jobs?state=Pending", &net.acme).await;
    assert_eq!(listed["jobs"][0]["wait"], "not-considered", "{listed}");

    let report = scheduler.pass(&net.store, now()).await.unwrap();
    assert_eq!(report.waiting, 1, "{report:?}");
    let (reason, sites, history) = net.why(job).await;
    assert_eq!(reason, "no-capacity-in-horizon");
    assert_eq!(sites, vec![("hami".to_string(), "capacity".to_string())]);
    assert_eq!(history, vec!["no-capacity-in-horizon"]);
    let listed = net.get("/v1/jobs?state=Pending", &net.acme).await;
    assert_eq!(listed["jobs"][0]["id"], job);
    assert_eq!(listed["jobs"][0]["wait"], "no-capacity-in-horizon");
    let one = net.get(&format!("/v1/jobs/{job}"), &net.acme).await;
    assert_eq!(one["wait"], "no-capacity-in-horizon");

    // The same world: nothing new is written.
    scheduler.pass(&net.store, now()).await.unwrap();
    assert_eq!(net.why(job).await.2.len(), 1);

    // Drained: the hog goes back to wait too, and the job's reason is the drain.
    net.post(
        "/v1/sites/hami/drain",
        &net.admin,
        json!({"reason": "power work"}),
    )
    .await;
    let report = scheduler.pass(&net.store, now()).await.unwrap();
    assert_eq!(report.requeued, 1, "{report:?}");
    let (reason, sites, history) = net.why(job).await;
    assert_eq!(reason, "sites-unavailable");
    assert_eq!(sites, vec![("hami".to_string(), "drained".to_string())]);
    assert_eq!(history, vec!["sites-unavailable", "no-capacity-in-horizon"]);
    assert_eq!(net.why(hog).await.0, "sites-unavailable");

    // Undrained: the hog is placed again first, and the job waits on capacity.
    net.post("/v1/sites/hami/undrain", &net.admin, json!({}))
        .await;
    scheduler.pass(&net.store, now()).await.unwrap();
    assert_eq!(
        net.get(&format!("/v1/jobs/{hog}"), &net.acme).await["state"],
        "Placed"
    );
    let (reason, sites, history) = net.why(job).await;
    assert_eq!(reason, "no-capacity-in-horizon");
    assert_eq!(sites, vec![("hami".to_string(), "capacity".to_string())]);
    assert_eq!(
        history,
        vec![
            "no-capacity-in-horizon",
            "sites-unavailable",
            "no-capacity-in-horizon"
        ]
    );
    // A placed job has no current reason; its history stays.
    let (reason, _, history) = net.why(hog).await;
    assert!(reason.is_null());
    assert_eq!(history, vec!["sites-unavailable"]);
}
