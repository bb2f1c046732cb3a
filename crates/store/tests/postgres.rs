//! The shared store suite against PostgreSQL. Runs when SUANWANG_TEST_POSTGRES
//! holds a URL of a role that may create databases (`.ci/run` starts a server and
//! sets it); each test gets a database of its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use suanwang_store::PostgresStore;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

async fn fresh() -> Option<PostgresStore> {
    let Ok(url) = std::env::var("SUANWANG_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("SUANWANG_REQUIRE_POSTGRES").is_none(),
            "SUANWANG_REQUIRE_POSTGRES is set but SUANWANG_TEST_POSTGRES is not"
        );
        eprintln!(
            "skipped: SUANWANG_TEST_POSTGRES is not set (tools/start-postgres.sh prints one; CI sets it)"
        );
        return None;
    };
    let name = format!(
        "suanwang_test_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let admin = sqlx::PgPool::connect(&url)
        .await
        .expect("connect to SUANWANG_TEST_POSTGRES");
    // The name is ours (digits and underscores), so formatting it in is safe.
    let drop = format!("DROP DATABASE IF EXISTS {name}");
    let create = format!("CREATE DATABASE {name}");
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
    Some(
        PostgresStore::connect(&format!("{base}/{name}"))
            .await
            .unwrap(),
    )
}

suanwang_store::store_test_suite!(fresh().await);
