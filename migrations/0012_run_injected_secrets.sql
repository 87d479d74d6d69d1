-- The names of the secret values a run received and where each came from
-- ({"DB_PASSWORD": "secret", "TOKEN": "encrypted_env", "REGION": "parameter"}).
-- Names only: a run record never holds a secret value.
ALTER TABLE runs ADD COLUMN injected_secrets TEXT NOT NULL DEFAULT '{}';
