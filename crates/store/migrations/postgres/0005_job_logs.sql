-- The tail of each job's output, as its agent last sent it.
CREATE TABLE job_logs (
    job_id BIGINT PRIMARY KEY REFERENCES jobs(id),
    tail TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
