//! The environment index: which environments this deployment serves and which client keys they
//! may hold, so that a request is screened before anything of the environment it names is read.
//!
//! Without it, a request naming any environment (`efk.<anything>.<32 hex>`, or `?environment=`
//! with keys off) made the isolate read that environment's KV keys and keep a cache entry for it:
//! a stream of made-up names was a stream of KV reads and a cache that grew without bound, and the
//! difference between "no such environment" and "wrong key" told a caller which environments
//! exist.
//!
//! The index is one KV listing of the `snapshot:` keys with their metadata
//! ([`publish_protocol::SnapshotMetadata`]: version and client-key hash prefixes, written with
//! every publish), made at most once per TTL per isolate, whatever the requests name. A request
//! whose environment is not listed, or whose key's hash prefix the environment does not list, is
//! answered like a wrong key without a read and without a cache entry. An environment the
//! isolate already holds is not screened again: its snapshot is in memory and decides.
//!
//! Pure Rust like `cache`: the listing comes in through [`Listing`], so the policy is unit-tested
//! natively.

use std::cell::RefCell;

use publish_protocol::SnapshotMetadata;

use crate::cache::Host;
use crate::timing::Timing;

/// One listing of the environments stored in KV. An `Err` is KV failing, with its message.
pub(crate) trait Listing {
    /// Every environment with a stored snapshot, with that snapshot's metadata (`None` when the
    /// value was written without it, by hand or by an older worker).
    async fn environments(&self) -> Result<Vec<(String, Option<SnapshotMetadata>)>, String>;
}

/// Whether a request may go on to the environment's snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The environment is listed (or held) and may hold the key.
    Admitted,
    /// No such environment, or a key it cannot hold: answer like an unknown key.
    Refused,
    /// No listing could be made yet (KV failing since the isolate started): answer the
    /// fallback without reading the environment.
    Unknown,
}

/// Who a request says it is: the environment it names and the hash of the key it presents
/// (lowercase hex SHA-256; `None` without a key).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller<'a> {
    pub(crate) environment: &'a str,
    pub(crate) key_sha256: Option<&'a str>,
}

/// This isolate's index.
#[derive(Default)]
pub(crate) struct Index {
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    /// Environment → its snapshot's metadata, as last listed; `None` until a listing succeeded.
    /// Lists, not maps: a deployment has tens of environments, a scan of them costs less than
    /// hashing, and each map type would add its own few KB of hash table code to the wasm.
    listed: Option<Vec<(String, Option<SnapshotMetadata>)>>,
    /// Snapshots this isolate stored by publish that the listing has not shown yet (listings lag
    /// writes); dropped once a listing shows their version or a newer one.
    recorded: Vec<(String, SnapshotMetadata)>,
    /// When a listing was last started (Unix ms).
    listed_at_ms: Option<u64>,
}

thread_local! {
    static ISOLATE: std::rc::Rc<Index> = std::rc::Rc::default();
}

/// This isolate's index (one per isolate thread, for its lifetime).
pub(crate) fn isolate() -> std::rc::Rc<Index> {
    ISOLATE.with(std::rc::Rc::clone)
}

impl Index {
    /// Screens `caller` at `now_ms`, listing KV when the index is older than `ttl_ms`.
    pub(crate) async fn admit(
        &self,
        listing: &impl Listing,
        host: &impl Host,
        caller: Caller<'_>,
        now_ms: u64,
        ttl_ms: u64,
        timing: &mut Timing,
    ) -> Admission {
        let due = {
            let mut state = self.state.borrow_mut();
            match (state.listed.is_some(), state.listed_at_ms) {
                (true, Some(at)) if now_ms.saturating_sub(at) < ttl_ms => false,
                // Claim the refresh: requests interleaving with it use the index held.
                (true, _) => {
                    state.listed_at_ms = Some(now_ms);
                    true
                }
                // Nothing listed yet: every request tries, so none is refused for want of a
                // listing another request has not finished.
                (false, _) => true,
            }
        };
        if due {
            let started = host.clock_ms();
            let listed = listing.environments().await;
            timing.add_kv(host.clock_ms() - started);
            let mut state = self.state.borrow_mut();
            match listed {
                Ok(listed) => {
                    state.recorded.retain(|(name, ours)| {
                        find(&listed, name).is_none_or(|seen| {
                            seen.as_ref()
                                .is_some_and(|seen| seen.version < ours.version)
                        })
                    });
                    state.listed = Some(listed);
                    state.listed_at_ms = Some(state.listed_at_ms.unwrap_or(now_ms).max(now_ms));
                }
                Err(e) => host.error(&format!(
                    "KV listing of the environments failed, keeping the index held: {e}"
                )),
            }
        }
        let Caller {
            environment,
            key_sha256,
        } = caller;
        let state = self.state.borrow();
        let metadata = match (find(&state.recorded, environment), &state.listed) {
            (Some(recorded), _) => Some(recorded),
            (None, Some(listed)) => match find(listed, environment) {
                Some(metadata) => metadata.as_ref(),
                None => return Admission::Refused,
            },
            (None, None) => return Admission::Unknown,
        };
        match (metadata, key_sha256) {
            (Some(metadata), Some(key)) if !metadata.may_hold(key) => Admission::Refused,
            _ => Admission::Admitted,
        }
    }

    /// Records a snapshot this isolate just stored by publish, so that its environment and keys
    /// are admitted at once (the next listing may not show them yet: KV listings lag writes).
    pub(crate) fn record(&self, environment: &str, metadata: SnapshotMetadata) {
        let mut state = self.state.borrow_mut();
        let listed_version = state
            .listed
            .as_ref()
            .and_then(|listed| find(listed, environment)?.as_ref().map(|m| m.version));
        let recorded_version = find(&state.recorded, environment).map(|m| m.version);
        if listed_version
            .max(recorded_version)
            .is_none_or(|held| held < metadata.version)
        {
            state.recorded.retain(|(name, _)| name != environment);
            state.recorded.push((environment.to_owned(), metadata));
        }
    }
}

/// The value listed for `name`.
fn find<'a, T>(list: &'a [(String, T)], name: &str) -> Option<&'a T> {
    list.iter()
        .find(|(listed, _)| listed == name)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::fakes::ready;

    const TTL: u64 = 5_000;
    const T0: u64 = 1_790_000_000_000;
    const KEY: &str = "8ea1b6fea071e237e0facd3020a1096c514dd7a0b71ed7dff3319816011817ba";

    #[derive(Default)]
    struct FakeListing {
        environments: RefCell<Vec<(String, Option<SnapshotMetadata>)>>,
        failing: Cell<bool>,
        listings: Cell<usize>,
    }

    impl FakeListing {
        fn with(environments: &[(&str, Option<SnapshotMetadata>)]) -> Self {
            let listing = Self::default();
            *listing.environments.borrow_mut() = environments
                .iter()
                .map(|(name, metadata)| ((*name).to_owned(), metadata.clone()))
                .collect();
            listing
        }
    }

    impl Listing for FakeListing {
        async fn environments(&self) -> Result<Vec<(String, Option<SnapshotMetadata>)>, String> {
            self.listings.set(self.listings.get() + 1);
            if self.failing.get() {
                return Err("KV is down".to_owned());
            }
            Ok(self.environments.borrow().clone())
        }
    }

    #[derive(Default)]
    struct QuietHost {
        errors: RefCell<Vec<String>>,
    }

    impl Host for QuietHost {
        fn clock_ms(&self) -> f64 {
            0.0
        }
        fn warn(&self, _: &str) {}
        fn error(&self, message: &str) {
            self.errors.borrow_mut().push(message.to_owned());
        }
    }

    fn keys(version: u64, hashes: &[&str]) -> Option<SnapshotMetadata> {
        Some(SnapshotMetadata::new(version, hashes.iter().copied()))
    }

    fn admit(
        index: &Index,
        listing: &FakeListing,
        env: &str,
        key: Option<&str>,
        now: u64,
    ) -> Admission {
        ready(index.admit(
            listing,
            &QuietHost::default(),
            Caller {
                environment: env,
                key_sha256: key,
            },
            now,
            TTL,
            &mut Timing::default(),
        ))
    }

    /// Asserts each `(environment, key, expected)` admission at `now`.
    #[track_caller]
    fn expect(
        index: &Index,
        listing: &FakeListing,
        now: u64,
        cases: &[(&str, Option<&str>, Admission)],
    ) {
        for &(env, key, expected) in cases {
            assert_eq!(
                admit(index, listing, env, key, now),
                expected,
                "{env} {key:?} at {now}"
            );
        }
    }

    const WRONG: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    use Admission::{Admitted, Refused, Unknown};

    #[test]
    fn unlisted_environments_and_unlisted_keys_are_refused_after_one_listing() {
        let listing = FakeListing::with(&[("production", keys(3, &[KEY])), ("dev", None)]);
        let index = Index::default();
        expect(
            &index,
            &listing,
            T0,
            &[
                ("production", Some(KEY), Admitted),
                ("production", Some(WRONG), Refused),
                // Keys off: no key, the environment only has to exist.
                ("production", None, Admitted),
                // Written without metadata: every key reaches the snapshot's own check.
                ("dev", Some(WRONG), Admitted),
            ],
        );
        // A thousand made-up names cost nothing more than the one listing.
        for i in 0..1000 {
            let name = format!("probe-{i}");
            assert_eq!(admit(&index, &listing, &name, Some(KEY), T0 + 1), Refused);
        }
        assert_eq!(listing.listings.get(), 1);
        let held = index.state.borrow();
        assert_eq!(held.listed.as_ref().map(Vec::len), Some(2));
    }

    #[test]
    fn the_index_is_listed_again_after_the_ttl_only() {
        let listing = FakeListing::with(&[("production", keys(3, &[KEY]))]);
        let index = Index::default();
        expect(&index, &listing, T0, &[("staging", None, Refused)]);
        listing
            .environments
            .borrow_mut()
            .push(("staging".to_owned(), None));
        expect(
            &index,
            &listing,
            T0 + TTL - 1,
            &[("staging", None, Refused)],
        );
        assert_eq!(listing.listings.get(), 1);
        expect(&index, &listing, T0 + TTL, &[("staging", None, Admitted)]);
        assert_eq!(listing.listings.get(), 2);
    }

    #[test]
    fn a_failing_listing_keeps_the_index_held_and_without_one_nothing_is_read() {
        let listing = FakeListing::with(&[("production", None)]);
        listing.failing.set(true);
        let index = Index::default();
        // Every request tries until one listing succeeds.
        expect(
            &index,
            &listing,
            T0,
            &[("production", None, Unknown), ("production", None, Unknown)],
        );
        assert_eq!(listing.listings.get(), 2);
        listing.failing.set(false);
        expect(&index, &listing, T0 + 2, &[("production", None, Admitted)]);
        listing.failing.set(true);
        expect(
            &index,
            &listing,
            T0 + 2 + TTL,
            &[("production", None, Admitted), ("elsewhere", None, Refused)],
        );
        assert_eq!(listing.listings.get(), 4);
    }

    #[test]
    fn a_publish_received_here_is_admitted_before_the_listing_shows_it() {
        let listing = FakeListing::with(&[("production", keys(3, &[KEY]))]);
        let index = Index::default();
        expect(&index, &listing, T0, &[("production", Some(KEY), Admitted)]);
        let new_key = "0123456789abcdef".repeat(4);
        index.record(
            "production",
            SnapshotMetadata::new(4, [KEY, new_key.as_str()].into_iter()),
        );
        index.record("staging", SnapshotMetadata::new(1, std::iter::empty()));
        expect(
            &index,
            &listing,
            T0 + 1,
            &[
                ("production", Some(&new_key), Admitted),
                ("staging", None, Admitted),
            ],
        );
        // A lagging listing does not take them back; an older record does not replace a newer one.
        index.record("production", SnapshotMetadata::new(2, [KEY].into_iter()));
        expect(
            &index,
            &listing,
            T0 + TTL,
            &[
                ("production", Some(&new_key), Admitted),
                ("staging", None, Admitted),
            ],
        );
        assert_eq!(listing.listings.get(), 2);
        // Once the listing shows them, the records go, and the listing decides again: an
        // environment deleted from KV is refused after the next listing.
        listing
            .environments
            .borrow_mut()
            .push(("staging".to_owned(), keys(1, &[])));
        expect(
            &index,
            &listing,
            T0 + 2 * TTL,
            &[("staging", None, Admitted)],
        );
        assert!(find(&index.state.borrow().recorded, "staging").is_none());
        listing
            .environments
            .borrow_mut()
            .retain(|(name, _)| name != "staging");
        expect(
            &index,
            &listing,
            T0 + 3 * TTL,
            &[("staging", None, Refused)],
        );
    }

    #[test]
    fn a_publish_before_any_listing_is_admitted_even_while_kv_cannot_list() {
        let listing = FakeListing::default();
        listing.failing.set(true);
        let index = Index::default();
        index.record("production", SnapshotMetadata::new(1, [KEY].into_iter()));
        expect(
            &index,
            &listing,
            T0,
            &[
                ("production", Some(KEY), Admitted),
                ("production", Some(WRONG), Refused),
                ("staging", None, Unknown),
            ],
        );
    }
}
