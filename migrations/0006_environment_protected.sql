-- A protected environment (production, by default) needs a confirmation naming it for any change
-- of a flag's `enabled` (`X-Edgeflags-Confirm`, docs/architecture.md "Admin auth"). Existing
-- environments get the default a new one gets: protected when its key is `production`.
alter table environment add column protected boolean not null default false;
update environment set protected = true where environment_key = 'production';
