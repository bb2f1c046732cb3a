//! The shared store suite against SQLite (always runs).

use std::sync::atomic::{AtomicUsize, Ordering};
use suanwang_store::SqliteStore;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

async fn fresh() -> Option<SqliteStore> {
    let dir = std::env::temp_dir().join(format!("suanwang-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.db", COUNTER.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_file(&path);
    Some(
        SqliteStore::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap(),
    )
}

suanwang_store::store_test_suite!(fresh().await);

#[tokio::test]
async fn data_survives_reopening() {
    use suanwang_store::Store;
    let dir = std::env::temp_dir().join(format!("suanwang-store-reopen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("a.db").display());
    let id = {
        let store = SqliteStore::connect(&url).await.unwrap();
        let t = store.tenant("acme", 1).await.unwrap();
        store
            .submit(&suanwang_store::Actor::system(), t.id, Some("k"), "{}", 2)
            .await
            .unwrap()
            .0
            .id
    };
    let store = SqliteStore::connect(&url).await.unwrap();
    assert_eq!(
        store.job(id).await.unwrap().idempotency_key.as_deref(),
        Some("k")
    );
}
