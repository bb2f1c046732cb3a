//! The server-sent events of `GET /v1/events`. Each arrives as an SSE frame whose
//! `event:` line is the event's name and whose `data:` line is its JSON body.

use crate::jobs::JobDoc;
use crate::network::{Flows, Overview};
use serde::{Deserialize, Serialize};

/// The body of a `jobs` event.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobsEvent {
    /// The jobs that changed and that the caller may see, as `GET /v1/jobs/{id}`
    /// shows them now.
    pub jobs: Vec<JobDoc>,
}

/// The body of a `resync` event: empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resync {}

/// One event of the stream: its name (`event`) and body (`data`).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "event", content = "data", rename_all = "lowercase")]
pub enum ServerEvent {
    /// The network now, as `GET /v1/overview`: sent first, then whenever jobs
    /// change (at most twice a second) and at least every 5 s.
    Overview(Overview),
    /// The flows the caller may see, as `GET /v1/flows`: sent with each overview.
    Flows(Flows),
    /// Jobs that changed.
    Jobs(JobsEvent),
    /// Events were dropped (too many changes at once, or a slow reader): fetch
    /// what you show again.
    Resync(Resync),
}

impl ServerEvent {
    /// The event's name, as on its `event:` line.
    pub fn name(&self) -> &'static str {
        match self {
            ServerEvent::Overview(_) => "overview",
            ServerEvent::Flows(_) => "flows",
            ServerEvent::Jobs(_) => "jobs",
            ServerEvent::Resync(_) => "resync",
        }
    }

    /// Reads an SSE frame's `event` name and `data` text.
    pub fn parse(event: &str, data: &str) -> Result<ServerEvent, serde_json::Error> {
        let data: &serde_json::value::RawValue = serde_json::from_str(data)?;
        let framed = format!(
            r#"{{"event":{},"data":{}}}"#,
            serde_json::to_string(event)?,
            data.get()
        );
        serde_json::from_str(&framed)
    }
}
