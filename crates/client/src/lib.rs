//! The typed HTTP client of the suanwang API: one method per route, taking and
//! returning `suanwang-api`'s types. Used by the CLI, the agent, the demo and the
//! tests.
//!
//! Architecture invariant: no business logic — it builds requests from typed
//! values and decodes the server's documents; an error answer becomes
//! [`ClientError::Api`] with the server's code, message and field.

use serde::Serialize;
use serde::de::DeserializeOwned;
use suanwang_api::{
    AcceleratorDoc, AcceleratorSpec, AgentDoc, AuditEntry, AuditPage, AuditQuery, DrainRequest,
    ErrorBody, ErrorCode, Flows, Heartbeat, HeartbeatAnswer, IssuedToken, JobDoc, JobExplanation,
    JobPage, JobQuery, JobSubmission, LeaseRequest, Leases, Logs, NewTenant, NewToken, Overview,
    QuotaDoc, QuotaSet, Registered, Registration, Report, SavingsDoc, SavingsQuery, SeriesDoc,
    SeriesQuery, ServerEvent, ShareDoc, ShareSet, SiteDoc, SpillDoc, SpillSet, TelemetryDoc,
    TelemetryQuery, TenantDoc, TokenDoc,
};
use suanwang_model::{Link, Region, Site};

pub use suanwang_api as api;

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
    /// The TLS handshake with the server failed: most often a certificate
    /// signed by a CA this client does not trust.
    #[error(
        "TLS with the control plane at {url} failed: {reason} (a private CA? give its certificate with --ca-cert or SUANWANG_CA_CERT)"
    )]
    Tls {
        /// Base URL.
        url: String,
        /// What the handshake said.
        reason: String,
    },
    /// The client's own TLS set-up could not be loaded (a CA or client
    /// certificate file).
    #[error("{0}")]
    Config(String),
    /// The server answered with an error.
    #[error("{message}{}", field.as_ref().map(|f| format!(" (field {f})")).unwrap_or_default())]
    Api {
        /// HTTP status.
        status: u16,
        /// Machine-readable code (`stale_lease`, `not_found`…).
        code: String,
        /// What is wrong.
        message: String,
        /// Field at fault.
        field: Option<String>,
        /// How long the server asked to wait (`Retry-After`, on a 429).
        retry_after: Option<std::time::Duration>,
    },
    /// The answer was not the document expected.
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

    /// Whether the server answered with `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.code() == Some(code.as_str())
    }

    /// How long the server asked to wait before trying again (a 429's
    /// `Retry-After`).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            ClientError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A job submitted: the job, and whether this call created it (false: a job
/// with the same idempotency key existed and is returned).
#[derive(Debug)]
pub struct Submitted {
    /// The job.
    pub job: JobDoc,
    /// Whether it is new.
    pub created: bool,
}

/// How a client reaches a control plane that serves TLS (`https://` URLs).
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// A CA certificate file (PEM) to trust instead of the system's roots: the
    /// private CA that signed the server's certificate.
    pub ca_cert: Option<std::path::PathBuf>,
    /// A client certificate and its private key (PEM files), for mutual TLS:
    /// an agent's certificate names its site.
    pub identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl TlsOptions {
    /// Whether anything differs from the defaults (system roots, no client
    /// certificate).
    pub fn is_default(&self) -> bool {
        self.ca_cert.is_none() && self.identity.is_none()
    }
}

/// What the HTTP client is built from, kept so that changing one setting keeps
/// the others.
#[derive(Debug, Clone, Default)]
struct Settings {
    timeout: Option<std::time::Duration>,
    roots: Vec<reqwest::Certificate>,
    identity: Option<reqwest::Identity>,
}

impl Settings {
    fn build(&self) -> Result<reqwest::Client, ClientError> {
        let mut builder = reqwest::Client::builder();
        if let Some(timeout) = self.timeout {
            builder = builder.timeout(timeout);
        }
        if !self.roots.is_empty() {
            builder = builder.tls_certs_only(self.roots.iter().cloned());
        }
        if let Some(identity) = &self.identity {
            builder = builder.identity(identity.clone());
        }
        builder
            .build()
            .map_err(|e| ClientError::Config(format!("setting up the HTTP client: {e}")))
    }
}

fn read_pem(path: &std::path::Path, what: &str) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path)
        .map_err(|e| ClientError::Config(format!("reading the {what} {}: {e}", path.display())))
}

/// A client for one server and token. Its clones share the token, so that
/// [`Client::set_token`] (a rotated credential) reaches every one.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: std::sync::Arc<std::sync::RwLock<Option<String>>>,
    http: reqwest::Client,
    settings: Settings,
}

impl Client {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8080`, or
    /// `https://…`, trusting the system's CAs; see [`Client::with_tls`]).
    pub fn new(base: &str, token: Option<String>) -> Client {
        Client {
            base: base.trim_end_matches('/').to_string(),
            token: std::sync::Arc::new(std::sync::RwLock::new(token)),
            http: reqwest::Client::new(),
            settings: Settings::default(),
        }
    }

    /// Trusts `tls.ca_cert` instead of the system's CAs and presents
    /// `tls.identity`, as the options say. Fails, naming the file, if one
    /// cannot be read or is not PEM.
    pub fn with_tls(mut self, tls: &TlsOptions) -> Result<Client, ClientError> {
        if let Some(path) = &tls.ca_cert {
            let pem = read_pem(path, "CA certificate")?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ClientError::Config(format!("the CA certificate {}: {e}", path.display()))
            })?;
            if roots.is_empty() {
                return Err(ClientError::Config(format!(
                    "the CA certificate {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    path.display()
                )));
            }
            self.settings.roots = roots;
        }
        if let Some((cert, key)) = &tls.identity {
            let mut pem = read_pem(cert, "client certificate")?;
            pem.push(b'\n');
            pem.extend(read_pem(key, "client key")?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                ClientError::Config(format!(
                    "the client certificate {} and key {}: {e}",
                    cert.display(),
                    key.display()
                ))
            })?;
            self.settings.identity = Some(identity);
        }
        self.http = self.settings.build()?;
        Ok(self)
    }

    /// Uses `token` from the next request on (in this client and its clones).
    pub fn set_token(&self, token: String) {
        if let Ok(mut current) = self.token.write() {
            *current = Some(token);
        }
    }

    /// The token in use.
    pub fn token(&self) -> Option<String> {
        self.token.read().ok().and_then(|t| t.clone())
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.token.read().ok().as_deref().and_then(Option::as_deref) {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Gives up on a request after `timeout` (by default requests wait as long as
    /// the connection lives).
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Client {
        self.settings.timeout = Some(timeout);
        if let Ok(http) = self.settings.build() {
            self.http = http;
        }
        self
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn unreachable(&self, e: &reqwest::Error) -> ClientError {
        let mut reason = e.to_string();
        let mut tls = false;
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason = s.to_string();
            tls |= s.is::<rustls::Error>()
                || s.downcast_ref::<std::io::Error>()
                    .and_then(std::io::Error::get_ref)
                    .is_some_and(|inner| inner.is::<rustls::Error>());
            source = s.source();
        }
        // rustls's error may come wrapped beyond reach of the chain; its text
        // says what it is.
        tls |= reason.contains("certificate") || reason.contains("TLS");
        if tls {
            return ClientError::Tls {
                url: self.base.clone(),
                reason,
            };
        }
        if self.base.starts_with("http://")
            && (reason.contains("closed") || reason.contains("invalid HTTP version"))
        {
            reason.push_str("; if the control plane serves TLS, use an https:// URL");
        }
        ClientError::Unreachable {
            url: self.base.clone(),
            reason,
        }
    }

    /// Sends a request and returns the answer's status and body if it succeeded.
    async fn exchange(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(u16, String, bytes_body::Body), ClientError> {
        let req = self.authorize(req);
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let url = resp.url().to_string();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(std::time::Duration::from_secs);
        let body = resp.bytes().await.map_err(|e| ClientError::Protocol {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        if status.is_success() {
            return Ok((status.as_u16(), url, bytes_body::Body(body)));
        }
        Err(match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(error) => ClientError::Api {
                status: status.as_u16(),
                code: error.code.as_str().to_string(),
                message: error.message,
                field: error.field,
                retry_after,
            },
            Err(_) => ClientError::Api {
                status: status.as_u16(),
                code: "error".into(),
                message: format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&body)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ),
                field: None,
                retry_after,
            },
        })
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let (_, url, body) = self.exchange(req).await?;
        match body.decode(&url) {
            // A site may offer a model the server's catalogue gained at run
            // time (a topology's, a site file's or an operator's): learn the
            // server's catalogue once and read the answer again.
            Err(ClientError::Protocol { reason, .. })
                if reason.contains("unknown resource class") =>
            {
                self.learn_catalogue().await?;
                body.decode(&url)
            }
            other => other,
        }
    }

    /// Registers in this process's catalogue the accelerator models the server
    /// knows beyond the built-in ones (`GET /v1/accelerators`), so that answers
    /// naming them can be read.
    pub async fn learn_catalogue(&self) -> Result<(), ClientError> {
        let url = self.url("/v1/accelerators");
        let (_, url, body) = self.exchange(self.http.get(url)).await?;
        let models: Vec<AcceleratorDoc> = body.decode(&url)?;
        for model in models.into_iter().filter(|m| !m.builtin) {
            let spec = AcceleratorSpec {
                name: model.name,
                vendor: model.vendor,
                model: model.model,
                family: model.family,
                memory_gib: model.memory_gib.unwrap_or(0.0),
                fp16_tflops: model.fp16_tflops,
                source: model.source,
                aliases: model.aliases,
            };
            suanwang_model::catalogue::register(&spec).map_err(|e| ClientError::Protocol {
                url: url.clone(),
                reason: format!("the server's catalogue does not fit this process's: {e}"),
            })?;
        }
        Ok(())
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.http.get(self.url(path))).await
    }

    async fn get_query<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &impl Serialize,
    ) -> Result<T, ClientError> {
        self.send(self.http.get(self.url(path)).query(query)).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    async fn put<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        self.send(self.http.put(self.url(path)).json(body)).await
    }

    /// `POST /v1/jobs` (a tenant's token).
    pub async fn submit(
        &self,
        job: &JobSubmission,
        idempotency_key: Option<&str>,
    ) -> Result<Submitted, ClientError> {
        let mut req = self.http.post(self.url("/v1/jobs")).json(job);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let (status, url, body) = self.exchange(req).await?;
        Ok(Submitted {
            job: body.decode(&url)?,
            created: status == 201,
        })
    }

    /// `GET /v1/jobs/{id}`.
    pub async fn job(&self, id: i64) -> Result<JobDoc, ClientError> {
        self.get(&format!("/v1/jobs/{id}")).await
    }

    /// `GET /v1/jobs`: a page of jobs.
    pub async fn jobs(&self, query: &JobQuery) -> Result<JobPage, ClientError> {
        self.get_query("/v1/jobs", query).await
    }

    /// `GET /v1/audit`: a page of the audit log the caller may see, oldest
    /// first; `next` is the `after` of the next page.
    pub async fn audit(&self, query: &AuditQuery) -> Result<AuditPage, ClientError> {
        self.get_query("/v1/audit", query).await
    }

    /// `GET /v1/audit/export`: every entry the caller may see and `query`
    /// matches, oldest first (read whole: for a large log, page with
    /// [`Client::audit`]).
    pub async fn audit_export(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, ClientError> {
        let req = self.http.get(self.url("/v1/audit/export")).query(query);
        let (_, url, body) = self.exchange(req).await?;
        body.0
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                serde_json::from_slice(line).map_err(|e| ClientError::Protocol {
                    url: url.clone(),
                    reason: format!("an audit line does not read: {e}"),
                })
            })
            .collect()
    }

    /// `POST /v1/jobs/{id}/cancel`.
    pub async fn cancel(&self, id: i64) -> Result<JobDoc, ClientError> {
        self.post(&format!("/v1/jobs/{id}/cancel"), &()).await
    }

    /// `GET /v1/jobs/{id}/explain`.
    pub async fn explain(&self, id: i64) -> Result<JobExplanation, ClientError> {
        self.get(&format!("/v1/jobs/{id}/explain")).await
    }

    /// `GET /v1/jobs/{id}/logs`: the tail of the job's output.
    pub async fn logs(&self, id: i64) -> Result<Logs, ClientError> {
        self.get(&format!("/v1/jobs/{id}/logs")).await
    }

    /// `GET /v1/overview`: per site capacity, use, power, carbon and price now,
    /// and the network's totals.
    pub async fn overview(&self) -> Result<Overview, ClientError> {
        self.get("/v1/overview").await
    }

    /// `GET /v1/flows`.
    pub async fn flows(&self) -> Result<Flows, ClientError> {
        self.get("/v1/flows").await
    }

    /// `GET /v1/savings`.
    pub async fn savings(&self, query: &SavingsQuery) -> Result<SavingsDoc, ClientError> {
        self.get_query("/v1/savings", query).await
    }

    /// `GET /v1/regions`.
    pub async fn regions(&self) -> Result<Vec<Region>, ClientError> {
        self.get("/v1/regions").await
    }

    /// `GET /v1/accelerators`: the accelerator catalogue.
    pub async fn accelerators(&self) -> Result<Vec<AcceleratorDoc>, ClientError> {
        self.get("/v1/accelerators").await
    }

    /// `PUT /v1/accelerators/{name}`: adds a model to the catalogue (operator or
    /// provider); the same model again is no error.
    pub async fn put_accelerator(
        &self,
        spec: &AcceleratorSpec,
    ) -> Result<AcceleratorDoc, ClientError> {
        self.put(&format!("/v1/accelerators/{}", spec.name), spec)
            .await
    }

    /// `GET /v1/sites`.
    pub async fn sites(&self) -> Result<Vec<SiteDoc>, ClientError> {
        self.get("/v1/sites").await
    }

    /// `GET /v1/sites/{id}`.
    pub async fn site(&self, id: &str) -> Result<SiteDoc, ClientError> {
        self.get(&format!("/v1/sites/{id}")).await
    }

    /// `PUT /v1/sites/{id}`: creates or replaces a site (operator).
    pub async fn put_site(&self, site: &Site) -> Result<SiteDoc, ClientError> {
        self.put(&format!("/v1/sites/{}", site.id), site).await
    }

    /// `POST /v1/sites/{id}/drain` (operator).
    pub async fn drain(&self, id: &str, reason: Option<&str>) -> Result<SiteDoc, ClientError> {
        let body = DrainRequest {
            reason: reason.map(str::to_string),
        };
        self.post(&format!("/v1/sites/{id}/drain"), &body).await
    }

    /// `POST /v1/sites/{id}/undrain` (operator).
    pub async fn undrain(&self, id: &str) -> Result<SiteDoc, ClientError> {
        self.post(&format!("/v1/sites/{id}/undrain"), &()).await
    }

    /// `GET /v1/sites/{id}/telemetry`.
    pub async fn telemetry(
        &self,
        id: &str,
        query: &TelemetryQuery,
    ) -> Result<TelemetryDoc, ClientError> {
        self.get_query(&format!("/v1/sites/{id}/telemetry"), query)
            .await
    }

    /// `GET /v1/sites/{id}/series`.
    pub async fn series(&self, id: &str, query: &SeriesQuery) -> Result<SeriesDoc, ClientError> {
        self.get_query(&format!("/v1/sites/{id}/series"), query)
            .await
    }

    /// `GET /v1/links`.
    pub async fn links(&self) -> Result<Vec<Link>, ClientError> {
        self.get("/v1/links").await
    }

    /// `PUT /v1/links/{a}/{b}`: creates or replaces a link (operator).
    pub async fn put_link(&self, link: &Link) -> Result<Link, ClientError> {
        self.put(&format!("/v1/links/{}/{}", link.a, link.b), link)
            .await
    }

    /// `GET /v1/tenants` (admin).
    pub async fn tenants(&self) -> Result<Vec<TenantDoc>, ClientError> {
        self.get("/v1/tenants").await
    }

    /// `POST /v1/tenants` (admin).
    pub async fn create_tenant(&self, name: &str) -> Result<TenantDoc, ClientError> {
        let body = NewTenant {
            name: name.to_string(),
        };
        self.post("/v1/tenants", &body).await
    }

    /// `GET /v1/tokens` (admin), every page.
    pub async fn tokens(&self) -> Result<Vec<TokenDoc>, ClientError> {
        self.every_page("/v1/tokens", |t: &TokenDoc| t.id.clone())
            .await
    }

    /// Every page of a list paged by an id cursor ([`suanwang_api::PageQuery`]):
    /// a page shorter than the largest there is the last.
    async fn every_page<T: DeserializeOwned>(
        &self,
        path: &str,
        id: impl Fn(&T) -> String,
    ) -> Result<Vec<T>, ClientError> {
        let limit = suanwang_api::jobs::MAX_PAGE;
        let mut all = Vec::new();
        let mut query = suanwang_api::PageQuery {
            after: None,
            limit: Some(limit),
        };
        loop {
            let page: Vec<T> = self.get_query(path, &query).await?;
            let full = page.len() == limit as usize;
            query.after = page.last().map(&id);
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    /// `GET /v1/quotas`: every tenant's (operator, admin) or the caller's own (tenant).
    pub async fn quotas(&self) -> Result<Vec<QuotaDoc>, ClientError> {
        self.get("/v1/quotas").await
    }

    /// `PUT /v1/tenants/{tenant}/quota` (admin): replaces the tenant's caps for
    /// one scope (`set.site`, or the whole network); answers its quotas after.
    pub async fn set_quota(
        &self,
        tenant: &str,
        set: &QuotaSet,
    ) -> Result<Vec<QuotaDoc>, ClientError> {
        self.put(&format!("/v1/tenants/{tenant}/quota"), set).await
    }

    /// `GET /v1/shares`: every tenant's fair-share weight, group, entitlement
    /// and usage (operator, admin) or the caller's own (tenant).
    pub async fn shares(&self) -> Result<Vec<ShareDoc>, ClientError> {
        self.get("/v1/shares").await
    }

    /// `PUT /v1/tenants/{tenant}/share` (admin): sets the tenant's fair-share
    /// weight and group; answers its share after.
    pub async fn set_share(&self, tenant: &str, set: &ShareSet) -> Result<ShareDoc, ClientError> {
        self.put(&format!("/v1/tenants/{tenant}/share"), set).await
    }

    /// `GET /v1/classes`: tenants' priority classes (a tenant: its own).
    pub async fn classes(&self) -> Result<Vec<api::ClassDoc>, ClientError> {
        self.get("/v1/classes").await
    }

    /// `PUT /v1/tenants/{tenant}/class` (admin): sets the tenant's priority
    /// class (the highest its jobs run at).
    pub async fn set_class(
        &self,
        tenant: &str,
        set: &api::ClassSet,
    ) -> Result<api::ClassDoc, ClientError> {
        self.put(&format!("/v1/tenants/{tenant}/class"), set).await
    }

    /// `GET /v1/spills`: every tenant's spill-over default, own provider and
    /// effective list (operator, admin) or the caller's own (tenant).
    pub async fn spills(&self) -> Result<Vec<SpillDoc>, ClientError> {
        self.get("/v1/spills").await
    }

    /// `PUT /v1/tenants/{tenant}/spill` (admin): sets the tenant's default
    /// spill-over list and own provider; answers them after.
    pub async fn set_spill(&self, tenant: &str, set: &SpillSet) -> Result<SpillDoc, ClientError> {
        self.put(&format!("/v1/tenants/{tenant}/spill"), set).await
    }

    /// `POST /v1/tokens` (admin): the token is in the answer, this once.
    pub async fn create_token(&self, token: &NewToken) -> Result<IssuedToken, ClientError> {
        self.post("/v1/tokens", token).await
    }

    /// `DELETE /v1/tokens/{id}` (admin).
    pub async fn revoke_token(&self, id: &str) -> Result<TokenDoc, ClientError> {
        self.send(self.http.delete(self.url(&format!("/v1/tokens/{id}"))))
            .await
    }

    /// `POST /v1/agents`: registers an agent; the answer carries its id, the
    /// heartbeat interval and the lease time.
    pub async fn register_agent(
        &self,
        registration: &Registration,
    ) -> Result<Registered, ClientError> {
        self.post("/v1/agents", registration).await
    }

    /// `POST /v1/agents/{id}/heartbeat`.
    pub async fn heartbeat(
        &self,
        agent: &str,
        beat: &Heartbeat,
    ) -> Result<HeartbeatAnswer, ClientError> {
        self.post(&format!("/v1/agents/{agent}/heartbeat"), beat)
            .await
    }

    /// `POST /v1/agents/{id}/lease`: jobs whose start has come, each under a new
    /// lease; with `wait_ms`, a long poll that answers when the scheduler places
    /// something (or empty at the end of the wait).
    pub async fn lease(&self, agent: &str, request: &LeaseRequest) -> Result<Leases, ClientError> {
        self.post(&format!("/v1/agents/{agent}/lease"), request)
            .await
    }

    /// `POST /v1/agents/{id}/report`.
    pub async fn report(&self, agent: &str, report: &Report) -> Result<JobDoc, ClientError> {
        self.post(&format!("/v1/agents/{agent}/report"), report)
            .await
    }

    /// `GET /v1/agents` (operator), every page.
    pub async fn agents(&self) -> Result<Vec<AgentDoc>, ClientError> {
        self.every_page("/v1/agents", |a: &AgentDoc| a.id.clone())
            .await
    }

    /// `GET /v1/events`: the live stream of server-sent events.
    pub async fn events(&self) -> Result<EventStream, ClientError> {
        let req = self.http.get(self.url("/v1/events"));
        let req = self.authorize(req);
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body = resp.bytes().await.unwrap_or_default();
            let error: Option<ErrorBody> = serde_json::from_slice(&body).ok();
            return Err(ClientError::Api {
                status,
                code: error
                    .as_ref()
                    .map_or("error".into(), |e| e.code.as_str().to_string()),
                message: error.map_or_else(|| format!("status {status}"), |e| e.message),
                field: None,
                retry_after: None,
            });
        }
        Ok(EventStream {
            url: self.url("/v1/events"),
            response: resp,
            buffer: String::new(),
        })
    }
}

/// The events of `GET /v1/events`, as they come.
#[derive(Debug)]
pub struct EventStream {
    url: String,
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    /// The next event, or `None` when the stream ends.
    pub async fn next(&mut self) -> Option<Result<ServerEvent, ClientError>> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut data) = (None, String::new());
                for line in frame.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event = Some(name.trim().to_string());
                    } else if let Some(text) = line.strip_prefix("data:") {
                        if !data.is_empty() {
                            data.push('\n');
                        }
                        data.push_str(text.strip_prefix(' ').unwrap_or(text));
                    }
                }
                // A comment (keep-alive) has neither.
                let Some(event) = event else { continue };
                return Some(ServerEvent::parse(&event, &data).map_err(|e| {
                    ClientError::Protocol {
                        url: self.url.clone(),
                        reason: format!("event {event:?}: {e}"),
                    }
                }));
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(None) => return None,
                Err(e) => {
                    return Some(Err(ClientError::Protocol {
                        url: self.url.clone(),
                        reason: e.to_string(),
                    }));
                }
            }
        }
    }
}

mod bytes_body {
    //! An answer's body, decoded into the type the route documents.
    use super::ClientError;

    /// The bytes of a successful answer.
    pub struct Body(pub bytes::Bytes);

    impl Body {
        /// Decodes the body as `T`, naming the request and where it differs.
        pub fn decode<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, ClientError> {
            let mut de = serde_json::Deserializer::from_slice(&self.0);
            serde_path_to_error::deserialize(&mut de).map_err(|e| ClientError::Protocol {
                url: url.to_string(),
                reason: format!("at {}: {}", e.path(), e.inner()),
            })
        }
    }
}
