-- Why pending jobs wait. `waits` holds each job's current reason (one row per
-- job, replaced when the reason changes; `signature` is what a change is judged by:
-- the code, the earliest start rounded to the slot and each site's reason);
-- `wait_history` keeps the changes, the last 50 per job (the store trims it).
CREATE TABLE waits (
    job_id BIGINT PRIMARY KEY REFERENCES jobs(id),
    code TEXT NOT NULL,
    signature TEXT NOT NULL,
    at BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE wait_history (
    id BIGSERIAL PRIMARY KEY,
    job_id BIGINT NOT NULL REFERENCES jobs(id),
    at BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX wait_history_job ON wait_history (job_id, id);
