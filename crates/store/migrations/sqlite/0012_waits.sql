-- Why pending jobs wait. `waits` holds each job's current reason (one row per
-- job, replaced when the reason changes; `signature` is what a change is judged by:
-- the code, the earliest start rounded to the slot and each site's reason);
-- `wait_history` keeps the changes, the last 50 per job (the store trims it).
CREATE TABLE waits (
    job_id INTEGER PRIMARY KEY REFERENCES jobs(id),
    code TEXT NOT NULL,
    signature TEXT NOT NULL,
    at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE wait_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX wait_history_job ON wait_history (job_id, id);
