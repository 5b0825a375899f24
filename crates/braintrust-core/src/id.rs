//! Span, trace and row identifiers.
//!
//! By default span ids are 16 lowercase hex characters (8 random bytes) and trace ids
//! (`root_span_id`) 32 (16 random bytes), as the current official SDKs emit them. With
//! `BRAINTRUST_LEGACY_IDS=true` span ids are UUID v4 strings and a root span's trace id equals its
//! span id. `BRAINTRUST_OTEL_COMPAT=true` forces hex ids whatever the legacy setting says. Row ids
//! are always UUID v4.

use arrayvec::ArrayString;
use std::sync::OnceLock;

use crate::env_file::{EnvLookup, parse_bool};

/// How span and trace ids are generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IdFormat {
    /// 16-hex span ids and 32-hex trace ids (the default; W3C trace-context compatible).
    #[default]
    Hex,
    /// UUID v4 span ids; a root span's trace id equals its span id (`BRAINTRUST_LEGACY_IDS`).
    LegacyUuid,
}

impl IdFormat {
    /// The export-slug version that goes with these ids: V4, or V3 for legacy UUIDs.
    pub fn slug_version(self) -> crate::span_components::SlugVersion {
        match self {
            IdFormat::Hex => crate::span_components::SlugVersion::V4,
            IdFormat::LegacyUuid => crate::span_components::SlugVersion::V3,
        }
    }

    /// The format selected by `BRAINTRUST_LEGACY_IDS` / `BRAINTRUST_OTEL_COMPAT`, read once per
    /// process.
    pub fn from_env() -> IdFormat {
        static FORMAT: OnceLock<IdFormat> = OnceLock::new();
        *FORMAT.get_or_init(|| IdFormat::from_lookup(&EnvLookup::process_only()))
    }

    /// The format that the given settings select (see [`IdFormat::from_env`]).
    pub fn from_lookup(lookup: &EnvLookup) -> IdFormat {
        let flag = |name: &str| {
            lookup
                .get(name)
                .and_then(|v| parse_bool(&v))
                .unwrap_or(false)
        };
        if flag("BRAINTRUST_LEGACY_IDS") && !flag("BRAINTRUST_OTEL_COMPAT") {
            IdFormat::LegacyUuid
        } else {
            IdFormat::Hex
        }
    }

    /// A fresh span id in this format.
    pub fn new_span_id(self) -> String {
        match self {
            IdFormat::Hex => hex_id::<8>(),
            IdFormat::LegacyUuid => new_uuid_v4(),
        }
    }

    /// The trace id (`root_span_id`) for a new root span whose span id is `span_id`.
    pub fn new_root_span_id(self, span_id: &str) -> String {
        match self {
            IdFormat::Hex => hex_id::<16>(),
            IdFormat::LegacyUuid => span_id.to_owned(),
        }
    }
}

/// A fresh row id (UUID v4, hyphenated lowercase).
pub fn new_row_id() -> String {
    new_uuid_v4()
}

/// A fresh UUID v4 in canonical hyphenated lowercase form.
pub fn new_uuid_v4() -> String {
    uuid_v4_text().to_string()
}

/// A generated id's text, kept inline (a UUID is the longest).
pub(crate) type IdString = ArrayString<{ uuid::fmt::Hyphenated::LENGTH }>;

/// A fresh UUID v4 (hyphenated lowercase), without allocating.
pub(crate) fn uuid_v4_text() -> IdString {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let encoded = uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut text);
    // The text is exactly the capacity, so this never fails.
    IdString::from(encoded).unwrap_or_default()
}

fn fill_random(bytes: &mut [u8]) {
    for chunk in bytes.chunks_mut(8) {
        let word = fastrand::u64(..).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

fn hex_id<const N: usize>() -> String {
    hex_id_text::<N>().to_string()
}

/// `N` (at most 18) fresh random bytes, never all zero, as lowercase hex, without allocating.
pub(crate) fn hex_id_text<const N: usize>() -> IdString {
    let mut bytes = [0u8; N];
    loop {
        fill_random(&mut bytes);
        // An all-zero id is invalid in W3C trace context; draw again (probability 2^-64 or less).
        if bytes.iter().any(|b| *b != 0) {
            break;
        }
    }
    // Two digits a byte, written into a buffer at once rather than pushed one by one.
    let mut digits = [0u8; uuid::fmt::Hyphenated::LENGTH];
    for (pair, byte) in digits.chunks_exact_mut(2).zip(&bytes) {
        pair.copy_from_slice(&hex_pair(*byte));
    }
    // ASCII digits, at most 36 (N is at most 18), so neither step fails.
    let text = std::str::from_utf8(&digits[..2 * N]).unwrap_or_default();
    IdString::from(text).unwrap_or_default()
}

/// The two lowercase hex digits of `byte`.
fn hex_pair(byte: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [
        DIGITS[usize::from(byte >> 4)],
        DIGITS[usize::from(byte & 0xf)],
    ]
}

/// Lowercase hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    hex_digits(bytes).collect()
}

fn hex_digits(bytes: &[u8]) -> impl Iterator<Item = char> + '_ {
    bytes.iter().flat_map(|b| hex_pair(*b).map(char::from))
}

/// Whether `s` is exactly `len` lowercase hex digits.
pub fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_byte_has_its_two_hex_digits() {
        for byte in 0..=u8::MAX {
            assert_eq!(hex_pair(byte), *format!("{byte:02x}").as_bytes());
        }
        assert_eq!(to_hex(&[0x00, 0x9f, 0xa0, 0xff]), "009fa0ff");
    }

    #[test]
    fn hex_ids_have_the_documented_shape() {
        let span = IdFormat::Hex.new_span_id();
        let root = IdFormat::Hex.new_root_span_id(&span);
        assert!(is_lower_hex(&span, 16), "{span}");
        assert!(is_lower_hex(&root, 32), "{root}");
        assert_ne!(root[..16], span);
    }

    #[test]
    fn legacy_root_span_id_is_the_span_id() {
        let span = IdFormat::LegacyUuid.new_span_id();
        assert!(uuid::Uuid::parse_str(&span).is_ok());
        assert_eq!(IdFormat::LegacyUuid.new_root_span_id(&span), span);
    }

    #[test]
    fn row_ids_are_uuid_v4() {
        let id = new_row_id();
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(parsed.hyphenated().to_string(), id);
    }

    #[test]
    fn ids_do_not_repeat() {
        let ids: HashSet<String> = (0..10_000).map(|_| IdFormat::Hex.new_span_id()).collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn legacy_flag_selects_uuid_unless_otel_compat() {
        let lookup = EnvLookup::from_pairs([("BRAINTRUST_LEGACY_IDS", "true")]);
        assert_eq!(IdFormat::from_lookup(&lookup), IdFormat::LegacyUuid);
        let lookup = EnvLookup::from_pairs([
            ("BRAINTRUST_LEGACY_IDS", "yes"),
            ("BRAINTRUST_OTEL_COMPAT", "1"),
        ]);
        assert_eq!(IdFormat::from_lookup(&lookup), IdFormat::Hex);
        assert_eq!(
            IdFormat::from_lookup(&EnvLookup::from_pairs::<&str, &str>([])),
            IdFormat::Hex
        );
    }
}
