//! Weighted fair share over a real socket and a real SQLite database: admins
//! set weights and groups (tenants may not; a bad weight or a loop is refused
//! naming its field); two tenants that flood one site at weights 1:3 get its
//! first slot in 1:3, whichever submitted first; with fair share off, the first
//! to submit takes it all.

use reqwest::StatusCode;
use serde_json::{Value, json};
use suanwang_server::scheduler::{FairSharePolicy, Scheduler};
mod common;

use common::tenants::{Net, now, start};

impl Net {
    async fn put_share(&self, tenant: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let url = format!("{}/v1/tenants/{tenant}/share", self.base);
        self.send(self.http.put(url).json(&body), token).await
    }

    /// `n` jobs of 8 A800 for 4 hours at hami (128 A800: 16 such jobs at once).
    async fn flood(&self, token: &str, n: usize) -> Vec<i64> {
        let body = json!({
            "demand": [{"class": "a800", "count": 8}],
            "duration": "4h",
            "delayable": false,
            "site": "hami",
            "command": ["true"]
        });
        let mut ids = Vec::new();
        for _ in 0..n {
            let (status, job) = self
                .send(
                    self.http.post(format!("{}/v1/jobs", self.base)).json(&body),
                    token,
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{job}");
            ids.push(job["id"].as_i64().unwrap());
        }
        ids
    }

    /// The placements' starts of `ids`.
    async fn starts(&self, token: &str, ids: &[i64]) -> Vec<i64> {
        let mut starts = Vec::new();
        for id in ids {
            let doc = self.get(&format!("/v1/jobs/{id}"), token).await;
            assert_eq!(doc["state"], "Placed", "{doc}");
            starts.push(doc["start_at"].as_i64().unwrap());
        }
        starts
    }
}

/// How many of `a` and of `b` start first (at the earliest start of all).
fn first_slot(a: &[i64], b: &[i64]) -> (usize, usize) {
    let first = *a.iter().chain(b).min().unwrap();
    (
        a.iter().filter(|s| **s == first).count(),
        b.iter().filter(|s| **s == first).count(),
    )
}

#[tokio::test]
async fn flooding_tenants_share_a_site_by_their_weights() {
    let net = start("fairshare", "weights").await;
    // Only admins set shares; bad input names its field.
    let (status, body) = net.put_share("acme", &net.acme, json!({"weight": 5})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    for bad in [
        json!({"weight": 0}),
        json!({"weight": -1}),
        json!({"weight": 1e7}),
    ] {
        let (status, body) = net.put_share("acme", &net.admin, bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["field"], "/weight", "{body}");
    }
    let (status, body) = net
        .put_share("acme", &net.admin, json!({"weight": 1, "parent": "nobody"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "/parent", "{body}");
    let (status, body) = net
        .put_share("acme", &net.admin, json!({"weight": 1, "parent": "acme"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = net
        .put_share("nobody", &net.admin, json!({"weight": 1}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // A loop is refused: beta under acme, then acme under beta.
    let (status, body) = net
        .put_share("beta", &net.admin, json!({"weight": 3, "parent": "acme"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["parent"], "acme", "{body}");
    let (status, body) = net
        .put_share("acme", &net.admin, json!({"weight": 1, "parent": "beta"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "/parent", "{body}");
    assert!(body["message"].as_str().unwrap().contains("loop"), "{body}");
    // Back to the top level: acme 1, beta 3.
    let (status, body) = net
        .put_share("beta", &net.admin, json!({"weight": 3}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["entitled"], 0.75, "{body}");
    // A tenant sees its own share only.
    let own = net.get("/v1/shares", &net.acme).await;
    assert_eq!(own.as_array().unwrap().len(), 1, "{own}");
    assert_eq!(own[0]["tenant"], "acme");
    assert_eq!(own[0]["entitled"], 0.25);

    // Acme floods first, then beta: fair share still gives beta three of every
    // four slots at the start.
    let acme = net.flood(&net.acme, 32).await;
    let beta = net.flood(&net.beta, 32).await;
    let scheduler = Scheduler::new(suanwang_topology::builtin("cn-west").unwrap(), now());
    scheduler.pass(&net.store, now()).await.unwrap();
    let (a, b) = first_slot(
        &net.starts(&net.acme, &acme).await,
        &net.starts(&net.beta, &beta).await,
    );
    assert_eq!(a + b, 16, "hami's 128 A800 hold 16 jobs at once");
    assert!((3..=5).contains(&a), "acme:beta = {a}:{b}, weights 1:3");
    // The audit log says who set the weights.
    let audit = net.get("/v1/audit?action=share.set", &net.admin).await;
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "two shares were set: {audit}");
    assert!(
        entries.iter().all(|e| e["action"] == "share.set"),
        "{audit}"
    );
}

#[tokio::test]
async fn without_fair_share_the_first_to_flood_takes_the_site() {
    let net = start("fairshare", "off").await;
    let (status, body) = net
        .put_share("beta", &net.admin, json!({"weight": 3}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let acme = net.flood(&net.acme, 32).await;
    let beta = net.flood(&net.beta, 32).await;
    let scheduler = Scheduler::new(suanwang_topology::builtin("cn-west").unwrap(), now()).sharing(
        FairSharePolicy {
            half_life_secs: None,
        },
    );
    scheduler.pass(&net.store, now()).await.unwrap();
    let (a, b) = first_slot(
        &net.starts(&net.acme, &acme).await,
        &net.starts(&net.beta, &beta).await,
    );
    assert_eq!(
        (a, b),
        (16, 0),
        "priority order alone: first come, first served"
    );
}

/// Past usage, saved by an earlier scheduler: a tenant that used half the
/// network lately waits behind one that used nothing; the same usage many
/// half-lives ago is forgotten.
#[tokio::test]
async fn past_usage_counts_and_decays_with_the_half_life() {
    use suanwang_store::Store;
    let half_life = 3600;
    // Acme held half the network on average until now (usage = share × half-life / ln 2).
    let heavy = 0.5 * half_life as f64 / std::f64::consts::LN_2;
    for (name, as_of, expect_acme) in [
        ("recent", now(), 0..=1),
        ("forgotten", now() - 40 * half_life, 7..=9),
    ] {
        let net = start("fairshare", name).await;
        let acme_id = net
            .store
            .tenants()
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.name == "acme")
            .unwrap()
            .id;
        net.store
            .save_usage(&[(acme_id, heavy)], as_of)
            .await
            .unwrap();
        let shown = net.get("/v1/shares", &net.admin).await;
        assert_eq!(shown[0]["tenant"], "acme", "{shown}");
        let acme = net.flood(&net.acme, 32).await;
        let beta = net.flood(&net.beta, 32).await;
        let scheduler = Scheduler::new(suanwang_topology::builtin("cn-west").unwrap(), now())
            .sharing(FairSharePolicy {
                half_life_secs: Some(half_life),
            });
        scheduler.pass(&net.store, now()).await.unwrap();
        let (a, b) = first_slot(
            &net.starts(&net.acme, &acme).await,
            &net.starts(&net.beta, &beta).await,
        );
        assert_eq!(a + b, 16);
        assert!(
            expect_acme.contains(&a),
            "{name}: acme:beta = {a}:{b} at equal weights"
        );
    }
}
