-- Providers: the companies that own sites. A site belongs to at most one.
CREATE TABLE providers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE provider_sites (
    site TEXT PRIMARY KEY,
    provider_id INTEGER NOT NULL REFERENCES providers(id)
);
CREATE INDEX provider_sites_provider ON provider_sites (provider_id, site);

-- A provider's token names its provider; an agent's token names its site.
ALTER TABLE tokens ADD COLUMN provider_id INTEGER REFERENCES providers(id);
ALTER TABLE tokens ADD COLUMN site TEXT;
