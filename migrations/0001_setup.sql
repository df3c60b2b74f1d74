-- edgeflags control-plane schema (origin). Grounded in the seed design's tables (feature_flags,
-- flag_segments, flag_overrides, flag_audit_log), normalised per environment, plus the snapshot
-- outbox of docs/flag-model.md / the cross-part contract.

-- keeps updated_at honest without every query having to remember it
create or replace function set_updated_at() returns trigger as
$$
begin
    new.updated_at = now();
    return new;
end;
$$ language plpgsql;

create or replace function trigger_updated_at(tablename regclass) returns void as
$$
begin
    execute format('create trigger set_updated_at
        before update on %s
        for each row
        when (old is distinct from new)
    execute function set_updated_at();', tablename);
end;
$$ language plpgsql;

-- keys share the flag-key syntax of docs/flag-model.md; never contain '.', which client keys use as
-- a separator. Byte-order collation: keyset pagination and snapshot order must not depend on
-- the database's locale.
create domain entity_key as text collate "C" check (value ~ '^[A-Za-z0-9_-]{1,255}$');

create table environment
(
    environment_id   bigint generated always as identity primary key,
    environment_key  entity_key  not null unique,
    name             text        not null,
    -- bumped by one in every mutation's transaction; equals the newest snapshot.version
    snapshot_version bigint      not null default 0,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now()
);
select trigger_updated_at('environment');

-- the seed's feature_flags, one row per (environment, flag). `definition` is the flag JSON of
-- docs/flag-model.md without `overrides` (those live in flag_override); the columns beside it
-- are copies for indexing and listing.
create table feature_flag
(
    feature_flag_id bigint generated always as identity primary key,
    environment_id  bigint      not null references environment on delete cascade,
    flag_key        entity_key  not null,
    enabled         boolean     not null,
    version         bigint      not null check (version > 0),
    definition      jsonb       not null,
    created_by      text        not null,
    updated_by      text        not null,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    unique (environment_id, flag_key)
);
select trigger_updated_at('feature_flag');
create index feature_flag_enabled_idx on feature_flag (environment_id, enabled);

-- the seed's flag_overrides: per-user variation, optionally expiring
create table flag_override
(
    flag_override_id bigint generated always as identity primary key,
    feature_flag_id  bigint      not null references feature_flag on delete cascade,
    user_id          text collate "C" not null check (length(user_id) between 1 and 1024),
    variation        text,
    enabled          boolean,
    expires_at       timestamptz,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    unique (feature_flag_id, user_id),
    check ((variation is null) <> (enabled is null))
);
select trigger_updated_at('flag_override');

-- every version of every flag, full definition (overrides included), for history and rollback.
-- Not tied to feature_flag so that history outlives a deletion; a deletion is a version whose
-- definition is null, and a re-created flag continues the numbering.
create table flag_version
(
    flag_version_id bigint generated always as identity primary key,
    environment_id  bigint      not null references environment on delete cascade,
    flag_key        entity_key  not null,
    version         bigint      not null check (version > 0),
    action          text        not null,
    actor           text        not null,
    definition      jsonb,
    -- for a rollback, the version whose definition it restored
    rollback_of     bigint,
    created_at      timestamptz not null default now(),
    unique (environment_id, flag_key, version)
);

-- reusable segments of an environment (docs/flag-model.md "Segment")
create table segment
(
    segment_id     bigint generated always as identity primary key,
    environment_id bigint      not null references environment on delete cascade,
    segment_key    entity_key  not null,
    version        bigint      not null check (version > 0),
    definition     jsonb       not null,
    created_by     text        not null,
    updated_by     text        not null,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    unique (environment_id, segment_key)
);
select trigger_updated_at('segment');

-- evaluation credentials; only the SHA-256 of the key is kept (contract "Client keys")
create table client_key
(
    client_key_id  bigint generated always as identity primary key,
    environment_id bigint      not null references environment on delete cascade,
    name           entity_key  not null,
    sha256         text        not null unique check (sha256 ~ '^[0-9a-f]{64}$'),
    created_by     text        not null,
    created_at     timestamptz not null default now(),
    unique (environment_id, name)
);

-- the seed's flag_audit_log, generalised to every entity. No foreign keys on purpose: the trail
-- must survive the deletion of what it describes.
create table audit_log
(
    audit_log_id     bigint generated always as identity primary key,
    environment_key  text        not null,
    entity_type      text        not null check (entity_type in ('flag', 'segment', 'environment', 'clientKey')),
    entity_key       text        not null,
    action           text        not null,
    actor            text        not null,
    old_value        jsonb,
    new_value        jsonb,
    -- the entity's version after the change (flags and segments), and the environment's
    entity_version   bigint,
    snapshot_version bigint      not null,
    created_at       timestamptz not null default now()
);
create index audit_log_entity_idx on audit_log (entity_type, entity_key, audit_log_id);
create index audit_log_environment_idx on audit_log (environment_key, audit_log_id);
create index audit_log_actor_idx on audit_log (actor, audit_log_id);
create index audit_log_created_at_idx on audit_log (created_at);

-- the outbox (contract "Snapshot storage at the origin"): one exact JSON text per environment
-- version, gapless; publishers deliver it, replicas load the newest into memory
create table snapshot
(
    environment_key text        not null,
    version         bigint      not null,
    body            text        not null,
    created_at      timestamptz not null default now(),
    primary key (environment_key, version)
);
