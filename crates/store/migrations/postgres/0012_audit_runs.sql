-- An audit entry may cover a run of consecutive jobs (docs/AUDIT.md): submits
-- by one actor in one group-commit batch, placements at one site in one
-- scheduler chunk. subject_job is the run's first job, subject_job_last its
-- last (NULL for an entry about one job; hashed only when present, so that
-- every entry written before keeps its hash).
ALTER TABLE audit ADD COLUMN subject_job_last BIGINT;
-- GET /v1/audit?job=N reads the entries whose first job is within MAX_RUN
-- (crates/store/src/audit.rs) before N.
CREATE INDEX audit_job ON audit (subject_job) WHERE subject_job IS NOT NULL;
