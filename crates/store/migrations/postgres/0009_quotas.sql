-- Quotas: per tenant, per resource class, the most units its jobs may hold at
-- once, network-wide (site '') or at one site.
CREATE TABLE quotas (
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    site TEXT NOT NULL,
    class TEXT NOT NULL,
    units BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, site, class)
);
