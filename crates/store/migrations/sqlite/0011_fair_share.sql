-- Weighted fair share: each tenant's weight among its siblings and the tenant
-- that groups it (a company over its departments), if any.
ALTER TABLE tenants ADD COLUMN share_weight REAL NOT NULL DEFAULT 1;
ALTER TABLE tenants ADD COLUMN share_parent INTEGER REFERENCES tenants(id);
-- Each tenant's usage: its dominant share integrated over time with a
-- half-life (share x seconds), as of a time. Written by the scheduler.
CREATE TABLE tenant_usage (
    tenant_id INTEGER PRIMARY KEY REFERENCES tenants(id),
    usage REAL NOT NULL,
    as_of INTEGER NOT NULL
);
