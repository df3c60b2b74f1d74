//! The publish signature (`publish_protocol`, `docs/architecture.md` "Publish protocol"): the
//! edge's check of `X-Edgeflags-Timestamp` and `X-Edgeflags-Signature` against the raw body.
//!
//! Input: the timestamp header's value, a newline, the signature header's value, a newline, the
//! body (what is missing is absent). Checked:
//! - arbitrary headers: [`verify`] is [`SignedHeaders::parse`] then [`SignedHeaders::verify`],
//!   at any receiver clock, and accepts only the exact signature [`sign`] makes for a timestamp
//!   sent in plain decimal within the tolerance;
//! - the body signed with [`sign`] at a timestamp taken from the input verifies, at both ends of
//!   the tolerance and with surrounding whitespace, and not one second beyond;
//! - changing one byte of the body, the signature or the timestamp (position and value taken
//!   from the input), or adding or removing a byte of the body, is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use publish_protocol::{
    sign, verify, Secret, SignatureError, SignedHeaders, TIMESTAMP_TOLERANCE_SECONDS,
};

/// The receiver's clock in the checks that need one: the protocol test vector's time.
const NOW: i64 = 1_700_000_000;
const SECRET: &[u8] = b"edgeflags-fuzz-secret-of-32-byte";

fuzz_target!(|data: &[u8]| {
    let Ok(secret) = Secret::new(SECRET) else {
        panic!("the fuzz secret is too short");
    };
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let timestamp = parts.next().map(String::from_utf8_lossy);
    let signature = parts.next().map(String::from_utf8_lossy);
    let body = parts.next().unwrap_or_default();
    let timestamp = timestamp.as_deref();
    let signature = signature.as_deref();

    arbitrary_headers(&secret, timestamp, signature, body);
    let tweak = Tweak::of(data);
    signed_body(&secret, timestamp, body, tweak);
});

fn arbitrary_headers(
    secret: &Secret,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) {
    for now in [NOW, 0, i64::MIN, i64::MAX] {
        let verified = verify(secret, timestamp, signature, body, now);
        let in_steps =
            SignedHeaders::parse(timestamp, signature, now).and_then(|h| h.verify(secret, body));
        assert_eq!(verified, in_steps, "verify is parse then verify");
        if verified.is_ok() {
            let sent = timestamp.unwrap_or_default().trim();
            let Ok(at) = sent.parse::<u64>() else {
                panic!("accepted a timestamp that is not plain decimal: {sent:?}");
            };
            assert_eq!(
                at.to_string(),
                sent,
                "accepted a timestamp not in plain decimal"
            );
            assert!(now.abs_diff(at as i64) <= TIMESTAMP_TOLERANCE_SECONDS);
            assert_eq!(
                signature.map(str::trim),
                Some(sign(secret, at, body).as_str()),
                "accepted a signature that sign does not make"
            );
        }
    }
}

/// Where and how the input asks to change one byte: the last bytes of the input, so that the
/// first ones stay the headers.
#[derive(Clone, Copy)]
struct Tweak {
    position: usize,
    /// Never zero, so the byte always changes.
    xor: u8,
}

impl Tweak {
    fn of(data: &[u8]) -> Self {
        let tail = |i: usize| data.len().checked_sub(i).and_then(|j| data.get(j)).copied();
        let position = usize::from(tail(1).unwrap_or(0)) | usize::from(tail(2).unwrap_or(0)) << 8;
        Self {
            position,
            xor: tail(3).unwrap_or(1).max(1),
        }
    }

    /// `text` with one byte changed to another printable ASCII character (headers are text).
    fn text(self, text: &str) -> String {
        let mut bytes = text.as_bytes().to_vec();
        if bytes.is_empty() {
            return String::from("x");
        }
        let i = self.position % bytes.len();
        let old = bytes[i];
        let mut new = b' ' + (old ^ self.xor) % 95;
        if new == old {
            new = if old == b'~' { b' ' } else { old + 1 };
        }
        bytes[i] = new;
        String::from_utf8(bytes).unwrap_or_default()
    }
}

fn signed_body(secret: &Secret, timestamp: Option<&str>, body: &[u8], tweak: Tweak) {
    // A time near the receiver's clock, from the timestamp header when it spells a number.
    let offset = timestamp
        .and_then(|t| t.trim().parse::<i64>().ok())
        .map_or(0, |t| {
            t.rem_euclid(2 * TIMESTAMP_TOLERANCE_SECONDS as i64 + 1)
        })
        - TIMESTAMP_TOLERANCE_SECONDS as i64;
    let at = NOW + offset;
    let sent = at.to_string();
    let signature = sign(secret, at as u64, body);
    let check = |t: &str, s: &str, b: &[u8], now: i64| verify(secret, Some(t), Some(s), b, now);

    assert_eq!(
        check(&sent, &signature, body, NOW),
        Ok(()),
        "a signed body verifies"
    );
    let tolerance = TIMESTAMP_TOLERANCE_SECONDS as i64;
    for now in [at - tolerance, at + tolerance] {
        assert_eq!(
            check(&sent, &signature, body, now),
            Ok(()),
            "at the tolerance"
        );
    }
    for now in [at - tolerance - 1, at + tolerance + 1] {
        assert_eq!(
            check(&sent, &signature, body, now),
            Err(SignatureError::OutsideTolerance),
            "beyond the tolerance"
        );
    }
    let padded = (format!(" {sent}\t"), format!("\t{signature} "));
    assert_eq!(
        check(&padded.0, &padded.1, body, NOW),
        Ok(()),
        "whitespace around headers"
    );

    if !body.is_empty() {
        let mut changed = body.to_vec();
        let i = tweak.position % changed.len();
        changed[i] ^= tweak.xor;
        assert_eq!(
            check(&sent, &signature, &changed, NOW),
            Err(SignatureError::Mismatch),
            "a body with byte {i} changed"
        );
        assert_eq!(
            check(&sent, &signature, &body[..body.len() - 1], NOW),
            Err(SignatureError::Mismatch),
            "a truncated body"
        );
    }
    let mut longer = body.to_vec();
    longer.push(tweak.xor);
    assert_eq!(
        check(&sent, &signature, &longer, NOW),
        Err(SignatureError::Mismatch),
        "a longer body"
    );
    let changed = tweak.text(&signature);
    assert!(
        check(&sent, &changed, body, NOW).is_err(),
        "a signature with one byte changed: {changed:?}"
    );
    let changed = tweak.text(&sent);
    assert!(
        check(&changed, &signature, body, NOW).is_err(),
        "a timestamp with one byte changed: {changed:?}"
    );
}
