//! The shared store test suite: every backend must pass the same checks.
//! [`store_test_suite!`](crate::store_test_suite) instantiates it for a backend.

use crate::{Actor, JobFilter, JobState, Role, Store, StoreError, TokenRecord, Transition};

/// Runs one SQL statement on the store's database as given, bypassing the
/// store's methods and the audit log: the suite's stand-in for someone with
/// write access to the database who edits the log by hand.
pub trait Tamper {
    /// Runs `sql`; returns the rows it changed.
    fn tamper(&self, sql: &str) -> impl std::future::Future<Output = crate::Result<u64>> + Send;

    /// Another process writing to the same database: the same pool, but its
    /// own (at first empty) view of the audit head.
    fn other_writer(&self) -> Self;
}

/// Verifies the store's whole audit log; panics naming the finding unless it
/// is intact. Returns the number of entries.
pub async fn assert_chain_intact<S: Store>(store: &S) -> u64 {
    let verdict = crate::audit::verify(store, |_| {}).await.unwrap();
    assert_eq!(verdict.finding, None, "the audit chain is intact");
    verdict.checked
}

/// The actor of the suite's changes.
fn sys() -> Actor {
    Actor::system()
}

/// Tenants are created once; tokens are found by digest with their role.
pub async fn tenants_and_tokens<S: Store>(store: &S) {
    let a = store.tenant("acme", 1).await.unwrap();
    let again = store.tenant("acme", 2).await.unwrap();
    assert_eq!(a, again, "a tenant is created once");
    let b = store.tenant("beta", 3).await.unwrap();
    assert_ne!(a.id, b.id);
    let token = TokenRecord {
        digest: "ab12".repeat(16),
        tenant_id: Some(a.id),
        role: Role::Tenant,
        provider_id: None,
        site: None,
    };
    store.insert_token(&sys(), &token, 4).await.unwrap();
    assert_eq!(
        store.token(&token.digest).await.unwrap(),
        Some(token.clone())
    );
    assert_eq!(store.token("00").await.unwrap(), None);
    assert!(
        store.insert_token(&sys(), &token, 5).await.is_err(),
        "a digest is stored once"
    );
}

/// A provider is created once and owns the sites it is given, no site twice;
/// an agent's token keeps its site and issuing provider.
pub async fn providers_own_sites_and_agent_tokens_name_one<S: Store>(store: &S) {
    let west = store.provider(&sys(), "west-dc", 1).await.unwrap();
    assert_eq!(store.provider(&sys(), "west-dc", 2).await.unwrap(), west);
    assert!(west.sites.is_empty());
    let east = store.provider(&sys(), "east-dc", 3).await.unwrap();
    let given = ["zhongwei".to_string(), "hami".into(), "hami".into()];
    let west = store
        .set_provider_sites(&sys(), west.id, &given, 9)
        .await
        .unwrap();
    assert_eq!(west.sites, ["hami", "zhongwei"], "sorted, once each");
    match store
        .set_provider_sites(&sys(), east.id, &["guian".into(), "hami".into()], 9)
        .await
    {
        Err(StoreError::SiteTaken { site, owner }) => {
            assert_eq!((site.as_str(), owner.as_str()), ("hami", "west-dc"));
        }
        other => panic!("a site has one owner: {other:?}"),
    }
    assert!(
        store.provider_sites(east.id).await.unwrap().is_empty(),
        "a refused change changes nothing"
    );
    assert!(matches!(
        store.set_provider_sites(&sys(), 9999, &[], 9).await,
        Err(StoreError::NotFound { .. })
    ));
    let west = store
        .set_provider_sites(&sys(), west.id, &["hami".into()], 9)
        .await
        .unwrap();
    store
        .set_provider_sites(&sys(), east.id, &["zhongwei".into()], 9)
        .await
        .unwrap();
    let all = store.providers().await.unwrap();
    let listed: Vec<(&str, Vec<String>)> = all
        .iter()
        .map(|p| (p.name.as_str(), p.sites.clone()))
        .collect();
    assert_eq!(
        listed,
        [
            ("west-dc", vec!["hami".to_string()]),
            ("east-dc", vec!["zhongwei".to_string()])
        ]
    );
    let agent = TokenRecord {
        digest: "cd34".repeat(16),
        tenant_id: None,
        role: Role::Agent,
        provider_id: Some(west.id),
        site: Some("hami".into()),
    };
    store.insert_token(&sys(), &agent, 5).await.unwrap();
    assert_eq!(
        store.token(&agent.digest).await.unwrap(),
        Some(agent.clone())
    );
    assert_eq!(store.tokens().await.unwrap()[0].record, agent);
    assert_eq!(
        store
            .revoke_token(&sys(), &agent.digest[..16], 9)
            .await
            .unwrap(),
        agent
    );
}

/// A retried submit with the same key returns the same job; other tenants and
/// other keys get new jobs.
pub async fn idempotent_submits<S: Store>(store: &S) {
    let a = store.tenant("acme", 1).await.unwrap();
    let b = store.tenant("beta", 1).await.unwrap();
    let (first, new) = store
        .submit(&sys(), a.id, Some("k1"), r#"{"n":1}"#, 10)
        .await
        .unwrap();
    assert!(new);
    assert_eq!(first.state, JobState::Pending);
    assert_eq!(first.version, 1);
    let (again, new) = store
        .submit(&sys(), a.id, Some("k1"), r#"{"n":2}"#, 11)
        .await
        .unwrap();
    assert!(!new);
    assert_eq!(again, first, "the first submission wins");
    let (other_tenant, new) = store
        .submit(&sys(), b.id, Some("k1"), r#"{"n":3}"#, 12)
        .await
        .unwrap();
    assert!(new);
    assert_ne!(other_tenant.id, first.id);
    let (no_key_1, _) = store.submit(&sys(), a.id, None, "{}", 13).await.unwrap();
    let (no_key_2, _) = store.submit(&sys(), a.id, None, "{}", 14).await.unwrap();
    assert_ne!(
        no_key_1.id, no_key_2.id,
        "without a key every submit is new"
    );
}

/// Transitions are validated, applied atomically against the state the caller
/// saw, and refused otherwise.
pub async fn transitions_follow_the_machine<S: Store>(store: &S) {
    let t = store.tenant("acme", 1).await.unwrap();
    let (job, _) = store.submit(&sys(), t.id, None, "{}", 1).await.unwrap();
    let place = Transition {
        from: JobState::Pending,
        to: JobState::Placed,
        site: Some("hami".into()),
        start_at: Some(3600),
        exit_code: None,
    };
    let placed = store.transition(&sys(), job.id, &place, 2).await.unwrap();
    assert_eq!(
        (
            placed.state,
            placed.site.as_deref(),
            placed.start_at,
            placed.version
        ),
        (JobState::Placed, Some("hami"), Some(3600), 2)
    );
    // Replaying the same change finds the job no longer Pending.
    match store.transition(&sys(), job.id, &place, 3).await {
        Err(StoreError::Conflict {
            actual: JobState::Placed,
            ..
        }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Illegal in pure code, before any SQL.
    let skip = Transition {
        from: JobState::Placed,
        to: JobState::Succeeded,
        site: None,
        start_at: None,
        exit_code: Some(0),
    };
    assert!(matches!(
        store.transition(&sys(), job.id, &skip, 4).await,
        Err(StoreError::Conflict { .. })
    ));
    for (from, to) in [
        (JobState::Placed, JobState::Dispatched),
        (JobState::Dispatched, JobState::Running),
    ] {
        store
            .transition(
                &sys(),
                job.id,
                &Transition {
                    from,
                    to,
                    site: None,
                    start_at: None,
                    exit_code: None,
                },
                5,
            )
            .await
            .unwrap();
    }
    let done = store
        .transition(
            &sys(),
            job.id,
            &Transition {
                from: JobState::Running,
                to: JobState::Succeeded,
                site: None,
                start_at: None,
                exit_code: Some(0),
            },
            6,
        )
        .await
        .unwrap();
    assert_eq!(
        (done.state, done.exit_code, done.site.as_deref()),
        (JobState::Succeeded, Some(0), Some("hami"))
    );
    let cancel = Transition {
        from: JobState::Succeeded,
        to: JobState::Cancelled,
        site: None,
        start_at: None,
        exit_code: None,
    };
    assert!(
        store.transition(&sys(), job.id, &cancel, 7).await.is_err(),
        "a finished job stays finished"
    );
    assert!(matches!(
        store.job(999_999).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Lists filter by state, site, tenant and submission time, and page by id.
pub async fn listing_filters_and_pages<S: Store>(store: &S) {
    let a = store.tenant("acme", 1).await.unwrap();
    let b = store.tenant("beta", 1).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..25 {
        let tenant = if i % 5 == 0 { b.id } else { a.id };
        let (job, _) = store.submit(&sys(), tenant, None, "{}", i).await.unwrap();
        ids.push(job.id);
        if i % 2 == 0 {
            let site = if i % 4 == 0 { "hami" } else { "guian" };
            let change = Transition {
                from: JobState::Pending,
                to: JobState::Placed,
                site: Some(site.into()),
                start_at: Some(0),
                exit_code: None,
            };
            store.transition(&sys(), job.id, &change, i).await.unwrap();
        }
    }
    let all = store
        .list_jobs(&JobFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 25);
    let placed = store
        .list_jobs(&JobFilter {
            state: Some(JobState::Placed),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(placed.len(), 13);
    let hami = store
        .list_jobs(&JobFilter {
            site: Some("hami".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(hami.len(), 7);
    let beta = store
        .list_jobs(&JobFilter {
            tenant_id: Some(b.id),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(beta.len(), 5);
    assert!(beta.iter().all(|j| j.tenant_id == b.id));
    let recent = store
        .list_jobs(&JobFilter {
            created_after: Some(20),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(recent.len(), 5, "jobs submitted at 20..=24");
    assert!(recent.iter().all(|j| j.created_at >= 20));
    // Pages of 10 cover everything once, in id order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_jobs(&JobFilter {
                after_id: after,
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|j| j.id);
        seen.extend(page.into_iter().map(|j| j.id));
    }
    assert_eq!(seen, ids);
    // Newest first, in pages of 10, with a filter.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .list_jobs(&JobFilter {
                tenant_id: Some(a.id),
                newest_first: true,
                before_id: before,
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        before = page.last().map(|j| j.id);
        seen.extend(page.into_iter().map(|j| j.id));
    }
    let mut expected: Vec<i64> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 != 0)
        .map(|(_, id)| *id)
        .collect();
    expected.reverse();
    assert_eq!(seen, expected, "acme's jobs, newest first");
    // Both cursors bound a range, in either order.
    let range = |newest_first| JobFilter {
        after_id: Some(ids[2]),
        before_id: Some(ids[6]),
        newest_first,
        limit: 100,
        ..Default::default()
    };
    let ascending: Vec<i64> = store
        .list_jobs(&range(false))
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(ascending, ids[3..6], "between the cursors, oldest first");
    let descending: Vec<i64> = store
        .list_jobs(&range(true))
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(descending, [ids[5], ids[4], ids[3]], "and newest first");
}

/// Many decisions apply in one transaction; a job that moved meanwhile is skipped
/// and gets no decision.
pub async fn decisions_apply_in_batches<S: Store>(store: &S) {
    let t = store.tenant("acme", 1).await.unwrap();
    let (a, _) = store.submit(&sys(), t.id, None, "{}", 1).await.unwrap();
    let (b, _) = store.submit(&sys(), t.id, None, "{}", 1).await.unwrap();
    let cancel = Transition {
        from: JobState::Pending,
        to: JobState::Cancelled,
        site: None,
        start_at: None,
        exit_code: None,
    };
    store.transition(&sys(), b.id, &cancel, 2).await.unwrap();
    let place = Transition {
        from: JobState::Pending,
        to: JobState::Placed,
        site: Some("hami".into()),
        start_at: Some(9),
        exit_code: None,
    };
    let applied = store
        .decide_many(
            &sys(),
            &[
                (a.id, place.clone(), "{\"placed\":1}".into()),
                (b.id, place, "{\"placed\":2}".into()),
            ],
            3,
        )
        .await
        .unwrap();
    assert_eq!(applied, [true, false]);
    assert_eq!(store.job(a.id).await.unwrap().site.as_deref(), Some("hami"));
    assert_eq!(store.job(b.id).await.unwrap().state, JobState::Cancelled);
    assert_eq!(store.decisions(a.id).await.unwrap().len(), 1);
    assert!(store.decisions(b.id).await.unwrap().is_empty());
}

/// Decisions are stored in order for their job.
pub async fn decisions_are_kept<S: Store>(store: &S) {
    let t = store.tenant("acme", 1).await.unwrap();
    let (job, _) = store.submit(&sys(), t.id, None, "{}", 1).await.unwrap();
    store
        .record_decision(job.id, r#"{"outcome":"pending"}"#, 2)
        .await
        .unwrap();
    store
        .record_decision(job.id, r#"{"outcome":"placed","site":"hami"}"#, 3)
        .await
        .unwrap();
    let decisions = store.decisions(job.id).await.unwrap();
    assert_eq!(decisions.len(), 2);
    assert!(decisions[1].body.contains("hami"));
    assert!(
        store.record_decision(999_999, "{}", 4).await.is_err(),
        "a decision needs its job"
    );
}

/// A job's current reason is replaced on each change, and its history keeps
/// the newest [`crate::WAIT_HISTORY`], newest first, paged by id.
pub async fn waits_keep_the_current_reason_and_a_capped_history<S: Store>(store: &S) {
    let t = store.tenant("acme", 1).await.unwrap();
    let (a, _) = store.submit(&sys(), t.id, None, "{}", 1).await.unwrap();
    let (b, _) = store.submit(&sys(), t.id, None, "{}", 1).await.unwrap();
    assert!(store.waits(&[a.id, b.id]).await.unwrap().is_empty());
    let change = |job_id: i64, code: &str, n: i64| crate::WaitChange {
        job_id,
        code: code.into(),
        key: format!("{code}/{n}"),
        body: format!(r#"{{"reason":"{code}","n":{n}}}"#),
    };
    store
        .record_waits(&[change(a.id, "capacity", 0), change(b.id, "quota", 0)], 10)
        .await
        .unwrap();
    store
        .record_waits(&[change(a.id, "sites-unavailable", 1)], 20)
        .await
        .unwrap();
    let mut now = store.waits(&[a.id, b.id, 999_999]).await.unwrap();
    now.sort_by_key(|w| w.job_id);
    assert_eq!(now.len(), 2);
    assert_eq!(
        (
            now[0].job_id,
            now[0].code.as_str(),
            now[0].key.as_str(),
            now[0].at
        ),
        (a.id, "sites-unavailable", "sites-unavailable/1", 20)
    );
    assert_eq!((now[1].code.as_str(), now[1].at), ("quota", 10));
    let history = store.wait_history(a.id, None, 10).await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(history[0].body.contains("sites-unavailable") && history[0].at == 20);
    assert!(history[1].body.contains("capacity") && history[1].at == 10);
    // Past the cap, the oldest go; a page starts below the entry named.
    for n in 2..(crate::WAIT_HISTORY + 10) {
        store
            .record_waits(&[change(a.id, "capacity", n)], 20 + n)
            .await
            .unwrap();
    }
    let all = store.wait_history(a.id, None, 1000).await.unwrap();
    assert_eq!(all.len() as i64, crate::WAIT_HISTORY);
    assert!(
        all[0]
            .body
            .contains(&format!(r#""n":{}"#, crate::WAIT_HISTORY + 9))
    );
    let page = store.wait_history(a.id, Some(all[9].id), 5).await.unwrap();
    assert_eq!(page, all[10..15].to_vec());
    assert_eq!(store.wait_history(b.id, None, 10).await.unwrap().len(), 1);
    assert!(
        store
            .record_waits(&[change(999_999, "quota", 0)], 30)
            .await
            .is_err(),
        "a reason needs its job"
    );
}

/// Concurrent submits with distinct keys all land, once each.
pub async fn concurrent_submits_land_once<S: Store + Clone + 'static>(store: &S) {
    let t = store.tenant("acme", 1).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Every key is submitted twice, racing.
            let key = format!("key-{}", i / 2);
            store
                .submit(&sys(), t.id, Some(&key), "{}", i)
                .await
                .unwrap()
                .0
                .id
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 32, "one job per key");
    let all = store
        .list_jobs(&JobFilter {
            tenant_id: Some(t.id),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 32);
}

/// Runs every check of the shared suite against a backend: `$make` is an async
/// expression giving a fresh, empty store.
#[macro_export]
macro_rules! store_test_suite {
    ($make:expr) => {
        #[tokio::test]
        async fn tenants_and_tokens() {
            let Some(store) = $make else { return };
            $crate::suite::tenants_and_tokens(&store).await;
        }
        #[tokio::test]
        async fn providers_own_sites_and_agent_tokens_name_one() {
            let Some(store) = $make else { return };
            $crate::suite::providers_own_sites_and_agent_tokens_name_one(&store).await;
        }
        #[tokio::test]
        async fn idempotent_submits() {
            let Some(store) = $make else { return };
            $crate::suite::idempotent_submits(&store).await;
        }
        #[tokio::test]
        async fn transitions_follow_the_machine() {
            let Some(store) = $make else { return };
            $crate::suite::transitions_follow_the_machine(&store).await;
        }
        #[tokio::test]
        async fn listing_filters_and_pages() {
            let Some(store) = $make else { return };
            $crate::suite::listing_filters_and_pages(&store).await;
        }
        #[tokio::test]
        async fn decisions_apply_in_batches() {
            let Some(store) = $make else { return };
            $crate::suite::decisions_apply_in_batches(&store).await;
        }
        #[tokio::test]
        async fn waits_keep_the_current_reason_and_a_capped_history() {
            let Some(store) = $make else { return };
            $crate::suite::waits_keep_the_current_reason_and_a_capped_history(&store).await;
        }
        #[tokio::test]
        async fn decisions_are_kept() {
            let Some(store) = $make else { return };
            $crate::suite::decisions_are_kept(&store).await;
        }
        #[tokio::test]
        async fn batches_keep_idempotency() {
            let Some(store) = $make else { return };
            $crate::suite::batches_keep_idempotency(&store).await;
        }
        #[tokio::test]
        async fn administration_lists_revokes_edits_and_drains() {
            let Some(store) = $make else { return };
            $crate::suite::administration_lists_revokes_edits_and_drains(&store).await;
        }
        #[tokio::test]
        async fn leases_fence_stale_reports() {
            let Some(store) = $make else { return };
            $crate::suite::leases_fence_stale_reports(&store).await;
        }
        #[tokio::test]
        async fn cancelled_leases_are_called_back() {
            let Some(store) = $make else { return };
            $crate::suite::cancelled_leases_are_called_back(&store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn racing_agents_lease_each_job_once() {
            let Some(store) = $make else { return };
            $crate::suite::racing_agents_lease_each_job_once(&store).await;
        }
        #[tokio::test]
        async fn every_change_is_audited_and_chained() {
            let Some(store) = $make else { return };
            $crate::suite::every_change_is_audited_and_chained(&store).await;
        }
        #[tokio::test]
        async fn audit_views_filter_and_page() {
            let Some(store) = $make else { return };
            $crate::suite::audit_views_filter_and_page(&store).await;
        }
        #[tokio::test]
        async fn verify_names_an_edited_entry() {
            let Some(store) = $make else { return };
            $crate::suite::verify_names_an_edited_entry(&store).await;
        }
        #[tokio::test]
        async fn audit_runs_cover_their_jobs() {
            let Some(store) = $make else { return };
            $crate::suite::audit_runs_cover_their_jobs(&store).await;
        }
        #[tokio::test]
        async fn verify_names_a_deleted_entry() {
            let Some(store) = $make else { return };
            $crate::suite::verify_names_a_deleted_entry(&store).await;
        }
        #[tokio::test]
        async fn verify_names_reordered_entries() {
            let Some(store) = $make else { return };
            $crate::suite::verify_names_reordered_entries(&store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_appends_never_fork() {
            let Some(store) = $make else { return };
            $crate::suite::concurrent_appends_never_fork(&store).await;
        }
        #[tokio::test]
        async fn quotas_set_replace_list_and_audit() {
            let Some(store) = $make else { return };
            $crate::suite::quotas_set_replace_list_and_audit(&store).await;
        }
        #[tokio::test]
        async fn a_flood_does_not_keep_others_out_of_a_pass() {
            let Some(store) = $make else { return };
            $crate::suite::a_flood_does_not_keep_others_out_of_a_pass(&store).await;
        }
        #[tokio::test]
        async fn a_preempted_job_is_requeued_its_agent_told_and_its_next_lease_is_attempt_2() {
            let Some(store) = $make else { return };
            $crate::suite::a_preempted_job_is_requeued_its_agent_told_and_its_next_lease_is_attempt_2(&store).await;
        }
        #[tokio::test]
        async fn a_restarted_agent_resumes_only_current_leases_of_its_site() {
            let Some(store) = $make else { return };
            $crate::suite::a_restarted_agent_resumes_only_current_leases_of_its_site(&store).await;
        }
        #[tokio::test]
        async fn spills_set_replace_clear_and_audit() {
            let Some(store) = $make else { return };
            $crate::suite::spills_set_replace_clear_and_audit(&store).await;
        }
        #[tokio::test]
        async fn shares_set_list_save_usage_and_audit() {
            let Some(store) = $make else { return };
            $crate::suite::shares_set_list_save_usage_and_audit(&store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_submits_land_once() {
            let Some(store) = $make else { return };
            $crate::suite::concurrent_submits_land_once(&store).await;
        }
    };
}

/// A batch is one transaction and keeps idempotency, within it and across batches.
pub async fn batches_keep_idempotency<S: Store>(store: &S) {
    use crate::NewJob;
    let t = store.tenant("acme", 1).await.unwrap();
    let job = |key: Option<&str>| NewJob {
        actor: sys(),
        tenant_id: t.id,
        idempotency_key: key.map(str::to_string),
        spec: "{}".into(),
    };
    let out = store
        .submit_many(
            &[job(Some("a")), job(None), job(Some("a")), job(Some("b"))],
            5,
        )
        .await
        .unwrap();
    assert_eq!(
        out.iter().map(|(_, new)| *new).collect::<Vec<_>>(),
        [true, true, false, true]
    );
    assert_eq!(
        out[0].0.id, out[2].0.id,
        "the same key twice in a batch is one job"
    );
    let again = store.submit_many(&[job(Some("b"))], 6).await.unwrap();
    assert_eq!((again[0].0.id, again[0].1), (out[3].0.id, false));
    let all = store
        .list_jobs(&JobFilter {
            tenant_id: Some(t.id),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert!(store.submit_many(&[], 7).await.unwrap().is_empty());
    // Every answer is its own input's row, keyed or not, across tenants.
    let u = store.tenant("umbra", 1).await.unwrap();
    let mixed: Vec<NewJob> = (0..40)
        .map(|i| NewJob {
            actor: sys(),
            tenant_id: if i % 3 == 0 { u.id } else { t.id },
            idempotency_key: (i % 4 == 0).then(|| format!("m{}", i % 8)),
            spec: format!("{{\"n\":{}}}", i % 5),
        })
        .collect();
    let out = store.submit_many(&mixed, 8).await.unwrap();
    for (job, (record, _)) in mixed.iter().zip(&out) {
        assert_eq!(record.tenant_id, job.tenant_id);
        assert_eq!(record.idempotency_key, job.idempotency_key);
        if job.idempotency_key.is_none() {
            assert_eq!(record.spec, job.spec);
        }
    }
    let mut ids: Vec<i64> = out
        .iter()
        .filter(|(_, new)| *new)
        .map(|(r, _)| r.id)
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no row given to two inputs");
}

fn agent(id: &str, site: &str, now: i64) -> crate::AgentRecord {
    crate::AgentRecord {
        id: id.into(),
        site: site.into(),
        info: "{}".into(),
        registered_at: now,
        last_seen: now,
        telemetry: None,
    }
}

/// Submits a job and places it at `site` from `start`.
async fn placed<S: Store>(store: &S, site: &str, start: i64) -> crate::JobRecord {
    let t = store.tenant("acme", 1).await.unwrap();
    let (job, _) = store.submit(&sys(), t.id, None, "{}", 1).await.unwrap();
    let change = Transition {
        from: JobState::Pending,
        to: JobState::Placed,
        site: Some(site.into()),
        start_at: Some(start),
        exit_code: None,
    };
    store.transition(&sys(), job.id, &change, 2).await.unwrap()
}

/// A lease goes to one agent with a growing fencing token; reports under any
/// other (agent, token) are refused; an expired lease makes the job Lost, and a
/// re-queued job's new lease fences the old one out.
pub async fn leases_fence_stale_reports<S: Store>(store: &S) {
    use crate::HeldVerdict;
    store
        .register_agent(&sys(), &agent("a1", "s1", 10))
        .await
        .unwrap();
    store
        .register_agent(&sys(), &agent("a2", "s1", 10))
        .await
        .unwrap();
    assert_eq!(store.agents().await.unwrap().len(), 2);
    let job = placed(store, "s1", 100).await;
    assert_eq!(job.lease_token, 0);
    assert!(
        store
            .lease(&sys(), "a1", "s1", 10, 200, 50)
            .await
            .unwrap()
            .is_empty(),
        "not before its start"
    );
    assert!(
        store
            .lease(&sys(), "a1", "s2", 10, 200, 150)
            .await
            .unwrap()
            .is_empty(),
        "not at another site"
    );
    let leased = store.lease(&sys(), "a1", "s1", 10, 200, 100).await.unwrap();
    assert_eq!(leased.len(), 1);
    let l = &leased[0];
    assert_eq!(
        (l.id, l.state, l.lease_token),
        (job.id, JobState::Dispatched, 1)
    );
    assert_eq!(
        (l.lease_agent.as_deref(), l.lease_expires_at),
        (Some("a1"), Some(200))
    );
    assert!(
        store
            .lease(&sys(), "a2", "s1", 10, 200, 101)
            .await
            .unwrap()
            .is_empty(),
        "handed out once"
    );

    let stale =
        |r: crate::Result<crate::JobRecord>| matches!(r, Err(StoreError::StaleLease { .. }));
    assert!(
        stale(
            store
                .report(&sys(), "a2", job.id, 1, JobState::Running, None, 110)
                .await
        ),
        "wrong agent"
    );
    assert!(
        stale(
            store
                .report(&sys(), "a1", job.id, 0, JobState::Running, None, 110)
                .await
        ),
        "old token"
    );
    let running = store
        .report(&sys(), "a1", job.id, 1, JobState::Running, None, 110)
        .await
        .unwrap();
    assert_eq!(
        (running.state, running.started_at),
        (JobState::Running, Some(110))
    );
    let again = store
        .report(&sys(), "a1", job.id, 1, JobState::Running, None, 111)
        .await
        .unwrap();
    assert_eq!(again, running, "a retried report changes nothing");
    assert!(matches!(
        store
            .report(&sys(), "a1", job.id, 1, JobState::Dispatched, None, 112)
            .await,
        Err(StoreError::Conflict { .. })
    ));

    let verdicts = store
        .heartbeat("a1", Some(r#"{"cpu":0.5}"#), &[(job.id, 1)], 300, 150)
        .await
        .unwrap();
    assert_eq!(verdicts, [HeldVerdict::Renewed]);
    assert_eq!(store.job(job.id).await.unwrap().lease_expires_at, Some(300));
    let a1 = store.agent("a1").await.unwrap().unwrap();
    assert_eq!(
        (a1.last_seen, a1.telemetry.as_deref()),
        (150, Some(r#"{"cpu":0.5}"#))
    );
    store
        .heartbeat("a1", Some(r#"{"cpu":0.6}"#), &[(job.id, 1)], 300, 160)
        .await
        .unwrap();
    store
        .heartbeat("a1", None, &[(job.id, 1)], 300, 170)
        .await
        .unwrap();
    let samples = store.samples("s1", 0, 100).await.unwrap();
    assert_eq!(
        samples.iter().map(|s| s.at).collect::<Vec<_>>(),
        [150, 160],
        "one sample per heartbeat that carried one"
    );
    assert_eq!(samples[0].agent, "a1");
    assert_eq!(store.samples("s1", 155, 100).await.unwrap().len(), 1);
    assert_eq!(
        store.samples("s1", 0, 1).await.unwrap()[0].at,
        160,
        "the newest when limited"
    );
    assert!(store.samples("s2", 0, 100).await.unwrap().is_empty());
    assert_eq!(store.prune_samples(155).await.unwrap(), 1);
    assert_eq!(store.samples("s1", 0, 100).await.unwrap().len(), 1);
    store
        .register_agent(&sys(), &agent("old", "s9", 1))
        .await
        .unwrap();
    assert_eq!(
        store.forget_agents(5).await.unwrap(),
        1,
        "only the silent one"
    );
    assert!(store.agent("old").await.unwrap().is_none());
    assert!(store.agent("a1").await.unwrap().is_some());
    assert_eq!(
        store
            .heartbeat("a2", None, &[(job.id, 1)], 300, 150)
            .await
            .unwrap(),
        [HeldVerdict::Stale],
        "another agent cannot renew it"
    );
    assert!(matches!(
        store.heartbeat("nobody", None, &[], 300, 150).await,
        Err(StoreError::NotFound { .. })
    ));

    assert!(store.expire_leases(&sys(), 299).await.unwrap().is_empty());
    let lost = store.expire_leases(&sys(), 301).await.unwrap();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].state, JobState::Lost);
    let why = store.decisions(job.id).await.unwrap();
    assert!(why.last().unwrap().body.contains("not renewed"), "{why:?}");
    assert!(stale(
        store
            .report(&sys(), "a1", job.id, 1, JobState::Succeeded, Some(0), 302)
            .await
    ));
    assert_eq!(
        store
            .heartbeat("a1", None, &[(job.id, 1)], 400, 302)
            .await
            .unwrap(),
        [HeldVerdict::Stale]
    );

    assert!(
        store
            .requeue(
                &sys(),
                job.id,
                JobState::Lost,
                r#"{"outcome":"requeued"}"#,
                303
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .requeue(&sys(), job.id, JobState::Lost, "{}", 303)
            .await
            .unwrap(),
        "once"
    );
    let pending = store.job(job.id).await.unwrap();
    assert_eq!(
        (pending.state, pending.site.as_deref(), pending.start_at),
        (JobState::Pending, None, None)
    );
    let change = Transition {
        from: JobState::Pending,
        to: JobState::Placed,
        site: Some("s1".into()),
        start_at: Some(300),
        exit_code: None,
    };
    store
        .transition(&sys(), job.id, &change, 304)
        .await
        .unwrap();
    let leased = store.lease(&sys(), "a2", "s1", 10, 400, 310).await.unwrap();
    assert_eq!(leased[0].lease_token, 2, "a new lease, a new token");
    assert!(stale(
        store
            .report(&sys(), "a1", job.id, 1, JobState::Succeeded, Some(0), 311)
            .await
    ));
    let done = store
        .report(&sys(), "a2", job.id, 2, JobState::Succeeded, Some(0), 320)
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded, "straight from Dispatched");
    assert_eq!(
        (done.started_at, done.finished_at, done.exit_code),
        (Some(320), Some(320), Some(0))
    );
    assert_eq!(done.lease_expires_at, None);
    assert!(
        store
            .expire_leases(&sys(), 10_000)
            .await
            .unwrap()
            .is_empty(),
        "a finished job expires no more"
    );
    assert!(matches!(
        store
            .requeue(&sys(), job.id, JobState::Running, "{}", 321)
            .await,
        Err(StoreError::Conflict { .. })
    ));
}

/// A cancelled job's holder is told to stop at its next heartbeat, and its
/// reports are refused.
pub async fn cancelled_leases_are_called_back<S: Store>(store: &S) {
    use crate::HeldVerdict;
    store
        .register_agent(&sys(), &agent("a1", "s1", 10))
        .await
        .unwrap();
    let job = placed(store, "s1", 0).await;
    let other = placed(store, "s1", 0).await;
    let leased = store.lease(&sys(), "a1", "s1", 10, 100, 5).await.unwrap();
    assert_eq!(leased.len(), 2);
    let cancel = Transition {
        from: JobState::Dispatched,
        to: JobState::Cancelled,
        site: None,
        start_at: None,
        exit_code: None,
    };
    let cancelled = store.transition(&sys(), job.id, &cancel, 6).await.unwrap();
    assert_eq!(cancelled.finished_at, Some(6));
    let verdicts = store
        .heartbeat(
            "a1",
            None,
            &[(job.id, 1), (other.id, 1), (999_999, 1)],
            200,
            7,
        )
        .await
        .unwrap();
    assert_eq!(
        verdicts,
        [
            HeldVerdict::Cancel,
            HeldVerdict::Renewed,
            HeldVerdict::Stale
        ]
    );
    assert!(matches!(
        store
            .report(&sys(), "a1", job.id, 1, JobState::Succeeded, Some(0), 8)
            .await,
        Err(StoreError::StaleLease {
            state: JobState::Cancelled,
            ..
        })
    ));
    store
        .put_logs(&[(other.id, "line 1\n".into())], 8)
        .await
        .unwrap();
    store
        .put_logs(&[(other.id, "line 1\nline 2\n".into())], 9)
        .await
        .unwrap();
    assert_eq!(
        store.logs(other.id).await.unwrap(),
        Some(("line 1\nline 2\n".into(), 9))
    );
    assert_eq!(store.logs(job.id).await.unwrap(), None);
    assert!(
        store.put_logs(&[(999_999, "x".into())], 9).await.is_err(),
        "logs need their job"
    );
    let failed = store
        .report(&sys(), "a1", other.id, 1, JobState::Failed, Some(3), 9)
        .await
        .unwrap();
    assert_eq!(
        (failed.state, failed.exit_code),
        (JobState::Failed, Some(3))
    );
}

/// Two agents of one site leasing at once never get the same job.
pub async fn racing_agents_lease_each_job_once<S: Store + Clone + 'static>(store: &S) {
    for a in ["a1", "a2", "a3"] {
        store
            .register_agent(&sys(), &agent(a, "s1", 0))
            .await
            .unwrap();
    }
    for _ in 0..60 {
        placed(store, "s1", 0).await;
    }
    let mut tasks = Vec::new();
    for a in ["a1", "a2", "a3"] {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for round in 0..10 {
                got.extend(
                    store
                        .lease(&sys(), a, "s1", 4, 100, round)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|j| j.id),
                );
            }
            got
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "a job was handed to two agents");
    assert_chain_intact(store).await;
    let rest = store
        .lease(&sys(), "a1", "s1", 1000, 100, 20)
        .await
        .unwrap();
    assert_eq!(n + rest.len(), 60, "every due job is handed out, once");
    let counts = store.count_by_state().await.unwrap();
    assert_eq!(counts.get(&JobState::Dispatched), Some(&60));
    assert_eq!(counts.get(&JobState::Placed), None);
}

/// Tenants and tokens are listed, a token revoked by its digest's prefix, topology
/// edits replaced by key, sites drained and undrained.
pub async fn administration_lists_revokes_edits_and_drains<S: Store>(store: &S) {
    let a = store.tenant("acme", 1).await.unwrap();
    store.tenant("beta", 2).await.unwrap();
    let names: Vec<String> = store
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["acme", "beta"]);
    for (i, digest) in ["aaaa1111", "aaaa2222", "bbbb3333"].iter().enumerate() {
        let record = TokenRecord {
            digest: digest.repeat(8),
            tenant_id: Some(a.id),
            role: Role::Tenant,
            provider_id: None,
            site: None,
        };
        store
            .insert_token(&sys(), &record, 10 + i as i64)
            .await
            .unwrap();
    }
    let listed = store.tokens().await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].created_at, 12, "newest first");
    assert!(
        matches!(
            store.revoke_token(&sys(), "aaaa", 9).await,
            Err(StoreError::NotFound { .. })
        ),
        "too short"
    );
    assert!(matches!(
        store.revoke_token(&sys(), "zzzzzzzzzzzzzz", 9).await,
        Err(StoreError::NotFound { .. })
    ));
    let gone = store
        .revoke_token(&sys(), &"aaaa2222".repeat(2), 9)
        .await
        .unwrap();
    assert_eq!(gone.digest, "aaaa2222".repeat(8));
    assert_eq!(store.token(&gone.digest).await.unwrap(), None);
    assert_eq!(store.tokens().await.unwrap().len(), 2);

    let edit = |key: &str, body: &str, at| crate::TopologyEdit {
        kind: "site".into(),
        key: key.into(),
        body: body.into(),
        updated_at: at,
    };
    store
        .put_topology_edit(&sys(), &edit("s1", "{\"v\":1}", 20))
        .await
        .unwrap();
    store
        .put_topology_edit(&sys(), &edit("s2", "{}", 21))
        .await
        .unwrap();
    store
        .put_topology_edit(&sys(), &edit("s1", "{\"v\":2}", 22))
        .await
        .unwrap();
    let edits = store.topology_edits().await.unwrap();
    assert_eq!(edits.len(), 2);
    assert_eq!(
        (edits[1].key.as_str(), edits[1].body.as_str()),
        ("s1", "{\"v\":2}")
    );

    store
        .set_drained(&sys(), "s1", Some("maintenance"), 30)
        .await
        .unwrap();
    store
        .set_drained(&sys(), "s1", Some("still maintenance"), 31)
        .await
        .unwrap();
    store.set_drained(&sys(), "s2", Some(""), 32).await.unwrap();
    let drained = store.drained().await.unwrap();
    assert_eq!(drained.len(), 2);
    assert_eq!(
        (drained[0].since, drained[0].reason.as_deref()),
        (30, Some("still maintenance"))
    );
    assert_eq!(drained[1].reason, None);
    store.set_drained(&sys(), "s1", None, 33).await.unwrap();
    store.set_drained(&sys(), "s9", None, 33).await.unwrap();
    assert_eq!(store.drained().await.unwrap().len(), 1);
}

/// A small history made through the store's methods by several actors: a
/// tenant's submits and cancel, the scheduler's placements, an agent's lease
/// and report, an admin's drain, edit and tokens. Returns (tenant a, tenant b,
/// tenant a's actor, job ids of a, job id of b).
async fn history<S: Store>(store: &S) -> (i64, i64, Vec<i64>, i64) {
    use crate::{Subject, audit::Change};
    let a = store.tenant("acme", 1).await.unwrap();
    let b = store.tenant("beta", 1).await.unwrap();
    let tenant = |t: i64| Actor {
        role: "tenant".into(),
        id: format!("tenant{t:011}"),
        tenant_id: Some(t),
        provider_id: None,
        site: None,
    };
    let agent_actor = Actor {
        role: "agent".into(),
        id: "agent0000000hami".into(),
        tenant_id: None,
        provider_id: None,
        site: Some("hami".into()),
    };
    let admin = Actor {
        role: "admin".into(),
        id: "admin00000000000".into(),
        tenant_id: None,
        provider_id: None,
        site: None,
    };
    let mut mine = Vec::new();
    for key in ["k1", "k2"] {
        let (job, _) = store
            .submit(&tenant(a.id), a.id, Some(key), "{}", 10)
            .await
            .unwrap();
        mine.push(job.id);
    }
    // A retried submit changes nothing and is not recorded.
    store
        .submit(&tenant(a.id), a.id, Some("k1"), "{}", 11)
        .await
        .unwrap();
    let (theirs, _) = store
        .submit(&tenant(b.id), b.id, None, "{}", 12)
        .await
        .unwrap();
    let place = |site: &str| Transition {
        from: JobState::Pending,
        to: JobState::Placed,
        site: Some(site.into()),
        start_at: Some(0),
        exit_code: None,
    };
    let applied = store
        .decide_many(
            &Actor::scheduler(),
            &[
                (mine[0], place("hami"), "{}".into()),
                (theirs.id, place("zhongwei"), "{}".into()),
            ],
            20,
        )
        .await
        .unwrap();
    assert_eq!(applied, [true, true]);
    store
        .register_agent(&agent_actor, &agent("ag-1", "hami", 21))
        .await
        .unwrap();
    let leased = store
        .lease(&agent_actor, "ag-1", "hami", 10, 100, 22)
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    store
        .report(
            &agent_actor,
            "ag-1",
            mine[0],
            leased[0].lease_token,
            JobState::Succeeded,
            Some(0),
            23,
        )
        .await
        .unwrap();
    let cancel = Transition {
        from: JobState::Pending,
        to: JobState::Cancelled,
        site: None,
        start_at: None,
        exit_code: None,
    };
    store
        .transition(&tenant(a.id), mine[1], &cancel, 24)
        .await
        .unwrap();
    store
        .set_drained(&admin, "zhongwei", Some("maintenance"), 25)
        .await
        .unwrap();
    let token = TokenRecord {
        digest: "ef56".repeat(16),
        tenant_id: Some(b.id),
        role: Role::Tenant,
        provider_id: None,
        site: None,
    };
    store.insert_token(&admin, &token, 26).await.unwrap();
    store
        .revoke_token(&admin, &token.digest[..12], 27)
        .await
        .unwrap();
    store
        .append_audit(
            Change {
                actor: agent_actor.clone(),
                action: "identity.refused".into(),
                subject: Subject::site("zhongwei"),
                detail: r#"{"tried":"lease"}"#.into(),
            },
            28,
        )
        .await
        .unwrap();
    (a.id, b.id, mine, theirs.id)
}

/// Every change made through the store is in its audit log, in order, with who
/// made it, and the chain verifies; refused and repeated changes add nothing.
pub async fn every_change_is_audited_and_chained<S: Store>(store: &S) {
    assert_eq!(
        store.audit_head().await.unwrap(),
        (0, crate::audit::GENESIS.to_string()),
        "an empty log's head is the genesis hash"
    );
    let (a, _, mine, theirs) = history(store).await;
    // A refused change records nothing.
    let wrong = Transition {
        from: JobState::Pending,
        to: JobState::Placed,
        site: Some("hami".into()),
        start_at: None,
        exit_code: None,
    };
    assert!(store.transition(&sys(), mine[1], &wrong, 30).await.is_err());
    let all = store
        .audit(&crate::AuditFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = all
        .iter()
        .map(|e| (e.action.as_str(), e.actor.role.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("job.submit", "tenant"),
            ("job.submit", "tenant"),
            ("job.submit", "tenant"),
            ("job.place", "scheduler"),
            ("job.place", "scheduler"),
            ("agent.register", "agent"),
            ("job.lease", "agent"),
            ("job.report", "agent"),
            ("job.cancel", "tenant"),
            ("site.drain", "admin"),
            ("token.issue", "admin"),
            ("token.revoke", "admin"),
            ("identity.refused", "agent"),
        ]
    );
    let seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=13).collect::<Vec<_>>());
    assert_eq!(all[0].subject.job, Some(mine[0]));
    assert_eq!(all[0].subject.tenant_id, Some(a));
    assert_eq!(all[0].detail, r#"{"idempotency_key":"k1"}"#);
    assert_eq!(all[4].subject.job, Some(theirs));
    assert_eq!(all[4].subject.site.as_deref(), Some("zhongwei"));
    assert_eq!(all[10].subject.key.as_deref(), Some("ef56ef56ef56ef56"));
    for pair in all.windows(2) {
        assert_eq!(
            pair[1].prev_hash, pair[0].hash,
            "each entry names the one before"
        );
    }
    assert_eq!(all[0].prev_hash, crate::audit::GENESIS);
    assert_eq!(
        store.audit_head().await.unwrap(),
        (13, all[12].hash.clone())
    );
    assert_eq!(assert_chain_intact(store).await, 13);
}

/// Each party's view: a tenant's jobs, a provider's sites; filters by actor,
/// action, job, site and time; pages by seq.
pub async fn audit_views_filter_and_page<S: Store>(store: &S) {
    let (a, b, mine, theirs) = history(store).await;
    let seqs =
        |entries: Vec<crate::AuditEntry>| -> Vec<i64> { entries.iter().map(|e| e.seq).collect() };
    let read = |filter: crate::AuditFilter| async move {
        store
            .audit(&crate::AuditFilter {
                limit: 1000,
                ..filter
            })
            .await
            .unwrap()
    };
    // Tenant a: its two submits, its placement, lease, report and cancel.
    let of_a = read(crate::AuditFilter {
        tenant_id: Some(a),
        ..Default::default()
    })
    .await;
    assert_eq!(seqs(of_a.clone()), [1, 2, 4, 7, 8, 9]);
    assert!(of_a.iter().all(|e| e.subject.tenant_id == Some(a)));
    // Tenant b: its submit, its placement and its token.
    assert_eq!(
        seqs(
            read(crate::AuditFilter {
                tenant_id: Some(b),
                ..Default::default()
            })
            .await
        ),
        [3, 5, 11, 12]
    );
    // The provider of zhongwei: the placement there, the drain, the refusal.
    assert_eq!(
        seqs(
            read(crate::AuditFilter {
                sites: Some(vec!["zhongwei".into()]),
                ..Default::default()
            })
            .await
        ),
        [5, 10, 13]
    );
    // The provider of hami: work at hami and what hami's agent did elsewhere.
    assert_eq!(
        seqs(
            read(crate::AuditFilter {
                sites: Some(vec!["hami".into()]),
                ..Default::default()
            })
            .await
        ),
        [4, 6, 7, 8, 13]
    );
    assert!(
        read(crate::AuditFilter {
            sites: Some(vec![]),
            ..Default::default()
        })
        .await
        .is_empty(),
        "a provider owning no site sees nothing"
    );
    assert_eq!(
        seqs(
            read(crate::AuditFilter {
                job: Some(theirs),
                ..Default::default()
            })
            .await
        ),
        [3, 5]
    );
    assert_eq!(
        seqs(
            read(crate::AuditFilter {
                action: Some("job.submit".into()),
                ..Default::default()
            })
            .await
        ),
        [1, 2, 3]
    );
    assert_eq!(
        seqs(
            read(crate::AuditFilter {
                actor: Some("scheduler".into()),
                ..Default::default()
            })
            .await
        ),
        [4, 5]
    );
    assert_eq!(
        seqs(
            read(crate::AuditFilter {
                since: Some(22),
                until: Some(24),
                ..Default::default()
            })
            .await
        ),
        [7, 8, 9]
    );
    assert_eq!(
        seqs(
            read(crate::AuditFilter {
                site: Some("hami".into()),
                job: Some(mine[0]),
                ..Default::default()
            })
            .await
        ),
        [4, 7, 8]
    );
    // Pages: after a cursor, at most `limit`.
    let page = store
        .audit(&crate::AuditFilter {
            after_seq: Some(4),
            limit: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(seqs(page), [5, 6, 7]);
}

/// A log of `n` entries made through the store's methods (drains of sites
/// `s1`, `s2`, …), verified intact.
async fn drains<S: Store>(store: &S, n: i64) {
    for i in 1..=n {
        store
            .set_drained(&sys(), &format!("s{i}"), Some("why"), i)
            .await
            .unwrap();
    }
    assert_eq!(assert_chain_intact(store).await, n as u64);
}

/// What `verify` says about the store's log.
async fn finding<S: Store>(store: &S) -> Option<crate::audit::Finding> {
    crate::audit::verify(store, |_| {}).await.unwrap().finding
}

/// One entry's detail edited in the database by hand: `verify` names that
/// entry, and passes again once the edit is undone.
pub async fn verify_names_an_edited_entry<S: Store + Tamper>(store: &S) {
    use crate::audit::Finding;
    drains(store, 6).await;
    let changed = store
        .tamper("UPDATE audit SET detail = '{\"reason\":\"nothing to see\"}' WHERE seq = 3")
        .await
        .unwrap();
    assert_eq!(changed, 1);
    match finding(store).await {
        Some(Finding::HashMismatch { seq: 3, .. }) => {}
        other => panic!("expected entry 3's hash not to match, got {other:?}"),
    }
    store
        .tamper("UPDATE audit SET detail = '{\"reason\":\"why\"}' WHERE seq = 3")
        .await
        .unwrap();
    assert_eq!(finding(store).await, None, "undone, the chain is whole");
    // Another column: who did it.
    store
        .tamper("UPDATE audit SET actor_id = 'someone-else' WHERE seq = 5")
        .await
        .unwrap();
    assert_eq!(finding(store).await.map(|f| f.seq()), Some(5));
}

/// Submits by one actor in one batch are one entry naming the first and last
/// job (with the count and the keys); placements of consecutive jobs of one
/// tenant at one site in one chunk likewise (with each job's start). `job = N`
/// finds every entry whose run covers N and no other; a tenant sees only its
/// own runs; and `verify` names a run entry whose range or detail was edited.
pub async fn audit_runs_cover_their_jobs<S: Store + Tamper>(store: &S) {
    use crate::NewJob;
    use crate::audit::Finding;
    let a = store.tenant("acme", 1).await.unwrap().id;
    let b = store.tenant("beta", 1).await.unwrap().id;
    let tenant = |t: i64| Actor {
        role: "tenant".into(),
        id: format!("tenant{t:011}"),
        tenant_id: Some(t),
        provider_id: None,
        site: None,
    };
    let job = |t: i64, key: Option<&str>| NewJob {
        actor: tenant(t),
        tenant_id: t,
        idempotency_key: key.map(str::to_string),
        spec: "{}".into(),
    };
    // a a a | b | a a, then a's k1 again (not a change: not recorded). The
    // repeat comes last: PostgreSQL spends a sequence number on it.
    let batch = [
        job(a, Some("k1")),
        job(a, None),
        job(a, Some("k3")),
        job(b, None),
        job(a, None),
        job(a, None),
        job(a, Some("k1")),
    ];
    let out = store.submit_many(&batch, 10).await.unwrap();
    let ids: Vec<i64> = out.iter().map(|(job, _)| job.id).collect();
    assert_eq!(out.iter().filter(|(_, new)| *new).count(), 6);
    assert_eq!(ids[6], ids[0]);
    for pair in ids[..6].windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "one batch's ids are consecutive");
    }
    let place = |site: &str, start: i64| Transition {
        from: JobState::Pending,
        to: JobState::Placed,
        site: Some(site.into()),
        start_at: Some(start),
        exit_code: None,
    };
    let decisions: Vec<(i64, Transition, String)> = [
        (ids[0], place("hami", 100)),
        (ids[1], place("hami", 101)),
        (ids[2], place("hami", 100)),
        (ids[3], place("hami", 100)),
        (ids[4], place("hami", 102)),
        (ids[5], place("zhongwei", 100)),
    ]
    .into_iter()
    .map(|(id, t)| (id, t, "{}".to_string()))
    .collect();
    let applied = store
        .decide_many(&Actor::scheduler(), &decisions, 20)
        .await
        .unwrap();
    assert_eq!(applied, [true; 6]);
    let read = |filter: crate::AuditFilter| async move {
        store
            .audit(&crate::AuditFilter {
                limit: 1000,
                ..filter
            })
            .await
            .unwrap()
    };
    let all = read(crate::AuditFilter::default()).await;
    /// Action, first job, last job of a run, tenant, detail.
    type Shape<'a> = (&'a str, i64, Option<i64>, Option<i64>, &'a str);
    let shape: Vec<Shape<'_>> = all
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.subject.job.unwrap(),
                e.subject.job_last,
                e.subject.tenant_id,
                e.detail.as_str(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            (
                "job.submit",
                ids[0],
                Some(ids[2]),
                Some(a),
                r#"{"count":3,"idempotency_key":["k1",null,"k3"]}"#
            ),
            ("job.submit", ids[3], None, Some(b), "{}"),
            (
                "job.submit",
                ids[4],
                Some(ids[5]),
                Some(a),
                r#"{"count":2}"#
            ),
            (
                "job.place",
                ids[0],
                Some(ids[2]),
                Some(a),
                r#"{"count":3,"exit_code":null,"from":"Pending","site":"hami","to":"Placed","start_at":[100,101,100]}"#
            ),
            (
                "job.place",
                ids[3],
                None,
                Some(b),
                r#"{"exit_code":null,"from":"Pending","site":"hami","to":"Placed","start_at":100}"#
            ),
            (
                "job.place",
                ids[4],
                None,
                Some(a),
                r#"{"exit_code":null,"from":"Pending","site":"hami","to":"Placed","start_at":102}"#
            ),
            (
                "job.place",
                ids[5],
                None,
                Some(a),
                r#"{"exit_code":null,"from":"Pending","site":"zhongwei","to":"Placed","start_at":100}"#
            ),
        ]
    );
    assert_eq!(all[3].subject.site.as_deref(), Some("hami"));
    assert_eq!(all[0].actor, tenant(a));
    let seqs =
        |entries: Vec<crate::AuditEntry>| -> Vec<i64> { entries.iter().map(|e| e.seq).collect() };
    let about = |job: i64, tenant_id: Option<i64>| crate::AuditFilter {
        job: Some(job),
        tenant_id,
        ..Default::default()
    };
    // A job inside a run, at either end, alone, and next to a run.
    assert_eq!(seqs(read(about(ids[1], None)).await), [1, 4]);
    assert_eq!(seqs(read(about(ids[0], None)).await), [1, 4]);
    assert_eq!(seqs(read(about(ids[2], None)).await), [1, 4]);
    assert_eq!(seqs(read(about(ids[3], None)).await), [2, 5]);
    assert_eq!(seqs(read(about(ids[5], None)).await), [3, 7]);
    assert!(read(about(ids[5] + 1, None)).await.is_empty());
    assert!(read(about(ids[0] - 1, None)).await.is_empty());
    // Each tenant sees its own runs only.
    assert_eq!(seqs(read(about(ids[1], Some(a))).await), [1, 4]);
    assert!(read(about(ids[1], Some(b))).await.is_empty());
    assert_eq!(
        seqs(
            read(crate::AuditFilter {
                tenant_id: Some(b),
                ..Default::default()
            })
            .await
        ),
        [2, 5]
    );
    assert_eq!(assert_chain_intact(store).await, 7);
    // A run stretched by one job, or cut to its first: verify names it.
    for sql in [
        "UPDATE audit SET subject_job_last = subject_job_last + 1 WHERE seq = 1",
        "UPDATE audit SET subject_job_last = NULL WHERE seq = 1",
    ] {
        assert_eq!(store.tamper(sql).await.unwrap(), 1);
        match finding(store).await {
            Some(Finding::HashMismatch { seq: 1, .. }) => {}
            other => panic!("expected entry 1's hash not to match after {sql}, got {other:?}"),
        }
        let undo = format!(
            "UPDATE audit SET subject_job_last = {} WHERE seq = 1",
            ids[2]
        );
        store.tamper(&undo).await.unwrap();
        assert_eq!(finding(store).await, None, "undone, the chain is whole");
    }
    // One job's start in a run's list changed.
    store
        .tamper(&format!(
            "UPDATE audit SET detail = '{}' WHERE seq = 4",
            all[3].detail.replace("101", "99")
        ))
        .await
        .unwrap();
    match finding(store).await {
        Some(Finding::HashMismatch { seq: 4, .. }) => {}
        other => panic!("expected entry 4's hash not to match, got {other:?}"),
    }
}

/// A row deleted from the middle, or from the end: `verify` names the first
/// missing entry.
pub async fn verify_names_a_deleted_entry<S: Store + Tamper>(store: &S) {
    use crate::audit::Finding;
    drains(store, 6).await;
    store
        .tamper("DELETE FROM audit WHERE seq = 6")
        .await
        .unwrap();
    match finding(store).await {
        Some(Finding::Truncated {
            seq: 6,
            last: 5,
            head: 6,
        }) => {}
        other => panic!("expected the last entry to be missing, got {other:?}"),
    }
    store
        .tamper("DELETE FROM audit WHERE seq = 2")
        .await
        .unwrap();
    assert_eq!(finding(store).await, Some(Finding::Gap { seq: 2, next: 3 }));
}

/// Two rows swapped in the database: `verify` names the first of them as out
/// of order, and what it was written after.
pub async fn verify_names_reordered_entries<S: Store + Tamper>(store: &S) {
    use crate::audit::Finding;
    drains(store, 6).await;
    for sql in [
        "UPDATE audit SET seq = -1 WHERE seq = 3",
        "UPDATE audit SET seq = 3 WHERE seq = 4",
        "UPDATE audit SET seq = 4 WHERE seq = -1",
    ] {
        assert_eq!(store.tamper(sql).await.unwrap(), 1);
    }
    assert_eq!(
        finding(store).await,
        Some(Finding::Reordered {
            seq: 3,
            previous: 2,
            written_after: 4
        })
    );
}

/// Writers appending at once never take the same seq or link to the same
/// entry: the chain stays one line. Half of them stand for another process,
/// whose view of the head is stale whenever this one has written since.
pub async fn concurrent_appends_never_fork<S: Store + Tamper + Clone + 'static>(store: &S) {
    let mut tasks = Vec::new();
    for writer in 0..4 {
        let store = if writer % 2 == 0 {
            store.clone()
        } else {
            store.other_writer()
        };
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                store
                    .set_drained(&sys(), &format!("w{writer}-{i}"), Some("x"), i)
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(assert_chain_intact(store).await, 100);
    // A writer that last wrote long ago (its view 100 entries stale) appends
    // after the others, and so does this one: both link to the true head.
    let stale = store.other_writer();
    stale
        .set_drained(&sys(), "late", Some("x"), 1)
        .await
        .unwrap();
    for store in [&stale, store] {
        store.set_drained(&sys(), "later", None, 2).await.unwrap();
    }
    assert_eq!(assert_chain_intact(store).await, 103);
}

/// Quotas: set per scope, replaced as a whole, listed by tenant, site and class,
/// cleared by an empty set, and every change audited in the chain.
pub async fn quotas_set_replace_list_and_audit<S: Store>(store: &S) {
    let a = store.tenant("acme", 1).await.unwrap();
    let b = store.tenant("beta", 1).await.unwrap();
    let caps = |pairs: &[(&str, i64)]| -> Vec<(String, i64)> {
        pairs.iter().map(|(c, u)| (c.to_string(), *u)).collect()
    };
    store
        .set_quota(&sys(), b.id, None, &caps(&[("cpu", 4)]), 10)
        .await
        .unwrap();
    store
        .set_quota(&sys(), a.id, None, &caps(&[("cpu", 64), ("a800", 8)]), 11)
        .await
        .unwrap();
    store
        .set_quota(&sys(), a.id, Some("hami"), &caps(&[("cpu", 16)]), 12)
        .await
        .unwrap();
    let rows: Vec<(String, Option<String>, String, i64)> = store
        .quotas()
        .await
        .unwrap()
        .into_iter()
        .map(|q| (q.tenant, q.site, q.class, q.units))
        .collect();
    let row = |t: &str, s: Option<&str>, c: &str, u: i64| {
        (t.to_string(), s.map(str::to_string), c.to_string(), u)
    };
    assert_eq!(
        rows,
        [
            row("acme", None, "a800", 8),
            row("acme", None, "cpu", 64),
            row("acme", Some("hami"), "cpu", 16),
            row("beta", None, "cpu", 4),
        ]
    );
    // Setting a scope replaces it whole; other scopes and tenants keep theirs.
    store
        .set_quota(&sys(), a.id, None, &caps(&[("cpu", 32)]), 13)
        .await
        .unwrap();
    store.set_quota(&sys(), b.id, None, &[], 14).await.unwrap();
    let rows: Vec<(String, Option<String>, String, i64)> = store
        .quotas()
        .await
        .unwrap()
        .into_iter()
        .map(|q| (q.tenant, q.site, q.class, q.units))
        .collect();
    assert_eq!(
        rows,
        [
            row("acme", None, "cpu", 32),
            row("acme", Some("hami"), "cpu", 16)
        ]
    );
    let audited = store
        .audit(&crate::audit::AuditFilter {
            action: Some("quota.set".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audited.len(), 5);
    assert_eq!(audited[2].subject.site.as_deref(), Some("hami"));
    assert_eq!(audited[2].subject.tenant_id, Some(a.id));
    assert!(
        audited[3].detail.contains("\"cpu\":32"),
        "{}",
        audited[3].detail
    );
    assert_chain_intact(store).await;
}

pub async fn shares_set_list_save_usage_and_audit<S: Store>(store: &S) {
    let company = store.tenant("company", 1).await.unwrap();
    let dept = store.tenant("dept", 1).await.unwrap();
    let other = store.tenant("other", 1).await.unwrap();
    // Every tenant starts with weight 1, no group, no usage.
    let shares = store.shares().await.unwrap();
    assert_eq!(
        shares.iter().map(|s| s.tenant.as_str()).collect::<Vec<_>>(),
        ["company", "dept", "other"]
    );
    assert!(
        shares
            .iter()
            .all(|s| s.weight == 1.0 && s.parent.is_none() && s.usage.is_none())
    );
    store
        .set_share(&sys(), dept.id, 3.0, Some(company.id), 10)
        .await
        .unwrap();
    store
        .save_usage(&[(dept.id, 120.5), (other.id, 7.0)], 20)
        .await
        .unwrap();
    store.save_usage(&[(other.id, 8.0)], 30).await.unwrap();
    let shares = store.shares().await.unwrap();
    let dept_row = shares.iter().find(|s| s.tenant == "dept").unwrap();
    assert_eq!(dept_row.weight, 3.0);
    assert_eq!(dept_row.parent, Some((company.id, "company".to_string())));
    assert_eq!(dept_row.usage, Some((120.5, 20)));
    let other_row = shares.iter().find(|s| s.tenant == "other").unwrap();
    assert_eq!(other_row.usage, Some((8.0, 30)), "saving again replaces");
    // Leaving the group.
    store
        .set_share(&sys(), dept.id, 2.0, None, 40)
        .await
        .unwrap();
    let shares = store.shares().await.unwrap();
    let dept_row = shares.iter().find(|s| s.tenant == "dept").unwrap();
    assert_eq!((dept_row.weight, dept_row.parent.clone()), (2.0, None));
    let audited = store
        .audit(&crate::audit::AuditFilter {
            action: Some("share.set".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audited.len(), 2, "usage is bookkeeping, not audited");
    assert_eq!(audited[0].subject.tenant_id, Some(dept.id));
    assert!(
        audited[0].detail.contains("\"weight\":3"),
        "{}",
        audited[0].detail
    );
    assert_chain_intact(store).await;
}

pub async fn spills_set_replace_clear_and_audit<S: Store>(store: &S) {
    let lab = store.tenant("lab", 1).await.unwrap();
    store.tenant("other", 1).await.unwrap();
    let acme = store.provider(&sys(), "acme", 1).await.unwrap();
    // Every tenant starts with no list and no own provider.
    let spills = store.spills().await.unwrap();
    assert_eq!(
        spills.iter().map(|s| s.tenant.as_str()).collect::<Vec<_>>(),
        ["lab", "other"]
    );
    assert!(
        spills
            .iter()
            .all(|s| s.spill.is_empty() && s.own_provider.is_none())
    );
    let list = ["site:cq-1".to_string(), "anywhere".to_string()];
    store
        .set_spill(&sys(), lab.id, &list, Some(acme.id), 10)
        .await
        .unwrap();
    let spills = store.spills().await.unwrap();
    let row = spills.iter().find(|s| s.tenant == "lab").unwrap();
    assert_eq!(row.spill, list, "kept in order");
    assert_eq!(row.own_provider, Some((acme.id, "acme".to_string())));
    let other = spills.iter().find(|s| s.tenant == "other").unwrap();
    assert!(other.spill.is_empty() && other.own_provider.is_none());
    // Setting again replaces both; empty clears.
    store
        .set_spill(&sys(), lab.id, &[], None, 20)
        .await
        .unwrap();
    let spills = store.spills().await.unwrap();
    let row = spills.iter().find(|s| s.tenant == "lab").unwrap();
    assert!(row.spill.is_empty() && row.own_provider.is_none());
    let audited = store
        .audit(&crate::audit::AuditFilter {
            action: Some("spill.set".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audited.len(), 2);
    assert!(audited.iter().all(|a| a.subject.tenant_id == Some(lab.id)));
    assert!(
        audited.iter().any(|a| a.detail.contains("site:cq-1")
            && a.detail.contains(&format!("\"own_provider\":{}", acme.id))),
        "{:?}",
        audited.iter().map(|a| &a.detail).collect::<Vec<_>>()
    );
    assert_chain_intact(store).await;
}

pub async fn a_flood_does_not_keep_others_out_of_a_pass<S: Store>(store: &S) {
    let flood = store.tenant("flood", 1).await.unwrap();
    let late = store.tenant("late", 1).await.unwrap();
    let batch = |tenant: i64, n: usize| -> Vec<crate::NewJob> {
        (0..n)
            .map(|_| crate::NewJob {
                actor: sys(),
                tenant_id: tenant,
                idempotency_key: None,
                spec: "{}".into(),
            })
            .collect()
    };
    // Fewer pending than the limit: all of them, by id.
    let first = store.submit_many(&batch(flood.id, 5), 2).await.unwrap();
    let got = store.pending_for_pass(10, 100).await.unwrap();
    assert_eq!(
        got.iter().map(|j| j.id).collect::<Vec<_>>(),
        first.iter().map(|(j, _)| j.id).collect::<Vec<_>>()
    );
    // A flood of 40 from one tenant, then 3 from another: a pass of 10 takes
    // turns, so the late tenant's 3 are in it.
    store.submit_many(&batch(flood.id, 35), 3).await.unwrap();
    let late_jobs = store.submit_many(&batch(late.id, 3), 4).await.unwrap();
    let got = store.pending_for_pass(10, 100).await.unwrap();
    assert_eq!(got.len(), 10);
    assert!(got.windows(2).all(|w| w[0].id < w[1].id), "by id");
    for (job, _) in &late_jobs {
        assert!(
            got.iter().any(|j| j.id == job.id),
            "late job {} left out",
            job.id
        );
    }
    assert_eq!(got.iter().filter(|j| j.tenant_id == flood.id).count(), 7);
    // Only the oldest `window` pending take part: beyond it, the flood's oldest.
    let got = store.pending_for_pass(10, 20).await.unwrap();
    assert!(got.iter().all(|j| j.tenant_id == flood.id));
}

/// Classes start at `normal` and are set (audited); a running job stopped for
/// a job of a higher class goes back to Pending with the preemption recorded,
/// its agent's heartbeat for that attempt is answered `preempt` (another
/// agent's, `stale`), its next lease is attempt 2, and the same attempt cannot
/// be stopped twice.
pub async fn a_preempted_job_is_requeued_its_agent_told_and_its_next_lease_is_attempt_2<
    S: Store,
>(
    store: &S,
) {
    use crate::{AuditFilter, HeldVerdict, PreemptionFilter, PreemptionRecord};
    use suanwang_model::PriorityClass;
    let acme = store.tenant("acme", 1).await.unwrap();
    let boss = store.tenant("boss", 1).await.unwrap();
    let classes = store.classes().await.unwrap();
    assert!(
        classes.iter().all(|(_, _, c)| *c == PriorityClass::Normal),
        "{classes:?}"
    );
    store
        .set_class(&sys(), boss.id, PriorityClass::Urgent, 5)
        .await
        .unwrap();
    store
        .set_class(&sys(), acme.id, PriorityClass::Batch, 5)
        .await
        .unwrap();
    assert_eq!(
        store.classes().await.unwrap(),
        vec![
            (acme.id, "acme".to_string(), PriorityClass::Batch),
            (boss.id, "boss".to_string(), PriorityClass::Urgent),
        ]
    );
    let audited = store
        .audit(&AuditFilter {
            action: Some("class.set".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audited.len(), 2);

    store
        .register_agent(&sys(), &agent("a1", "s1", 10))
        .await
        .unwrap();
    store
        .register_agent(&sys(), &agent("a2", "s1", 10))
        .await
        .unwrap();
    let victim = placed(store, "s1", 100).await;
    let by = placed(store, "s1", 100).await;
    let leased = store.lease(&sys(), "a1", "s1", 1, 200, 100).await.unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].id, victim.id);
    store
        .report(&sys(), "a1", victim.id, 1, JobState::Running, None, 110)
        .await
        .unwrap();
    let stop = PreemptionRecord {
        job_id: victim.id,
        attempt: 1,
        by_job: by.id,
        site: "s1".into(),
        at: 150,
        class: "batch".into(),
        by_class: "urgent".into(),
        ran_secs: 40,
        lost_cny: 0.25,
    };
    // A stale attempt is not stopped.
    let wrong = PreemptionRecord {
        attempt: 7,
        ..stop.clone()
    };
    assert!(
        !store
            .preempt(&sys(), &wrong, JobState::Running, "{}", 150)
            .await
            .unwrap()
    );
    assert!(
        store
            .preempt(
                &sys(),
                &stop,
                JobState::Running,
                r#"{"outcome":"preempted"}"#,
                150
            )
            .await
            .unwrap()
    );
    let now = store.job(victim.id).await.unwrap();
    assert_eq!(now.state, JobState::Pending);
    assert_eq!((now.site.as_deref(), now.started_at), (None, None));
    assert!(
        !store
            .preempt(&sys(), &stop, JobState::Running, "{}", 151)
            .await
            .unwrap(),
        "stopped once"
    );
    // Its agent is told to preempt; another agent holding that token is stale.
    let told = store
        .heartbeat("a1", None, &[(victim.id, 1)], 300, 160)
        .await
        .unwrap();
    assert_eq!(told, vec![HeldVerdict::Preempt]);
    let other = store
        .heartbeat("a2", None, &[(victim.id, 1)], 300, 160)
        .await
        .unwrap();
    assert_eq!(other, vec![HeldVerdict::Stale]);
    // Recorded, found as the victim's and the preemptor's.
    for job in [victim.id, by.id] {
        let found = store
            .preemptions(&PreemptionFilter {
                job: Some(job),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(found, vec![stop.clone()]);
    }
    let recent = store
        .preemptions(&PreemptionFilter {
            since: Some(151),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(recent.is_empty(), "{recent:?}");
    let decisions = store.decisions(victim.id).await.unwrap();
    assert!(decisions.iter().any(|d| d.body.contains("preempted")));
    let audited = store
        .audit(&AuditFilter {
            action: Some("job.preempt".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audited.len(), 1);
    // Placed again and leased: attempt 2.
    let change = Transition {
        from: JobState::Pending,
        to: JobState::Placed,
        site: Some("s1".into()),
        start_at: Some(170),
        exit_code: None,
    };
    store
        .transition(&sys(), victim.id, &change, 170)
        .await
        .unwrap();
    let again = store.lease(&sys(), "a2", "s1", 5, 400, 180).await.unwrap();
    let again = again.iter().find(|j| j.id == victim.id).unwrap();
    assert_eq!(again.lease_token, 2);
    assert_chain_intact(store).await;
}

/// An agent that restarted asks back the leases its engine still runs: a
/// current lease of its site moves to it (renewed, audited `job.resume`), and
/// its heartbeat then renews it while the old agent's is answered `stale`; a
/// token that is not the job's current one, another site's job, or a job that
/// has ended is not handed over.
pub async fn a_restarted_agent_resumes_only_current_leases_of_its_site<S: Store>(store: &S) {
    use crate::{AuditFilter, HeldVerdict};
    for (id, site) in [("old", "s1"), ("new", "s1"), ("far", "s2")] {
        store
            .register_agent(&sys(), &agent(id, site, 10))
            .await
            .unwrap();
    }
    let running = placed(store, "s1", 100).await;
    let done = placed(store, "s1", 100).await;
    let elsewhere = placed(store, "s2", 100).await;
    let leased = store.lease(&sys(), "old", "s1", 2, 200, 100).await.unwrap();
    assert_eq!(leased.len(), 2);
    store
        .report(&sys(), "old", running.id, 1, JobState::Running, None, 110)
        .await
        .unwrap();
    store
        .report(&sys(), "old", done.id, 1, JobState::Succeeded, Some(0), 120)
        .await
        .unwrap();
    store.lease(&sys(), "far", "s2", 1, 200, 100).await.unwrap();

    let asked = [
        (running.id, 1),
        (done.id, 1),
        (elsewhere.id, 1),
        (running.id, 9),
    ];
    let resumed = store
        .resume_leases(&sys(), "new", "s1", &asked, 500, 130)
        .await
        .unwrap();
    assert_eq!(
        resumed,
        vec![running.id],
        "only the current lease of its site"
    );
    let now = store.job(running.id).await.unwrap();
    assert_eq!(
        (now.lease_agent.as_deref(), now.lease_token, now.state),
        (Some("new"), 1, JobState::Running)
    );
    assert_eq!(
        store
            .heartbeat("new", None, &[(running.id, 1)], 600, 140)
            .await
            .unwrap(),
        vec![HeldVerdict::Renewed]
    );
    assert_eq!(
        store
            .heartbeat("old", None, &[(running.id, 1)], 600, 140)
            .await
            .unwrap(),
        vec![HeldVerdict::Stale],
        "the old agent's claim is over"
    );
    let audited = store
        .audit(&AuditFilter {
            action: Some("job.resume".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audited.len(), 1);
    assert!(
        store
            .resume_leases(&sys(), "new", "s1", &[], 500, 150)
            .await
            .unwrap()
            .is_empty()
    );
    assert_chain_intact(store).await;
}
