//! `suanwang audit verify` and `export` as a process, against a real SQLite
//! database written by the binary itself and then edited by hand.

use std::process::{Command, Output};

fn suanwang(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_suanwang"))
        .args(args)
        .output()
        .expect("run suanwang")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A database with a few audited changes made by the binary: three tokens and
/// a provider (created, then given its sites).
fn database(name: &str) -> (String, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("suanwang-cli-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.db"));
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    for args in [
        &["admin", "token", "--database", &url, "--role", "admin"][..],
        &[
            "admin",
            "token",
            "--database",
            &url,
            "--role",
            "tenant",
            "--tenant",
            "acme",
        ],
        &[
            "admin",
            "provider",
            "--database",
            &url,
            "west-dc",
            "--site",
            "hami",
        ],
        &[
            "admin",
            "token",
            "--database",
            &url,
            "--role",
            "agent",
            "--site",
            "hami",
        ],
    ] {
        let out = suanwang(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    (url, path)
}

fn tamper(url: &str, sql: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1, "{sql}");
        pool.close().await;
    });
}

#[test]
fn verify_passes_a_whole_log_and_exits_3_naming_an_edited_row() {
    let (url, _) = database("edited");
    let out = suanwang(&["audit", "verify", "--database", &url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.starts_with("audit log intact: 5 entries, head "),
        "{said}"
    );

    tamper(
        &url,
        "UPDATE audit SET detail = '{\"role\":\"admin\"}' WHERE seq = 2",
    );
    let out = suanwang(&["audit", "verify", "--database", &url]);
    assert_eq!(out.status.code(), Some(3), "a broken chain exits 3");
    let said = text(&out.stdout);
    assert!(
        said.contains("1 entries match, then entry 2: hash mismatch"),
        "{said}"
    );
    assert!(text(&out.stderr).contains("the audit log is broken at entry 2"));
}

#[test]
fn verify_names_a_deleted_and_a_reordered_row() {
    let (url, _) = database("deleted");
    tamper(&url, "DELETE FROM audit WHERE seq = 3");
    let out = suanwang(&["audit", "verify", "--database", &url]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stdout).contains("entry 3: missing (the next entry is 4)"),
        "{}",
        text(&out.stdout)
    );

    let (url, _) = database("reordered");
    for sql in [
        "UPDATE audit SET seq = -1 WHERE seq = 4",
        "UPDATE audit SET seq = 4 WHERE seq = 5",
        "UPDATE audit SET seq = 5 WHERE seq = -1",
    ] {
        tamper(&url, sql);
    }
    let out = suanwang(&["audit", "verify", "--database", &url]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stdout).contains("entry 4: out of order: it was written after entry 5"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn verify_refuses_a_missing_database_and_export_writes_json_lines() {
    let out = suanwang(&[
        "audit",
        "verify",
        "--database",
        "sqlite:///nonexistent/suanwang.db",
    ]);
    assert_eq!(out.status.code(), Some(1), "cannot read is not broken");
    assert!(text(&out.stderr).contains("no such file"));

    let (url, path) = database("export");
    let file = path.with_extension("jsonl");
    let out = suanwang(&[
        "audit",
        "export",
        "--database",
        &url,
        "--output",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = std::fs::read_to_string(&file).unwrap();
    let entries: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "token.issue",
            "token.issue",
            "provider.create",
            "provider.sites",
            "token.issue"
        ]
    );
    assert!(entries.iter().all(|e| e["actor"]["role"] == "system"));
    for pair in entries.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
    }
    let out = suanwang(&["audit", "export", "--database", &url, "--after", "3"]);
    assert_eq!(text(&out.stdout).lines().count(), 2, "after seq 3");
}

/// An entry covering a run of jobs (the submits of one group-commit batch,
/// written by the store as the server writes them), edited by hand: its range
/// stretched by one job, or a job's key in its list changed. `verify` names it.
#[test]
fn verify_names_an_edited_run_entry() {
    let (url, _) = database("run");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use suanwang_store::{Actor, NewJob, SqliteStore, Store};
        let store = SqliteStore::connect(&url).await.unwrap();
        let tenant = store.tenant("acme", 1).await.unwrap().id;
        let actor = Actor {
            role: "tenant".into(),
            id: "0123456789abcdef".into(),
            tenant_id: Some(tenant),
            provider_id: None,
            site: None,
        };
        let batch: Vec<NewJob> = ["k1", "k2", "k3"]
            .iter()
            .map(|key| NewJob {
                actor: actor.clone(),
                tenant_id: tenant,
                idempotency_key: Some((*key).to_string()),
                spec: "{}".into(),
            })
            .collect();
        store.submit_many(&batch, 2).await.unwrap();
    });
    let out = suanwang(&["audit", "verify", "--database", &url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("audit log intact: 6 entries, head "),
        "{}",
        text(&out.stdout)
    );
    let out = suanwang(&["audit", "export", "--database", &url, "--after", "5"]);
    let run: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(run["action"], "job.submit");
    assert_eq!(run["subject"]["job"], 1);
    assert_eq!(run["subject"]["job_last"], 3);
    assert_eq!(
        run["detail"],
        r#"{"count":3,"idempotency_key":["k1","k2","k3"]}"#
    );

    for (edit, undo) in [
        (
            "UPDATE audit SET subject_job_last = 4 WHERE seq = 6",
            "UPDATE audit SET subject_job_last = 3 WHERE seq = 6",
        ),
        (
            "UPDATE audit SET detail = '{\"count\":3,\"idempotency_key\":[\"k1\",\"kX\",\"k3\"]}' WHERE seq = 6",
            "UPDATE audit SET detail = '{\"count\":3,\"idempotency_key\":[\"k1\",\"k2\",\"k3\"]}' WHERE seq = 6",
        ),
    ] {
        tamper(&url, edit);
        let out = suanwang(&["audit", "verify", "--database", &url]);
        assert_eq!(out.status.code(), Some(3), "{edit}");
        let said = text(&out.stdout);
        assert!(
            said.contains("5 entries match, then entry 6: hash mismatch"),
            "{edit}: {said}"
        );
        tamper(&url, undo);
        let out = suanwang(&["audit", "verify", "--database", &url]);
        assert_eq!(out.status.code(), Some(0), "{undo}: {}", text(&out.stdout));
    }
}
