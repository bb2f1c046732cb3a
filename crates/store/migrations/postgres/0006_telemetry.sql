-- Recent telemetry samples, one per heartbeat that carried one; pruned by age.
CREATE TABLE telemetry (
    site TEXT NOT NULL,
    agent TEXT NOT NULL,
    at BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX telemetry_site ON telemetry (site, at);
CREATE INDEX telemetry_at ON telemetry (at);
