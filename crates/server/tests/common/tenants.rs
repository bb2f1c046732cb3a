//! A server over a real socket and a real SQLite database with an admin and
//! two tenants (`acme`, `beta`), for the tests of tenants' shares of the
//! network (quotas, fair share) and of why jobs wait.

// Each test file that includes it uses part of it.
#![allow(dead_code)]

use reqwest::StatusCode;
use serde_json::Value;
use suanwang_server::{App, auth};
use suanwang_store::{Role, SqliteStore};

pub struct Net {
    pub base: String,
    pub store: SqliteStore,
    pub admin: String,
    pub acme: String,
    pub beta: String,
    pub http: reqwest::Client,
    pub _stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn start(prefix: &str, name: &str) -> Net {
    let dir = std::env::temp_dir().join(format!("suanwang-{prefix}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.db"));
    let _ = std::fs::remove_file(&path);
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let admin = auth::issue_token(&store, Role::Admin, None, 0)
        .await
        .unwrap();
    let acme = auth::issue_token(&store, Role::Tenant, Some("acme"), 0)
        .await
        .unwrap();
    let beta = auth::issue_token(&store, Role::Tenant, Some("beta"), 0)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = App::new(
        store.clone(),
        suanwang_topology::builtin("cn-west").unwrap(),
    );
    tokio::spawn(suanwang_server::run(listener, app, async {
        let _ = stopped.await;
    }));
    Net {
        base,
        store,
        admin,
        acme,
        beta,
        http: reqwest::Client::new(),
        _stop: stop,
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Net {
    pub async fn send(&self, req: reqwest::RequestBuilder, token: &str) -> (StatusCode, Value) {
        let resp = req.bearer_auth(token).send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: &str) -> Value {
        let (status, body) = self
            .send(self.http.get(format!("{}{path}", self.base)), token)
            .await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }
}
