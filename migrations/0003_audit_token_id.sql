-- The audit trail names the token as well as its subject: `token_id` is the admin JWT's `jti`
-- (null for tokens without one, and for every row written before this column existed). A subject
-- can hold several tokens at once; when one of them leaks, this tells its changes apart.
alter table audit_log add column token_id text;
create index audit_log_token_id_idx on audit_log (token_id, audit_log_id) where token_id is not null;
