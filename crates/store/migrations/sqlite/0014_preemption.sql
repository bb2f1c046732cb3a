-- Priority classes and preemption. A tenant's class (set by admins) is the
-- highest its jobs run at; `preemptions` records each job stopped for a job of
-- a higher class: the victim's attempt (its lease token when stopped), who
-- stopped it, where, when, how long it had run and what that run cost (the
-- work lost). A heartbeat for the stopped attempt is answered `preempt`.
ALTER TABLE tenants ADD COLUMN priority_class TEXT NOT NULL DEFAULT 'normal';
CREATE TABLE preemptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    attempt INTEGER NOT NULL,
    by_job INTEGER NOT NULL REFERENCES jobs(id),
    site TEXT NOT NULL,
    at INTEGER NOT NULL,
    class TEXT NOT NULL,
    by_class TEXT NOT NULL,
    ran_secs INTEGER NOT NULL,
    lost_cny REAL NOT NULL
);
CREATE INDEX preemptions_job ON preemptions (job_id, attempt);
CREATE INDEX preemptions_by ON preemptions (by_job);
CREATE INDEX preemptions_at ON preemptions (at);
