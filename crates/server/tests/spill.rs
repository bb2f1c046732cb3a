//! Ordered spill-over over a real socket and a real SQLite database: a job
//! with an ordered list lands on its first feasible choice, and its
//! explanation names the choices passed over and why; a bad choice is refused
//! naming its place in the list; an admin's tenant default with an own
//! provider sends the tenant's jobs to that provider's sites first.

use reqwest::StatusCode;
use serde_json::{Value, json};
use suanwang_server::scheduler::Scheduler;
mod common;

use common::tenants::{Net, now, start};

impl Net {
    async fn submit_json(&self, token: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.http.post(format!("{}/v1/jobs", self.base)).json(&body),
            token,
        )
        .await
    }

    async fn submit_ok(&self, token: &str, body: Value) -> i64 {
        let (status, job) = self.submit_json(token, body).await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        job["id"].as_i64().unwrap()
    }

    async fn put_spill(&self, tenant: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let url = format!("{}/v1/tenants/{tenant}/spill", self.base);
        self.send(self.http.put(url).json(&body), token).await
    }

    /// The job's last `placed` decision.
    async fn placed(&self, token: &str, id: i64) -> Value {
        let doc = self.get(&format!("/v1/jobs/{id}/explain"), token).await;
        assert_eq!(doc["job"]["state"], "Placed", "{doc}");
        doc["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|d| d["outcome"] == "placed")
            .cloned()
            .unwrap_or_else(|| panic!("no placed decision: {doc}"))
    }
}

/// A small job that must end within two hours of its submission.
fn urgent(spill: Value) -> Value {
    json!({
        "demand": [{"class": "cpu", "count": 8}],
        "duration": "1h",
        "deadline": "2h",
        "delayable": false,
        "origin": "chongqing",
        "spill": spill,
        "command": ["true"]
    })
}

#[tokio::test]
async fn a_job_lands_on_its_first_feasible_choice_and_names_those_passed_over() {
    let net = start("spill", "order").await;
    let scheduler = Scheduler::new(suanwang_topology::builtin("cn-west").unwrap(), now());
    // A provider that owns the Chengdu site.
    let (status, body) = net
        .send(
            net.http
                .put(format!("{}/v1/providers/tianfu", net.base))
                .json(&json!({"sites": ["cd-tianfu"]})),
            &net.admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Bad lists are refused, naming the choice at fault.
    for (spill, field, words) in [
        (json!(["site:atlantis"]), "/spill/0", "no site \"atlantis\""),
        (
            json!(["anywhere", "provider:nobody"]),
            "/spill/1",
            "no provider",
        ),
        (json!(["jurisdiction:mars"]), "/spill/0", "jurisdiction"),
        (json!(["region:west"]), "/spill/0", "expected site:ID"),
        (json!(["site:hami", "site:hami"]), "/spill/1", "twice"),
    ] {
        let (status, body) = net.submit_json(&net.acme, urgent(spill.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{spill}: {body}");
        assert_eq!(body["field"], field, "{spill}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(words),
            "{spill}: {body}"
        );
    }
    let mut pinned = urgent(json!(["site:hami"]));
    pinned["site"] = json!("hami");
    let (status, body) = net.submit_json(&net.acme, pinned).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "/spill", "{body}");

    // Another tenant fills the first choice for ten hours.
    let filler = net
        .submit_ok(
            &net.beta,
            json!({
                "demand": [{"class": "cpu", "count": 2048}],
                "duration": "10h",
                "delayable": false,
                "site": "cq-liangjiang",
                "command": ["true"]
            }),
        )
        .await;
    scheduler.pass(&net.store, now()).await.unwrap();
    let doc = net.get(&format!("/v1/jobs/{filler}"), &net.beta).await;
    assert_eq!(doc["site"], "cq-liangjiang", "{doc}");

    // "My own site, then Chengdu's provider, then anywhere": the own site
    // cannot meet the deadline, so the job goes to Chengdu, the second choice.
    let spilled = net
        .submit_ok(
            &net.acme,
            urgent(json!([
                " site:cq-liangjiang",
                "provider:tianfu",
                "anywhere"
            ])),
        )
        .await;
    // Its first choice is free: it stays there.
    let first = net
        .submit_ok(&net.acme, urgent(json!(["site:guian", "anywhere"])))
        .await;
    // The same job without a list goes where the policy likes best.
    let plain = net.submit_ok(&net.beta, urgent(json!([]))).await;
    scheduler.pass(&net.store, now()).await.unwrap();

    let doc = net.get(&format!("/v1/jobs/{plain}"), &net.beta).await;
    let best = doc["site"].as_str().unwrap().to_string();
    assert!(
        !["cq-liangjiang", "cd-tianfu", "guian"].contains(&best.as_str()),
        "the policy alone prefers another site: {doc}"
    );
    let doc = net.get(&format!("/v1/jobs/{spilled}"), &net.acme).await;
    assert_eq!(doc["site"], "cd-tianfu", "{doc}");
    assert_eq!(
        doc["spec"]["spill"],
        json!(["site:cq-liangjiang", "provider:tianfu", "anywhere"]),
        "stored in its one spelling"
    );
    let placed = net.placed(&net.acme, spilled).await;
    assert_eq!(placed["spill_choice"], "provider:tianfu", "{placed}");
    let passed = placed["passed_over"].as_array().unwrap();
    assert_eq!(passed.len(), 1, "{placed}");
    assert_eq!(passed[0]["choice"], "site:cq-liangjiang", "{placed}");
    let sites = passed[0]["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 1, "{placed}");
    assert_eq!(sites[0]["site"], "cq-liangjiang");
    assert_eq!(sites[0]["reason"], "deadline", "{placed}");
    // It could start there only once the filler ends.
    let filler_end = net.get(&format!("/v1/jobs/{filler}"), &net.beta).await["start_at"]
        .as_i64()
        .unwrap()
        + 36_000;
    let until = sites[0]["until"].as_i64().unwrap();
    assert!(
        (filler_end - 900..=filler_end + 900).contains(&until),
        "earliest start there {until}, filler ends {filler_end}"
    );

    let doc = net.get(&format!("/v1/jobs/{first}"), &net.acme).await;
    assert_eq!(doc["site"], "guian", "{doc}");
    let placed = net.placed(&net.acme, first).await;
    assert_eq!(placed["spill_choice"], "site:guian", "{placed}");
    assert!(placed.get("passed_over").is_none(), "{placed}");
    // A job without a list says nothing of spill-over.
    let placed = net.placed(&net.beta, filler).await;
    assert!(placed.get("spill_choice").is_none(), "{placed}");
}

#[tokio::test]
async fn a_providers_own_tenant_gets_first_call_on_its_sites() {
    let net = start("spill", "own").await;
    let scheduler = Scheduler::new(suanwang_topology::builtin("cn-west").unwrap(), now());
    let (status, body) = net
        .send(
            net.http
                .put(format!("{}/v1/providers/cqco", net.base))
                .json(&json!({"sites": ["cq-liangjiang"]})),
            &net.admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Only admins set defaults; bad input names its field.
    let (status, body) = net
        .put_spill("acme", &net.acme, json!({"own_provider": "cqco"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = net
        .put_spill("acme", &net.admin, json!({"own_provider": "nobody"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "/own_provider", "{body}");
    let (status, body) = net
        .put_spill("acme", &net.admin, json!({"spill": ["anywhere", "site:x"]}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "/spill/1", "{body}");
    let (status, body) = net
        .put_spill("nobody", &net.admin, json!({"spill": []}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = net
        .put_spill("acme", &net.admin, json!({"own_provider": "cqco"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["effective"], json!(["provider:cqco", "anywhere"]));
    // A tenant sees its own default only.
    let mine = net.get("/v1/spills", &net.acme).await;
    assert_eq!(mine, json!([body]));
    let theirs = net.get("/v1/spills", &net.beta).await;
    assert_eq!(theirs[0]["tenant"], "beta");
    assert_eq!(theirs[0]["effective"], json!([]));

    // Acme's jobs that name no list go to its provider's site first; beta's
    // go wherever the policy likes best; acme's own list wins over its default.
    let plain = json!({
        "demand": [{"class": "cpu", "count": 4}],
        "duration": "1h",
        "origin": "chongqing",
        "command": ["true"]
    });
    let own = net.submit_ok(&net.acme, plain.clone()).await;
    let other = net.submit_ok(&net.beta, plain.clone()).await;
    let mut listed = plain.clone();
    listed["spill"] = json!(["site:guian"]);
    let explicit = net.submit_ok(&net.acme, listed).await;
    scheduler.pass(&net.store, now()).await.unwrap();
    let doc = net.get(&format!("/v1/jobs/{own}"), &net.acme).await;
    assert_eq!(doc["site"], "cq-liangjiang", "{doc}");
    let placed = net.placed(&net.acme, own).await;
    assert_eq!(placed["spill_choice"], "provider:cqco", "{placed}");
    let placed = net.placed(&net.beta, other).await;
    assert!(placed.get("spill_choice").is_none(), "{placed}");
    let doc = net.get(&format!("/v1/jobs/{other}"), &net.beta).await;
    assert_ne!(
        doc["site"], "cq-liangjiang",
        "the policy alone prefers another site: {doc}"
    );
    let doc = net.get(&format!("/v1/jobs/{explicit}"), &net.acme).await;
    assert_eq!(doc["site"], "guian", "{doc}");

    // Clearing the default: acme's jobs go where the policy likes best again.
    let (status, body) = net.put_spill("acme", &net.admin, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["effective"], json!([]));
    let audited = net.get("/v1/audit?action=spill.set", &net.admin).await;
    assert_eq!(
        audited["entries"].as_array().map(Vec::len),
        Some(2),
        "{audited}"
    );
}
