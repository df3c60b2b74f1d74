//! Time in the worker: the request's wall-clock time, the monotonic clock its durations are
//! measured with, and the `Server-Timing` header that reports them.
//!
//! [`Timing`] is plain data (unit-tested natively); [`Runtime`] is the Workers runtime as the
//! cache sees it (`performance.now()` and the console), the one implementation of
//! [`cache::Host`](crate::cache::Host) outside tests.

use worker::{console_error, console_warn, Date};

use crate::cache::Host;

/// The current Unix time in milliseconds (`Date.now()`): what TTLs and signature timestamps are
/// compared with. On Cloudflare it advances only between I/O events.
pub(crate) fn now_ms() -> u64 {
    Date::now().as_millis()
}

/// `performance.now()`: sub-millisecond and monotonic (falls back to `Date.now()`).
pub(crate) fn clock_ms() -> f64 {
    use worker::js_sys::{global, Date, Function, Reflect};
    use worker::wasm_bindgen::JsCast;
    Reflect::get(&global(), &"performance".into())
        .ok()
        .and_then(|performance| {
            let now: Function = Reflect::get(&performance, &"now".into())
                .ok()?
                .dyn_into()
                .ok()?;
            now.call0(&performance).ok()?.as_f64()
        })
        .unwrap_or_else(Date::now)
}

/// The Workers runtime: `performance.now()` and the console.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Runtime;

impl Host for Runtime {
    fn clock_ms(&self) -> f64 {
        clock_ms()
    }

    fn warn(&self, message: &str) {
        console_warn!("{message}");
    }

    fn error(&self, message: &str) {
        console_error!("{message}");
    }
}

/// Where a request's time went when it consulted KV or compiled, reported as `Server-Timing`.
/// Workers on Cloudflare freeze the clock between I/O events, so there `parse`/`compile` read
/// 0; under local workerd (Miniflare, `wrangler dev`) they are the CPU time spent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Timing {
    /// Milliseconds waiting for KV reads, if KV was consulted.
    kv_ms: Option<f64>,
    /// Milliseconds checking a packed directory KV returned, if the request loaded one.
    parse_ms: Option<f64>,
    /// Milliseconds compiling snapshot JSON (a subset or the whole), if any.
    compile_ms: Option<f64>,
    /// Milliseconds from the request's arrival to its answer, KV waits included.
    total_ms: Option<f64>,
}

impl Timing {
    pub(crate) fn add_kv(&mut self, ms: f64) {
        self.kv_ms = Some(self.kv_ms.unwrap_or(0.0) + ms);
    }

    pub(crate) fn add_parse(&mut self, ms: f64) {
        self.parse_ms = Some(self.parse_ms.unwrap_or(0.0) + ms);
    }

    pub(crate) fn add_compile(&mut self, ms: f64) {
        self.compile_ms = Some(self.compile_ms.unwrap_or(0.0) + ms);
    }

    /// Whether the request read KV or compiled anything.
    pub(crate) fn worked(&self) -> bool {
        self.kv_ms.is_some() || self.parse_ms.is_some() || self.compile_ms.is_some()
    }

    pub(crate) fn set_total(&mut self, ms: f64) {
        self.total_ms = Some(ms);
    }

    /// The `Server-Timing` value, e.g. `kv;dur=1.000, parse;dur=0.000, compile;dur=4.000,
    /// total;dur=6.000` (`total - kv` is the request's CPU); `None` when the request neither read
    /// KV nor compiled.
    pub(crate) fn header(&self) -> Option<String> {
        if self.kv_ms.is_none() && self.compile_ms.is_none() && self.parse_ms.is_none() {
            return None;
        }
        let parts: Vec<String> = [
            ("kv", self.kv_ms),
            ("parse", self.parse_ms.or(self.compile_ms.map(|_| 0.0))),
            ("compile", self.compile_ms),
            ("total", self.total_ms),
        ]
        .into_iter()
        .filter_map(|(name, ms)| Some(format!("{name};dur={:.3}", ms?)))
        .collect();
        Some(parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::Timing;

    /// The header of a request that recorded what `record` records.
    fn header_after(record: impl FnOnce(&mut Timing)) -> Option<String> {
        let mut timing = Timing::default();
        record(&mut timing);
        timing.header()
    }

    #[test]
    fn a_request_that_neither_read_kv_nor_compiled_has_no_header() {
        assert_eq!(header_after(|t| t.set_total(3.0)), None);
    }

    #[test]
    fn the_header_lists_kv_parse_compile_and_total_with_three_decimals() {
        let header = header_after(|t| {
            t.add_kv(1.0);
            t.add_kv(0.5);
            t.add_parse(0.25);
            t.add_compile(4.0);
            t.set_total(6.0);
        });
        assert_eq!(
            header.as_deref(),
            Some("kv;dur=1.500, parse;dur=0.250, compile;dur=4.000, total;dur=6.000")
        );
    }

    #[test]
    fn a_compile_without_a_parse_reports_parse_as_zero() {
        let header = header_after(|t| t.add_compile(2.0));
        assert_eq!(
            header.as_deref(),
            Some("parse;dur=0.000, compile;dur=2.000")
        );
    }

    #[test]
    fn a_kv_check_alone_reports_only_kv_and_total() {
        let header = header_after(|t| {
            t.add_kv(0.125);
            t.set_total(1.0);
        });
        assert_eq!(header.as_deref(), Some("kv;dur=0.125, total;dur=1.000"));
    }
}
