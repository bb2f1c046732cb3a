-- Operator edits to the topology, kept over restarts: a site or link as JSON,
-- keyed by kind ('site' or 'link') and id (a site id, or "A--B" for a link).
CREATE TABLE topology_edits (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);

-- Sites taking no new work.
CREATE TABLE drained_sites (
    site TEXT PRIMARY KEY,
    since BIGINT NOT NULL,
    reason TEXT
);
