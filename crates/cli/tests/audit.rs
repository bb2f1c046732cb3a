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
