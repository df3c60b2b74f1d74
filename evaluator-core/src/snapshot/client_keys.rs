//! Environment keys (client and server): stored as SHA-256 hashes, compared as bytes.

use hashbrown::HashMap;

use crate::model::{ClientKey, KeyKind};
use crate::path::{Diagnostics, Path};
use alloc::string::String;

pub(super) fn compile_client_keys(
    keys: &[core::result::Result<&ClientKey, String>],
    diag: &mut Diagnostics,
    root: &Path<'_>,
) -> (HashMap<[u8; 32], KeyKind>, bool) {
    let path = root.field("clientKeys");
    let mut out = HashMap::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let item = path.index(i);
        match key {
            Ok(key) => match decode_sha256(&key.sha256) {
                Some(hash) => {
                    out.insert(hash, key.kind);
                }
                None => diag.report(
                    &item.field("sha256"),
                    "expected 64 hexadecimal characters (a SHA-256)",
                ),
            },
            Err(message) => diag.report(&item, message.clone()),
        }
    }
    (out, !keys.is_empty())
}

/// 64 hex characters (either case) to 32 bytes.
pub(super) fn decode_sha256(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (nibble(*hi)?, nibble(*lo)?),
            _ => return None,
        };
        *slot = hi << 4 | lo;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}
