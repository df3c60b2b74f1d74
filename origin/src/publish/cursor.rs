//! SQL over `publish_cursor` (migrations/0002_publish.sql) and the `snapshot` outbox.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};

use super::sink::{truncate, DeliveryMode};

/// A cursor row locked by this transaction (`for update skip locked`).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Claim {
    pub(crate) environment_key: String,
    pub(crate) delivered_version: i64,
    pub(crate) attempts: i32,
}

/// The snapshot version to deliver next.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Pending {
    pub(crate) version: i64,
    pub(crate) body: String,
}

/// Creates the missing cursors of `sinks` for `environments` (announced by the outbox listener).
/// Returns how many were created.
pub(crate) async fn ensure(
    pool: &PgPool,
    sinks: &[String],
    environments: &[String],
) -> sqlx::Result<u64> {
    let created = sqlx::query(
        "insert into publish_cursor (sink, environment_key)
         select sink, environment_key
         from unnest($1::text[]) as sink cross join unnest($2::text[]) as environment_key
         on conflict do nothing",
    )
    .bind(sinks)
    .bind(environments)
    .execute(pool)
    .await?;
    Ok(created.rows_affected())
}

/// Locks one due cursor of `sink` that has undelivered versions, oldest deadline first; cursors
/// locked by another replica (or another worker of this one) are skipped, not waited for.
pub(crate) async fn claim(conn: &mut PgConnection, sink: &str) -> sqlx::Result<Option<Claim>> {
    sqlx::query_as(
        "select c.environment_key, c.delivered_version, c.attempts
         from publish_cursor c
         where c.sink = $1
           and c.next_attempt_at <= clock_timestamp()
           and exists (select 1 from snapshot s
                       where s.environment_key = c.environment_key
                         and s.version > c.delivered_version)
         order by c.next_attempt_at
         limit 1
         for update of c skip locked",
    )
    .bind(sink)
    .fetch_optional(conn)
    .await
}

/// The version to deliver after `delivered`: the next one for an archive, the newest for a sink
/// that only keeps the latest.
///
/// "Next one" relies on the outbox's invariant (docs/architecture.md, section "Outbox") that the
/// versions of an environment commit in order: every mutation locks the environment row before
/// bumping `snapshot_version`, so version N+1 cannot be visible while N is not.
pub(crate) async fn next_version(
    conn: &mut PgConnection,
    environment_key: &str,
    delivered: i64,
    mode: DeliveryMode,
) -> sqlx::Result<Option<Pending>> {
    let sql = match mode {
        DeliveryMode::EveryVersion => {
            "select version, body from snapshot
             where environment_key = $1 and version > $2
             order by version limit 1"
        }
        DeliveryMode::LatestOnly => {
            "select version, body from snapshot
             where environment_key = $1 and version > $2
             order by version desc limit 1"
        }
    };
    sqlx::query_as(sql)
        .bind(environment_key)
        .bind(delivered)
        .fetch_optional(conn)
        .await
}

/// Moves the claimed cursor to `version` and clears its failure state. Returns the delivery lag:
/// seconds from the snapshot row's `created_at` to now.
pub(crate) async fn advance(
    conn: &mut PgConnection,
    sink: &str,
    environment_key: &str,
    version: i64,
) -> sqlx::Result<Option<f64>> {
    sqlx::query_scalar(
        "update publish_cursor
         set delivered_version = $3, attempts = 0, last_error = null,
             next_attempt_at = clock_timestamp(), updated_at = clock_timestamp()
         where sink = $1 and environment_key = $2
         returning (select extract(epoch from clock_timestamp() - s.created_at)::float8
                    from snapshot s where s.environment_key = $2 and s.version = $3)",
    )
    .bind(sink)
    .bind(environment_key)
    .bind(version)
    .fetch_one(conn)
    .await
}

/// Records a failed delivery on the claimed cursor; it is not claimed again before `retry_in`.
pub(crate) async fn record_failure(
    conn: &mut PgConnection,
    sink: &str,
    environment_key: &str,
    error: &str,
    retry_in: Duration,
) -> sqlx::Result<()> {
    sqlx::query(
        "update publish_cursor
         set attempts = attempts + 1, last_error = $3,
             next_attempt_at = clock_timestamp() + make_interval(secs => $4),
             updated_at = clock_timestamp()
         where sink = $1 and environment_key = $2",
    )
    .bind(sink)
    .bind(environment_key)
    .bind(truncate(error, 2000))
    .bind(retry_in.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends the backoff of the `sinks`' cursors of `environment` that have not delivered `version`:
/// they are due now (the failure count stays). Returns how many cursors it moved.
pub(crate) async fn expedite(
    pool: &PgPool,
    sinks: &[String],
    environment_key: &str,
    version: u64,
) -> sqlx::Result<u64> {
    let version = i64::try_from(version).unwrap_or(i64::MAX);
    let moved = sqlx::query(
        "update publish_cursor
         set next_attempt_at = clock_timestamp(), updated_at = clock_timestamp()
         where sink = any($1) and environment_key = $2
           and delivered_version < $3 and next_attempt_at > clock_timestamp()",
    )
    .bind(sinks)
    .bind(environment_key)
    .bind(version)
    .execute(pool)
    .await?;
    Ok(moved.rows_affected())
}

/// Seconds until the earliest future deadline among `sink`'s cursors with undelivered versions.
///
/// Cursors already due are left out: if this worker could not claim them, another one holds them
/// and keeps draining them, so they are no reason to wake up early.
pub(crate) async fn next_deadline(pool: &PgPool, sink: &str) -> sqlx::Result<Option<f64>> {
    sqlx::query_scalar(
        "select extract(epoch from min(c.next_attempt_at) - clock_timestamp())::float8
         from publish_cursor c
         where c.sink = $1
           and c.next_attempt_at > clock_timestamp()
           and exists (select 1 from snapshot s
                       where s.environment_key = c.environment_key
                         and s.version > c.delivered_version)",
    )
    .bind(sink)
    .fetch_one(pool)
    .await
}

/// Versions committed but not yet delivered to `sink`, over all environments with a cursor.
pub(crate) async fn depth(pool: &PgPool, sink: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select coalesce(sum((select count(*) from snapshot s
                              where s.environment_key = c.environment_key
                                and s.version > c.delivered_version)), 0)::bigint
         from publish_cursor c
         where c.sink = $1",
    )
    .bind(sink)
    .fetch_one(pool)
    .await
}
