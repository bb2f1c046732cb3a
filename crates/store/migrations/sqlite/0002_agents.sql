-- Agents and leases. A job handed to an agent carries a lease: the agent that
-- holds it, until when, and a fencing token (lease_token) that grows by one with
-- every hand-out, so a report under an older lease can be refused.
ALTER TABLE jobs ADD COLUMN lease_token BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN lease_agent TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires_at BIGINT;
ALTER TABLE jobs ADD COLUMN started_at BIGINT;
ALTER TABLE jobs ADD COLUMN finished_at BIGINT;
CREATE INDEX jobs_site_state ON jobs (site, state, start_at);
CREATE INDEX jobs_lease ON jobs (state, lease_expires_at);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    info TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    telemetry TEXT
);
CREATE INDEX agents_site ON agents (site, last_seen);
