-- A change may carry the author's comment (`X-Edgeflags-Comment`, "why"): kept with its audit
-- rows and, for flags, with the history version it wrote, so that both views show it without a
-- join. At most 500 characters, checked by the origin before the change starts; the checks here
-- only keep a bypassing write from storing more.
alter table audit_log add column comment text check (char_length(comment) <= 500);
alter table flag_version add column comment text check (char_length(comment) <= 500);
