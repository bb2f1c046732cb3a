//! Per-tenant quotas over a real socket and a real SQLite database: admins set
//! them (tenants may not; a bad class or value is refused naming its field); a
//! tenant with `cpu=4` that submits ten 1-core jobs never has more than 4 cores
//! booked at once, its later jobs wait their turn in time, and a job larger than
//! its quota waits with the reason `quota`. Another tenant is not capped.

use reqwest::StatusCode;
use serde_json::{Value, json};
use suanwang_server::scheduler::Scheduler;
mod common;

use common::tenants::{Net, now, start};

impl Net {
    async fn put_quota(&self, tenant: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let url = format!("{}/v1/tenants/{tenant}/quota", self.base);
        self.send(self.http.put(url).json(&body), token).await
    }

    async fn submit(&self, token: &str, cores: u32) -> i64 {
        let body = json!({
            "demand": [{"class": "cpu", "count": cores}],
            "duration": "1h",
            "delayable": false,
            "command": ["true"]
        });
        let (status, job) = self
            .send(
                self.http.post(format!("{}/v1/jobs", self.base)).json(&body),
                token,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        job["id"].as_i64().unwrap()
    }

    /// The most cores `ids` hold at any one instant, from their placements.
    async fn peak_cores(&self, token: &str, ids: &[i64]) -> (u64, usize) {
        let mut spans = Vec::new();
        for id in ids {
            let doc = self.get(&format!("/v1/jobs/{id}"), token).await;
            if matches!(
                doc["state"].as_str(),
                Some("Placed" | "Dispatched" | "Running")
            ) {
                let start = doc["start_at"].as_i64().unwrap();
                let cores = doc["spec"]["demand"][0]["count"].as_u64().unwrap();
                spans.push((start, start + 3600, cores));
            }
        }
        // The peak of a sum of intervals is reached at some interval's start.
        let peak = spans
            .iter()
            .map(|&(at, _, _)| {
                spans
                    .iter()
                    .filter(|&&(s, e, _)| s <= at && at < e)
                    .map(|&(_, _, c)| c)
                    .sum::<u64>()
            })
            .max()
            .unwrap_or(0);
        (peak, spans.len())
    }
}

#[tokio::test]
async fn a_tenant_never_holds_more_than_its_quota() {
    let net = start("quota", "cap").await;
    // Only admins set quotas; bad input names its field.
    let (status, body) = net
        .put_quota("acme", &net.acme, json!({"caps": {"cpu": 4}}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = net
        .put_quota("acme", &net.admin, json!({"caps": {"warp-drive": 4}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "/caps/warp-drive", "{body}");
    let (status, body) = net
        .put_quota("acme", &net.admin, json!({"caps": {"cpu": -1}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "/caps/cpu", "{body}");
    let (status, body) = net
        .put_quota(
            "acme",
            &net.admin,
            json!({"site": "atlantis", "caps": {"cpu": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "/site", "{body}");
    let (status, body) = net
        .put_quota("nobody", &net.admin, json!({"caps": {"cpu": 1}}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = net
        .put_quota("acme", &net.admin, json!({"caps": {"CPU": 4}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body[0]["class"], "cpu", "{body}");
    assert_eq!(body[0]["units"], 4, "{body}");
    // A tenant sees its own quotas; another tenant sees none of them.
    assert_eq!(net.get("/v1/quotas", &net.acme).await, body);
    assert_eq!(net.get("/v1/quotas", &net.beta).await, json!([]));

    let mut acme = Vec::new();
    for _ in 0..10 {
        acme.push(net.submit(&net.acme, 1).await);
    }
    let mut beta = Vec::new();
    for _ in 0..10 {
        beta.push(net.submit(&net.beta, 1).await);
    }
    let scheduler = Scheduler::new(suanwang_topology::builtin("cn-west").unwrap(), now());
    scheduler.pass(&net.store, now()).await.unwrap();
    let (peak, placed) = net.peak_cores(&net.acme, &acme).await;
    assert!(
        peak <= 4,
        "acme holds {peak} cores at once past its quota of 4"
    );
    assert_eq!(peak, 4, "the quota is used, not left idle");
    assert_eq!(placed, 10, "every job fits the quota at some later start");
    // Beta has no quota: its ten jobs all start at once.
    let (peak, _) = net.peak_cores(&net.beta, &beta).await;
    assert_eq!(peak, 10);

    // Placed work counts against the quota in later passes: a job larger than
    // what is left at any time, and one larger than the quota, both wait.
    let more = net.submit(&net.acme, 4).await;
    let big = net.submit(&net.acme, 5).await;
    scheduler.pass(&net.store, now()).await.unwrap();
    let (peak, _) = net
        .peak_cores(&net.acme, &[acme.clone(), vec![more, big]].concat())
        .await;
    assert!(peak <= 4, "acme holds {peak} cores at once");
    let doc = net.get(&format!("/v1/jobs/{big}"), &net.acme).await;
    assert_eq!(doc["state"], "Pending", "{doc}");
    let explain = net.get(&format!("/v1/jobs/{big}/explain"), &net.acme).await;
    let reason = &explain["decisions"][0]["reason"];
    assert_eq!(reason["reason"], "quota", "{explain}");

    // Raising the quota lets the big job in.
    let (status, body) = net
        .put_quota("acme", &net.admin, json!({"caps": {"cpu": 64}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    scheduler.pass(&net.store, now()).await.unwrap();
    let doc = net.get(&format!("/v1/jobs/{big}"), &net.acme).await;
    assert_eq!(doc["state"], "Placed", "{doc}");
}
