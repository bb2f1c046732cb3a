-- Each audit row moves the head to itself, so that an append is one statement
-- (crates/store/src/backend.rs, append_audit_in). PostgreSQL moves the head in
-- the insert's own WITH instead.
CREATE TRIGGER audit_moves_head AFTER INSERT ON audit
BEGIN
    UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1;
END;
