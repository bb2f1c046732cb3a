-- Ordered spill-over: a tenant's default list (a JSON array of choices such
-- as "site:hami", "provider:acme", "anywhere"; NULL: none) and the provider
-- that names it as its own tenant (whose sites its jobs try first).
ALTER TABLE tenants ADD COLUMN spill TEXT;
ALTER TABLE tenants ADD COLUMN own_provider INTEGER REFERENCES providers(id);
