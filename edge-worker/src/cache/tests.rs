//! The cache policy, natively: a fake KV (`FakeKv`, counting reads, able to fail or to run a hook
//! while a read is "in flight"), a fake runtime (`FakeHost`, a clock that advances one
//! millisecond per reading, and a log) and `now_ms` chosen by each test.

use std::cell::{Cell, RefCell};

use super::*;
use crate::fakes::ready;

const ENV: &str = "production";
const TTL: u64 = 5_000;
const T0: u64 = 1_790_000_000_000;

/// Snapshot JSON of `environment` at `version` with `flags` static boolean flags `f0`, `f1`…
fn snapshot_json(environment: &str, version: u64, flags: usize) -> String {
    let flags: Vec<String> = (0..flags)
        .map(|i| format!(r#"{{"flagKey":"f{i}","enabled":true}}"#))
        .collect();
    format!(
        r#"{{"environment":"{environment}","version":{version},"flags":[{}]}}"#,
        flags.join(",")
    )
}

fn packed(environment: &str, version: u64, flags: usize) -> Vec<u8> {
    packed::pack(snapshot_json(environment, version, flags).as_bytes()).unwrap()
}

#[derive(Default)]
struct FakeKv {
    version: RefCell<Option<String>>,
    snapshot: RefCell<Option<Vec<u8>>>,
    fail_version: Cell<bool>,
    fail_snapshot: Cell<bool>,
    version_reads: Cell<usize>,
    snapshot_reads: Cell<usize>,
    /// Runs once, inside the next read, as if another request ran while it waited.
    during_read: RefCell<Option<Box<dyn FnOnce()>>>,
}

impl FakeKv {
    /// What a publish writes: the packed snapshot, then its version.
    fn publish(&self, environment: &str, version: u64, flags: usize) {
        self.put(packed(environment, version, flags), &version.to_string());
    }

    fn put(&self, snapshot: Vec<u8>, version: &str) {
        *self.snapshot.borrow_mut() = Some(snapshot);
        *self.version.borrow_mut() = Some(version.to_owned());
    }

    fn fail(&self, failing: bool) {
        self.fail_version.set(failing);
        self.fail_snapshot.set(failing);
    }

    fn reads(&self) -> (usize, usize) {
        (self.version_reads.get(), self.snapshot_reads.get())
    }

    fn interleave(&self) {
        if let Some(hook) = self.during_read.borrow_mut().take() {
            hook();
        }
    }
}

impl Store for FakeKv {
    async fn version(&self, _environment: &str) -> Result<Option<String>, String> {
        self.version_reads.set(self.version_reads.get() + 1);
        self.interleave();
        if self.fail_version.get() {
            return Err("KV is down".to_owned());
        }
        Ok(self.version.borrow().clone())
    }

    async fn snapshot(&self, _environment: &str) -> Result<Option<Vec<u8>>, String> {
        self.snapshot_reads.set(self.snapshot_reads.get() + 1);
        self.interleave();
        if self.fail_snapshot.get() {
            return Err("KV is down".to_owned());
        }
        Ok(self.snapshot.borrow().clone())
    }
}

#[derive(Default)]
struct FakeHost {
    clock: Cell<f64>,
    log: RefCell<Vec<String>>,
}

impl Host for FakeHost {
    fn clock_ms(&self) -> f64 {
        self.clock.set(self.clock.get() + 1.0);
        self.clock.get()
    }

    fn warn(&self, message: &str) {
        self.log.borrow_mut().push(format!("warn: {message}"));
    }

    fn error(&self, message: &str) {
        self.log.borrow_mut().push(format!("error: {message}"));
    }
}

/// What a publish to the isolate does: installs `environment` at `version` with `flags` flags.
fn install_snapshot(
    cache: &Cache,
    host: &FakeHost,
    (environment, version, flags): (&str, u64, usize),
    now_ms: u64,
) {
    let whole = CompiledSnapshot::from_json(snapshot_json(environment, version, flags).as_bytes())
        .unwrap()
        .0;
    cache.install(host, packed(environment, version, flags), whole, now_ms);
}

/// Installs `version` of `ENV` with three flags.
fn install(cache: &Cache, version: u64, now_ms: u64) {
    install_snapshot(cache, &FakeHost::default(), (ENV, version, 3), now_ms);
}

struct Isolate {
    cache: Rc<Cache>,
    kv: Rc<FakeKv>,
    host: FakeHost,
}

impl Isolate {
    fn new() -> Self {
        Self {
            cache: Rc::default(),
            kv: Rc::default(),
            host: FakeHost::default(),
        }
    }

    /// The version a request at `now_ms` is served, and its timing.
    fn request(&self, now_ms: u64) -> (Option<u64>, Timing) {
        let mut timing = Timing::default();
        let loaded =
            ready(
                self.cache
                    .snapshot(&*self.kv, &self.host, ENV, now_ms, TTL, &mut timing),
            );
        (loaded.map(|l| l.version()), timing)
    }

    /// An isolate whose first request, at `T0`, was served `version` (of three flags) from KV.
    #[track_caller]
    fn serving(version: u64) -> Self {
        let isolate = Self::new();
        isolate.kv.publish(ENV, version, 3);
        assert_eq!(isolate.served(T0), Some(version));
        isolate
    }

    fn served(&self, now_ms: u64) -> Option<u64> {
        self.request(now_ms).0
    }

    fn logged(&self) -> Vec<String> {
        self.host.log.borrow().clone()
    }
}

#[test]
fn a_fresh_isolate_loads_the_snapshot_from_kv_without_reading_the_version_key() {
    let isolate = Isolate::new();
    isolate.kv.publish(ENV, 1, 3);
    let (version, timing) = isolate.request(T0);
    assert_eq!(version, Some(1));
    assert_eq!(isolate.kv.reads(), (0, 1));
    // KV wait and the directory check, nothing compiled yet.
    assert_eq!(
        timing.header().as_deref(),
        Some("kv;dur=1.000, parse;dur=1.000")
    );
}

#[test]
fn within_the_ttl_kv_is_not_consulted_and_at_the_ttl_it_is() {
    let isolate = Isolate::serving(1);
    isolate.kv.publish(ENV, 2, 3);
    let (version, timing) = isolate.request(T0 + TTL - 1);
    assert_eq!(version, Some(1), "not before the TTL");
    assert_eq!(timing.header(), None, "no KV read, no compile");
    assert_eq!(isolate.kv.reads(), (0, 1));
    assert_eq!(isolate.served(T0 + TTL), Some(2), "at the TTL");
    assert_eq!(isolate.kv.reads(), (1, 2));
}

/// docs/event-streams.md, "The re-fetch": after an event, the bulk request's `flagConfigEtag`
/// names the new version, and an isolate holding an older one reads KV before it answers.
#[test]
fn a_hint_of_a_newer_version_checks_kv_at_once_at_most_once_per_interval() {
    let isolate = Isolate::serving(1);
    isolate.kv.publish(ENV, 2, 3);
    let now = T0 + 10;
    assert!(isolate.cache.expect(ENV, 2, now));
    assert_eq!(
        isolate.served(now),
        Some(2),
        "within the TTL, because of the hint"
    );
    assert_eq!(isolate.kv.reads(), (1, 2));
    // Held now: the same hint again forces nothing.
    assert!(!isolate.cache.expect(ENV, 2, now + HINT_CHECK_INTERVAL_MS));
    assert_eq!(isolate.served(now + HINT_CHECK_INTERVAL_MS), Some(2));
    assert_eq!(isolate.kv.reads(), (1, 2));
}

#[test]
fn forged_hints_cost_one_version_read_per_interval_whatever_the_request_rate() {
    let isolate = Isolate::serving(1);
    let start = T0 + 10;
    // A hundred requests within one interval, each naming a version that does not exist.
    for n in 0..100 {
        isolate.cache.expect(ENV, 99, start + n);
        assert_eq!(isolate.served(start + n), Some(1));
    }
    assert_eq!(isolate.kv.reads(), (1, 1), "one forced version read");
    // The next interval allows one more.
    let next = start + HINT_CHECK_INTERVAL_MS;
    assert!(isolate.cache.expect(ENV, 99, next));
    assert_eq!(isolate.served(next), Some(1));
    assert_eq!(isolate.kv.reads(), (2, 1));
    // Hints of the version held, or older, never force a read.
    let later = next + HINT_CHECK_INTERVAL_MS;
    assert!(!isolate.cache.expect(ENV, 1, later));
    assert!(!isolate.cache.expect(ENV, 0, later));
    assert_eq!(isolate.served(later), Some(1));
    assert_eq!(isolate.kv.reads(), (2, 1));
}

#[test]
fn a_hint_for_an_environment_the_isolate_never_read_forces_nothing() {
    let isolate = Isolate::new();
    assert!(!isolate.cache.expect(ENV, 5, T0));
    assert_eq!(isolate.kv.reads(), (0, 0));
}

#[test]
fn an_unchanged_version_key_costs_one_small_read_per_ttl() {
    let isolate = Isolate::serving(1);
    for n in 1..=3 {
        let (version, timing) = isolate.request(T0 + n * TTL);
        assert_eq!(version, Some(1));
        assert_eq!(timing.header().as_deref(), Some("kv;dur=1.000"));
    }
    assert_eq!(isolate.kv.reads(), (3, 1));
}

#[test]
fn the_ttl_counts_from_the_last_check_not_the_last_change() {
    let isolate = Isolate::serving(1);
    assert_eq!(isolate.served(T0 + TTL + 10), Some(1));
    isolate.kv.publish(ENV, 2, 3);
    assert_eq!(isolate.served(T0 + 2 * TTL + 9), Some(1));
    assert_eq!(isolate.served(T0 + 2 * TTL + 10), Some(2));
}

#[test]
fn a_ttl_of_zero_checks_kv_on_every_request() {
    let isolate = Isolate::new();
    isolate.kv.publish(ENV, 1, 3);
    let mut timing = Timing::default();
    for _ in 0..3 {
        ready(
            isolate
                .cache
                .snapshot(&*isolate.kv, &isolate.host, ENV, T0, 0, &mut timing),
        );
    }
    assert_eq!(isolate.kv.reads(), (2, 1));
}

#[test]
fn a_clock_that_goes_back_does_not_trigger_a_check() {
    let isolate = Isolate::serving(1);
    isolate.kv.publish(ENV, 2, 3);
    assert_eq!(isolate.served(T0 - 60_000), Some(1));
    assert_eq!(isolate.kv.reads(), (0, 1));
}

#[test]
fn an_older_snapshot_in_kv_never_rolls_the_isolate_back() {
    let isolate = Isolate::serving(6);
    // A lagging KV replica.
    isolate.kv.publish(ENV, 2, 3);
    assert_eq!(isolate.served(T0 + TTL), Some(6));
    assert_eq!(
        isolate.kv.reads(),
        (1, 2),
        "the snapshot decides, not the version key"
    );
}

#[test]
fn a_version_key_ahead_of_an_older_snapshot_does_not_roll_back_either() {
    let isolate = Isolate::serving(6);
    isolate.kv.put(packed(ENV, 5, 3), "7");
    assert_eq!(isolate.served(T0 + TTL), Some(6));
}

#[test]
fn a_garbage_version_key_falls_back_to_the_snapshots_own_version() {
    let isolate = Isolate::serving(1);
    isolate.kv.put(packed(ENV, 4, 3), "not-a-number");
    assert_eq!(isolate.served(T0 + TTL), Some(4));
}

#[test]
fn kv_errors_keep_the_last_good_snapshot_and_are_logged() {
    let isolate = Isolate::serving(1);
    isolate.kv.publish(ENV, 2, 3);
    isolate.kv.fail(true);
    assert_eq!(isolate.served(T0 + TTL), Some(1));
    assert_eq!(
        isolate.logged(),
        ["error: KV read of version:production failed, keeping version 1: KV is down"]
    );
    // The failed check counts as a check: KV is not hammered while it is down.
    assert_eq!(isolate.served(T0 + TTL + 1), Some(1));
    assert_eq!(isolate.kv.reads(), (1, 1));
    isolate.kv.fail(false);
    assert_eq!(isolate.served(T0 + 2 * TTL), Some(2));
}

#[test]
fn a_failed_snapshot_read_keeps_the_last_good_snapshot() {
    let isolate = Isolate::serving(1);
    isolate.kv.publish(ENV, 2, 3);
    isolate.kv.fail_snapshot.set(true);
    assert_eq!(isolate.served(T0 + TTL), Some(1));
    assert_eq!(isolate.kv.reads(), (1, 2));
    assert_eq!(
        isolate.logged(),
        ["error: KV read of snapshot:production failed: KV is down"]
    );
    isolate.kv.fail_snapshot.set(false);
    assert_eq!(isolate.served(T0 + 2 * TTL), Some(2));
}

#[test]
fn a_corrupt_snapshot_keeps_the_last_good_one_at_every_check() {
    let isolate = Isolate::serving(1);
    isolate.kv.put(
        br#"{"environment":"production","version":2,"flags":[{"#.to_vec(),
        "2",
    );
    assert_eq!(isolate.served(T0 + TTL), Some(1));
    assert_eq!(isolate.served(T0 + 2 * TTL), Some(1));
    let logged = isolate.logged();
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert!(
        logged[0].starts_with("error: snapshot:production: ")
            && logged[0].ends_with("; keeping the last good snapshot"),
        "{logged:?}"
    );
    assert_eq!(isolate.cache.versions(), [(ENV.to_owned(), 1)]);
}

#[test]
fn a_corrupt_packed_snapshot_keeps_the_last_good_one() {
    let isolate = Isolate::serving(1);
    let mut broken = packed(ENV, 2, 3);
    broken.truncate(90);
    isolate.kv.put(broken, "2");
    assert_eq!(isolate.served(T0 + TTL), Some(1));
}

#[test]
fn a_snapshot_of_another_environment_under_this_key_is_ignored() {
    let isolate = Isolate::serving(1);
    isolate.kv.publish("staging", 3, 3);
    assert_eq!(isolate.served(T0 + TTL), Some(1));
    isolate
        .kv
        .put(snapshot_json("staging", 4, 3).into_bytes(), "4");
    assert_eq!(isolate.served(T0 + 2 * TTL), Some(1));
    assert!(isolate.logged()[1].contains(r#"holds environment "staging""#));
}

#[test]
fn a_deleted_snapshot_keeps_the_last_good_one() {
    let isolate = Isolate::serving(6);
    *isolate.kv.snapshot.borrow_mut() = None;
    *isolate.kv.version.borrow_mut() = None;
    assert_eq!(isolate.served(T0 + TTL), Some(6));
}

#[test]
fn a_fresh_isolate_with_only_corrupt_data_has_nothing_then_recovers_after_the_ttl() {
    let isolate = Isolate::new();
    isolate.kv.put(b"not json at all".to_vec(), "1");
    assert_eq!(isolate.served(T0), None);
    isolate.kv.publish(ENV, 2, 3);
    assert_eq!(isolate.served(T0 + TTL - 1), None, "not before the TTL");
    assert_eq!(isolate.served(T0 + TTL), Some(2));
}

#[test]
fn a_fresh_isolate_with_an_empty_kv_has_nothing() {
    let isolate = Isolate::new();
    assert_eq!(isolate.served(T0), None);
    assert!(isolate.cache.versions().is_empty());
    assert!(isolate.cache.cached(ENV).is_none());
}

#[test]
fn a_plain_json_snapshot_is_read_and_compiled_whole() {
    let isolate = Isolate::new();
    isolate.kv.put(snapshot_json(ENV, 3, 4).into_bytes(), "3");
    let (version, timing) = isolate.request(T0);
    assert_eq!(version, Some(3));
    assert_eq!(
        timing.header().as_deref(),
        Some("kv;dur=1.000, parse;dur=0.000, compile;dur=1.000")
    );
    let loaded = isolate.cache.cached(ENV).unwrap();
    let compiled = loaded
        .compiled_for(&isolate.host, Some(&["f0"]), 32, &mut Timing::default())
        .unwrap();
    assert_eq!(compiled.len(), 4, "already whole");
}

#[test]
fn requests_interleaving_with_a_check_use_the_cached_copy() {
    let isolate = Rc::new(Isolate::serving(1));
    isolate.kv.publish(ENV, 2, 3);
    let during = Rc::new(Cell::new(None));
    *isolate.kv.during_read.borrow_mut() = Some(Box::new({
        let (cache, during) = (Rc::clone(&isolate.cache), Rc::clone(&during));
        let host = FakeHost::default();
        let kv = Rc::new(FakeKv::default());
        move || {
            let mut timing = Timing::default();
            let loaded = ready(cache.snapshot(&*kv, &host, ENV, T0 + TTL, TTL, &mut timing));
            during.set(Some((loaded.map(|l| l.version()), kv.reads())));
        }
    }));
    assert_eq!(isolate.served(T0 + TTL), Some(2));
    assert_eq!(
        during.get(),
        Some((Some(1), (0, 0))),
        "served the cached copy without a KV read of its own"
    );
}

#[test]
fn a_newer_snapshot_installed_while_a_check_waits_is_kept() {
    let isolate = Isolate::serving(1);
    isolate.kv.publish(ENV, 2, 3);
    *isolate.kv.during_read.borrow_mut() = Some(Box::new({
        let cache = Rc::clone(&isolate.cache);
        move || install(&cache, 9, T0 + TTL)
    }));
    assert_eq!(isolate.served(T0 + TTL), Some(9));
    assert_eq!(isolate.cache.versions(), [(ENV.to_owned(), 9)]);
}

#[test]
fn a_publish_is_served_at_once_and_restarts_the_ttl() {
    let isolate = Isolate::serving(1);
    install(&isolate.cache, 5, T0 + 100);
    assert_eq!(isolate.served(T0 + 100), Some(5));
    assert_eq!(isolate.served(T0 + TTL + 99), Some(5));
    assert_eq!(
        isolate.kv.reads(),
        (0, 1),
        "no KV read until the TTL after the publish"
    );
}

#[test]
fn a_publish_never_replaces_a_newer_snapshot() {
    let isolate = Isolate::new();
    install(&isolate.cache, 5, T0);
    install(&isolate.cache, 4, T0);
    install(&isolate.cache, 5, T0);
    assert_eq!(isolate.cache.versions(), [(ENV.to_owned(), 5)]);
}

#[test]
fn an_installed_snapshot_is_already_compiled_whole() {
    let cache = Cache::default();
    install(&cache, 5, T0);
    let mut timing = Timing::default();
    let compiled = cache
        .cached(ENV)
        .unwrap()
        .compiled_for(&FakeHost::default(), Some(&["f0"]), 32, &mut timing)
        .unwrap();
    assert_eq!(compiled.len(), 3);
    assert_eq!(timing.header(), None, "nothing compiled again");
}

#[test]
fn versions_of_every_environment_are_listed_sorted() {
    let isolate = Isolate::new();
    isolate.kv.publish(ENV, 1, 3);
    isolate.served(T0);
    install_snapshot(&isolate.cache, &isolate.host, ("a-env", 7, 1), T0);
    assert_eq!(
        isolate.cache.versions(),
        [("a-env".to_owned(), 7), (ENV.to_owned(), 1)]
    );
}

/// A packed snapshot of `flags` flags as a fresh isolate loads it.
fn loaded(flags: usize) -> (Rc<Loaded>, FakeHost) {
    let isolate = Isolate::new();
    isolate.kv.publish(ENV, 1, flags);
    isolate.served(T0);
    (isolate.cache.cached(ENV).unwrap(), isolate.host)
}

fn compiled(
    loaded: &Loaded,
    host: &FakeHost,
    keys: Option<&[&str]>,
    limit: usize,
) -> (Rc<CompiledSnapshot>, Timing) {
    let mut timing = Timing::default();
    let compiled = loaded.compiled_for(host, keys, limit, &mut timing).unwrap();
    (compiled, timing)
}

#[test]
fn a_request_for_a_few_flags_compiles_only_their_subset_once() {
    let (loaded, host) = loaded(20);
    let (subset, timing) = compiled(&loaded, &host, Some(&["f3", "f1"]), 32);
    let mut keys: Vec<&str> = subset.flag_keys().collect();
    keys.sort_unstable();
    assert_eq!(keys, ["f1", "f3"]);
    assert!(timing.header().is_some_and(|h| h.contains("compile;dur=")));
    // The same flags in another order, repeated: the same compiled subset, nothing compiled.
    let (again, timing) = compiled(&loaded, &host, Some(&["f1", "f3", "f1"]), 32);
    assert!(Rc::ptr_eq(&subset, &again));
    assert_eq!(timing.header(), None);
}

#[test]
fn up_to_max_subset_keys_flags_are_a_subset_and_more_compile_the_whole() {
    let (loaded, host) = loaded(20);
    let keys: Vec<String> = (0..=MAX_SUBSET_KEYS).map(|i| format!("f{i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let (subset, _) = compiled(&loaded, &host, Some(&keys[..MAX_SUBSET_KEYS]), 32);
    assert_eq!(subset.len(), MAX_SUBSET_KEYS);
    let (whole, _) = compiled(&loaded, &host, Some(&keys), 32);
    assert_eq!(whole.len(), 20);
}

#[test]
fn once_the_whole_is_compiled_it_serves_every_request() {
    let (loaded, host) = loaded(20);
    compiled(&loaded, &host, Some(&["f0"]), 32);
    let (whole, _) = compiled(&loaded, &host, None, 32);
    assert_eq!(whole.len(), 20);
    for keys in [&["f0"][..], &["f5"], &[]] {
        let (served, timing) = compiled(&loaded, &host, Some(keys), 32);
        assert!(Rc::ptr_eq(&whole, &served), "{keys:?}");
        assert_eq!(timing.header(), None);
    }
}

#[test]
fn after_the_subset_limit_the_whole_snapshot_is_compiled() {
    let (loaded, host) = loaded(20);
    for i in 0..3 {
        let key = format!("f{i}");
        let (subset, _) = compiled(&loaded, &host, Some(&[key.as_str()]), 3);
        assert_eq!(subset.len(), 1);
    }
    // A cached subset is still served from the cache.
    let (cached, timing) = compiled(&loaded, &host, Some(&["f1"]), 3);
    assert_eq!((cached.len(), timing.header()), (1, None));
    let (whole, _) = compiled(&loaded, &host, Some(&["f3"]), 3);
    assert_eq!(
        whole.len(),
        20,
        "the fourth distinct subset compiles the whole"
    );
    let (served, _) = compiled(&loaded, &host, Some(&["f1"]), 3);
    assert!(Rc::ptr_eq(&whole, &served), "the subsets were dropped");
}

#[test]
fn a_subset_limit_of_zero_always_compiles_the_whole() {
    let (loaded, host) = loaded(20);
    let (whole, _) = compiled(&loaded, &host, Some(&["f0"]), 0);
    assert_eq!(whole.len(), 20);
}

#[test]
fn a_request_for_unknown_flags_compiles_an_empty_subset() {
    let (loaded, host) = loaded(5);
    let (subset, _) = compiled(&loaded, &host, Some(&["missing"]), 32);
    assert!(subset.is_empty());
}

#[test]
fn invalid_flags_in_a_subset_degrade_and_are_logged() {
    let isolate = Isolate::new();
    let json = br#"{"environment":"production","version":1,"flags":[{"flagKey":"a","enabled":true,"targetingRules":{"rules":[{"clauses":[{"attribute":"plan","operator":"regexx","values":["x"]}],"variation":"on"}]}}]}"#;
    isolate.kv.put(packed::pack(json).unwrap(), "1");
    isolate.served(T0);
    let loaded = isolate.cache.cached(ENV).unwrap();
    let (subset, _) = compiled(&loaded, &isolate.host, Some(&["a"]), 32);
    assert!(subset.contains_flag("a"));
    let logged = isolate.logged();
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(
        logged[0].starts_with(
            "warn: snapshot production v1 has 1 invalid part(s), served as errors; first: "
        ),
        "{logged:?}"
    );
}

#[test]
fn the_same_version_read_again_keeps_what_was_compiled_of_it() {
    let isolate = Isolate::serving(1);
    let before = isolate.cache.cached(ENV).unwrap();
    // An unreadable version key makes the check read the snapshot itself: the same version.
    isolate.kv.put(packed(ENV, 1, 3), "garbage");
    assert_eq!(isolate.served(T0 + TTL), Some(1));
    assert_eq!(isolate.kv.reads(), (1, 2));
    assert!(Rc::ptr_eq(&before, &isolate.cache.cached(ENV).unwrap()));
}

#[test]
fn the_cache_is_bounded_by_bytes_dropping_the_least_recently_used_first() {
    let cache = Cache::default();
    let host = FakeHost::default();
    // Three environments of 200 flags; each packed value and its whole compiled form estimated.
    for (i, environment) in ["a", "b", "c"].into_iter().enumerate() {
        install_snapshot(&cache, &host, (environment, 1, 200), T0 + i as u64);
    }
    let one = cache.bytes() / 3;
    assert!(one > 200 * 30, "{one} bytes for 200 flags");
    // "a" is used again, so "b" is now the least recently used.
    let kv = FakeKv::default();
    let used = ready(cache.snapshot(&kv, &host, "a", T0 + 10, TTL, &mut Timing::default()));
    assert!(used.is_some());
    cache.trim(&host, "c", 2 * one + one / 2);
    assert_eq!(
        cache.versions(),
        [("a".to_owned(), 1), ("c".to_owned(), 1)],
        "the least recently used went first"
    );
    assert!(cache.bytes() <= 2 * one + one / 2);
    // The one the request uses stays, even alone over the budget.
    cache.trim(&host, "c", 1);
    assert_eq!(cache.versions(), [("c".to_owned(), 1)]);
    assert!(host
        .log
        .borrow()
        .iter()
        .any(|line| line.starts_with("warn: snapshot cache over")));
    // A snapshot read from KV counts its packed bytes, then each compiled subset on top.
    let cache = Cache::default();
    kv.publish(ENV, 1, 200);
    let loaded = ready(cache.snapshot(&kv, &host, ENV, T0, TTL, &mut Timing::default())).unwrap();
    let stored = cache.bytes();
    assert_eq!(stored, kv.snapshot.borrow().as_ref().unwrap().len());
    loaded
        .compiled_for(&host, Some(&["f1"]), 32, &mut Timing::default())
        .unwrap();
    assert!(cache.bytes() > stored);
}
