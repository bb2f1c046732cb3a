-- suanwang store, SQLite. Times are unix seconds.
CREATE TABLE tenants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE tokens (
    digest TEXT PRIMARY KEY,
    tenant_id INTEGER REFERENCES tenants(id),
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id),
    idempotency_key TEXT,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    site TEXT,
    start_at INTEGER,
    exit_code INTEGER,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_state ON jobs (state, id);
CREATE INDEX jobs_tenant ON jobs (tenant_id, id);

CREATE TABLE decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX decisions_job ON decisions (job_id, id);
