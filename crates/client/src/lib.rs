//! A typed client of the suanwang HTTP API. Requests are built here; responses are
//! returned as JSON documents so that callers can print them as they are
//! (`--json`) or pick fields for tables.

use serde_json::Value;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached.
    #[error(
        "cannot reach the control plane at {url}: {reason} (is `suanwang serve` running? set --url or SUANWANG_URL)"
    )]
    Unreachable {
        /// Base URL.
        url: String,
        /// What the connection said.
        reason: String,
    },
    /// The server answered with an error.
    #[error("{message}{}", field.as_ref().map(|f| format!(" (field {f})")).unwrap_or_default())]
    Api {
        /// HTTP status.
        status: u16,
        /// Machine-readable code.
        code: String,
        /// What is wrong.
        message: String,
        /// Field at fault.
        field: Option<String>,
    },
    /// The answer was not the JSON expected.
    #[error("unexpected answer from {url}: {reason}")]
    Protocol {
        /// Request URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

impl ClientError {
    /// The server's error code (`stale_lease`, `not_found`…), if it answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A client for one server and token.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, token: Option<String>) -> Client {
        Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await.map_err(|e| {
            let mut reason = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                reason = s.to_string();
                source = s.source();
            }
            ClientError::Unreachable {
                url: self.base.clone(),
                reason,
            }
        })?;
        let status = resp.status();
        let url = resp.url().to_string();
        let body: Value = resp.json().await.map_err(|e| ClientError::Protocol {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        if status.is_success() {
            return Ok(body);
        }
        Err(ClientError::Api {
            status: status.as_u16(),
            code: body["code"].as_str().unwrap_or("error").to_string(),
            message: body["message"]
                .as_str()
                .unwrap_or("request failed")
                .to_string(),
            field: body["field"].as_str().map(str::to_string),
        })
    }

    /// `POST /v1/jobs`.
    pub async fn submit(
        &self,
        job: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ClientError> {
        let mut req = self.http.post(format!("{}/v1/jobs", self.base)).json(job);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        self.send(req).await
    }

    /// `GET /v1/jobs/{id}`.
    pub async fn job(&self, id: i64) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}/v1/jobs/{id}", self.base)))
            .await
    }

    /// `GET /v1/jobs` with query parameters.
    pub async fn jobs(&self, query: &[(&str, String)]) -> Result<Value, ClientError> {
        let mut url = reqwest::Url::parse(&format!("{}/v1/jobs", self.base)).map_err(|e| {
            ClientError::Protocol {
                url: self.base.clone(),
                reason: e.to_string(),
            }
        })?;
        for (key, value) in query {
            url.query_pairs_mut().append_pair(key, value);
        }
        self.send(self.http.get(url)).await
    }

    /// `POST /v1/jobs/{id}/cancel`.
    pub async fn cancel(&self, id: i64) -> Result<Value, ClientError> {
        self.send(self.http.post(format!("{}/v1/jobs/{id}/cancel", self.base)))
            .await
    }

    /// `GET /v1/jobs/{id}/explain`.
    pub async fn explain(&self, id: i64) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}/v1/jobs/{id}/explain", self.base)))
            .await
    }

    /// `GET /v1/jobs/{id}/logs`: the tail of the job's output.
    pub async fn logs(&self, id: i64) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}/v1/jobs/{id}/logs", self.base)))
            .await
    }

    /// `PUT /v1/sites/{id}`: creates or replaces a site (operator).
    pub async fn put_site(&self, id: &str, site: &Value) -> Result<Value, ClientError> {
        self.send(
            self.http
                .put(format!("{}/v1/sites/{id}", self.base))
                .json(site),
        )
        .await
    }

    /// `POST /v1/sites/{id}/drain` (with a reason) or `/undrain` (operator).
    pub async fn drain(&self, id: &str, reason: Option<&str>) -> Result<Value, ClientError> {
        let req = match reason {
            Some(reason) => self
                .http
                .post(format!("{}/v1/sites/{id}/drain", self.base))
                .json(&serde_json::json!({ "reason": reason })),
            None => self
                .http
                .post(format!("{}/v1/sites/{id}/undrain", self.base)),
        };
        self.send(req).await
    }

    /// `GET /v1/sites`.
    pub async fn sites(&self) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}/v1/sites", self.base)))
            .await
    }

    /// Gives up on a request after `timeout` (by default requests wait as long as
    /// the connection lives).
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Client {
        if let Ok(http) = reqwest::Client::builder().timeout(timeout).build() {
            self.http = http;
        }
        self
    }

    /// `POST /v1/agents`: registers an agent; the answer carries its id, the
    /// heartbeat interval and the lease time.
    pub async fn register_agent(&self, registration: &Value) -> Result<Value, ClientError> {
        self.send(
            self.http
                .post(format!("{}/v1/agents", self.base))
                .json(registration),
        )
        .await
    }

    /// `POST /v1/agents/{id}/heartbeat`.
    pub async fn heartbeat(&self, agent: &str, beat: &Value) -> Result<Value, ClientError> {
        self.send(
            self.http
                .post(format!("{}/v1/agents/{agent}/heartbeat", self.base))
                .json(beat),
        )
        .await
    }

    /// `POST /v1/agents/{id}/lease`: at most `max` jobs whose start has come.
    pub async fn lease(&self, agent: &str, max: u32) -> Result<Value, ClientError> {
        self.send(
            self.http
                .post(format!("{}/v1/agents/{agent}/lease", self.base))
                .json(&serde_json::json!({ "max": max })),
        )
        .await
    }

    /// `POST /v1/agents/{id}/lease` as a long poll: when nothing is due, the
    /// server answers when the scheduler places something, or empty after `wait`.
    pub async fn lease_wait(
        &self,
        agent: &str,
        max: u32,
        wait: std::time::Duration,
    ) -> Result<Value, ClientError> {
        self.send(
            self.http
                .post(format!("{}/v1/agents/{agent}/lease", self.base))
                .json(&serde_json::json!({ "max": max, "wait_ms": wait.as_millis() as u64 })),
        )
        .await
    }

    /// `POST /v1/agents/{id}/report`.
    pub async fn report(&self, agent: &str, report: &Value) -> Result<Value, ClientError> {
        self.send(
            self.http
                .post(format!("{}/v1/agents/{agent}/report", self.base))
                .json(report),
        )
        .await
    }

    /// `GET /v1/agents`.
    pub async fn agents(&self) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}/v1/agents", self.base)))
            .await
    }

    /// `GET /v1/overview`: per site capacity, use, power, carbon and price now, and
    /// the network's totals.
    pub async fn overview(&self) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}/v1/overview", self.base)))
            .await
    }
}
