-- Which user made an invitation: it stops working when that user can no longer
-- invite (deleted, blocked, no longer admin). NULL for one made with a token
-- of `fastflow token create` (then `created_by` is `token:NAME`).
ALTER TABLE invitations ADD COLUMN created_by_id TEXT REFERENCES users (id) ON DELETE SET NULL;
