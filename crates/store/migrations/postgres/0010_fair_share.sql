-- Weighted fair share: each tenant's weight among its siblings and the tenant
-- that groups it (a company over its departments), if any.
ALTER TABLE tenants ADD COLUMN share_weight DOUBLE PRECISION NOT NULL DEFAULT 1;
ALTER TABLE tenants ADD COLUMN share_parent BIGINT REFERENCES tenants(id);
-- Each tenant's usage: its dominant share integrated over time with a
-- half-life (share x seconds), as of a time. Written by the scheduler.
CREATE TABLE tenant_usage (
    tenant_id BIGINT PRIMARY KEY REFERENCES tenants(id),
    usage DOUBLE PRECISION NOT NULL,
    as_of BIGINT NOT NULL
);
