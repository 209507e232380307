//! Opik ids: UUIDv7 derived from OTel ids exactly as Opik's own OTLP
//! endpoint derives them, so ids are deterministic and stable across
//! retries and batches.
//!
//! Bytes 0–5: the 48-bit big-endian unix-millisecond timestamp; bytes 6–15:
//! the first 10 bytes of SHA-256 of the raw OTel id; then the version (7)
//! and RFC 4122 variant bits are set.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The UUIDv7 for an OTel trace or span id at `timestamp_ms`.
pub fn from_otel_id(otel_id: &[u8], timestamp_ms: u64) -> Uuid {
    let digest = Sha256::digest(otel_id);
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&timestamp_ms.to_be_bytes()[2..]);
    b[6..].copy_from_slice(&digest[..10]);
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    Uuid::from_bytes(b)
}

/// A user-supplied id, accepted only if it is a valid UUIDv7 (as Opik requires).
pub fn parse_v7(s: &str) -> Option<Uuid> {
    Uuid::parse_str(s.trim())
        .ok()
        .filter(|u| u.get_version_num() == 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_version_and_variant() {
        let id = from_otel_id(&[0xab; 16], 0x0193_4567_89ab);
        let b = id.as_bytes();
        assert_eq!(&b[..6], &[0x01, 0x93, 0x45, 0x67, 0x89, 0xab]);
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(b[8] & 0xc0, 0x80);
        let digest = Sha256::digest([0xab; 16]);
        assert_eq!(b[7], digest[1]);
        assert_eq!(&b[9..], &digest[3..10]);
        assert_eq!(b[6] & 0x0f, digest[0] & 0x0f);
    }

    #[test]
    fn deterministic_and_distinct() {
        assert_eq!(from_otel_id(b"12345678", 1), from_otel_id(b"12345678", 1));
        assert_ne!(from_otel_id(b"12345678", 1), from_otel_id(b"12345679", 1));
        assert_ne!(from_otel_id(b"12345678", 1), from_otel_id(b"12345678", 2));
    }

    #[test]
    fn only_v7_overrides_are_accepted() {
        assert!(parse_v7("01942b3c-7a10-7c3e-9f00-0000000000a1").is_some());
        assert!(parse_v7("550e8400-e29b-41d4-a716-446655440000").is_none());
        assert!(parse_v7("nope").is_none());
    }
}
