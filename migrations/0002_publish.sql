-- Delivery state of the snapshot outbox, one row per (sink, environment).
--
-- The `snapshot` table (0001) is the outbox: every committed admin change leaves a new
-- (environment_key, version) row there. A publisher replica claims a cursor row with
-- `select ... for update skip locked`, delivers the versions after `delivered_version`, and advances
-- the cursor in the same transaction as the claim, so two replicas never deliver the same cursor at
-- once and a crash before the commit only means the same version is delivered again (sinks are
-- idempotent per version).
--
-- No foreign key to `snapshot`/`environment`: cursors are created lazily by the publisher for every
-- environment that has snapshots, and a cursor must survive the snapshots it points at being pruned.
create table publish_cursor (
    sink text not null,
    environment_key text not null,
    -- Highest version the sink has acknowledged; 0 = nothing delivered yet (versions start at 1).
    delivered_version bigint not null default 0 check (delivered_version >= 0),
    -- Consecutive failed deliveries since the last success; drives the exponential backoff.
    attempts int not null default 0,
    last_error text,
    -- The cursor is not claimed before this time (backoff after a failure).
    next_attempt_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (sink, environment_key)
);

-- The claim query looks for due cursors of one sink, oldest deadline first.
create index publish_cursor_due on publish_cursor (sink, next_attempt_at);
