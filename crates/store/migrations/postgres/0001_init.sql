-- suanwang store, PostgreSQL. Times are unix seconds.
CREATE TABLE tenants (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE tokens (
    digest TEXT PRIMARY KEY,
    tenant_id BIGINT REFERENCES tenants(id),
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE jobs (
    id BIGSERIAL PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    idempotency_key TEXT,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    site TEXT,
    start_at BIGINT,
    exit_code BIGINT,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_state ON jobs (state, id);
CREATE INDEX jobs_tenant ON jobs (tenant_id, id);

CREATE TABLE decisions (
    id BIGSERIAL PRIMARY KEY,
    job_id BIGINT NOT NULL REFERENCES jobs(id),
    at BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX decisions_job ON decisions (job_id, id);
