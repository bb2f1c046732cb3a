-- The audit log: one row per change, each carrying the hash of the one before
-- (docs/AUDIT.md). Rows are only ever inserted; seq is given by the store from
-- audit_head, never by the database, so that a gap means a deletion.
CREATE TABLE audit (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_role TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    actor_tenant BIGINT,
    actor_provider BIGINT,
    actor_site TEXT,
    action TEXT NOT NULL,
    subject_job BIGINT,
    subject_tenant BIGINT,
    subject_site TEXT,
    subject_key TEXT,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
-- A tenant's view (its jobs) and a provider's (its sites). A submit has no site,
-- so the site index is partial and the hot insert path does not maintain it.
CREATE INDEX audit_tenant ON audit (subject_tenant, seq) WHERE subject_tenant IS NOT NULL;
CREATE INDEX audit_site ON audit (subject_site, seq) WHERE subject_site IS NOT NULL;
CREATE INDEX audit_actor_site ON audit (actor_site, seq) WHERE actor_site IS NOT NULL;

-- The head of the chain: the last seq given and its hash. Every append locks
-- this one row (PostgreSQL) or holds the one write lock (SQLite) from the
-- moment it reserves its seqs until its transaction ends, so that concurrent
-- writers never fork the chain.
CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
