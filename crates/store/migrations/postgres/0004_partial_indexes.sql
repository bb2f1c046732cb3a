-- A submitted job has no site and no lease: index only the rows that do, so that
-- the hot insert path maintains two indexes fewer.
DROP INDEX jobs_site_state;
DROP INDEX jobs_lease;
CREATE INDEX jobs_site_state ON jobs (site, state, start_at) WHERE site IS NOT NULL;
CREATE INDEX jobs_lease ON jobs (state, lease_expires_at) WHERE lease_expires_at IS NOT NULL;
