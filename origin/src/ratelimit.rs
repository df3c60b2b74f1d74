//! A small in-memory token-bucket rate limiter, keyed by token subject or client address.
//!
//! Per replica, deliberately: the admin API is low-traffic and the limit exists to stop a runaway
//! script or a credential-guessing loop, not to meter usage across a fleet.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before idle ones are dropped; bounds memory under address churn.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets of `burst` capacity refilled at `rate_per_second`.
#[derive(Debug)]
pub struct RateLimiter {
    rate_per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter; `rate_per_second <= 0` admits everything.
    pub fn new(rate_per_second: f64, burst: u32) -> Self {
        Self {
            rate_per_second,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `key`'s bucket at `now`: `Ok` if admitted, else `Err` with how long
    /// until a token is available.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.rate_per_second <= 0.0 || !self.rate_per_second.is_finite() {
            return Ok(());
        }
        // a poisoned lock only means another request panicked mid-update; the map is still usable
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(key) {
            let (rate, burst) = (self.rate_per_second, self.burst);
            buckets.retain(|_, b| refilled(*b, now, rate, burst) < burst);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        bucket.tokens = refilled(*bucket, now, self.rate_per_second, self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.rate_per_second,
            ))
        }
    }
}

fn refilled(bucket: Bucket, now: Instant, rate: f64, burst: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    (bucket.tokens + elapsed * rate).min(burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_is_admitted_then_refused_until_refilled() {
        let limiter = RateLimiter::new(2.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("alice", t0).is_ok());
        }
        let wait = limiter.check("alice", t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // another key has its own bucket
        assert!(limiter.check("bob", t0).is_ok());
        // half a second later one token is back
        assert!(limiter
            .check("alice", t0 + Duration::from_millis(500))
            .is_ok());
        assert!(limiter
            .check("alice", t0 + Duration::from_millis(500))
            .is_err());
    }

    #[test]
    fn zero_rate_disables_limiting() {
        let limiter = RateLimiter::new(0.0, 1);
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert!(limiter.check("alice", t0).is_ok());
        }
    }

    #[test]
    fn idle_buckets_are_dropped_when_the_map_is_full() {
        let limiter = RateLimiter::new(1.0, 1);
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED {
            let _ = limiter.check(&i.to_string(), t0);
        }
        // all buckets are full again 10 s later, so they are dropped to make room
        let _ = limiter.check("new", t0 + Duration::from_secs(10));
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
    }
}
