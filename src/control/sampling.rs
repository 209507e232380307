//! Deterministic sampling: the same key gives the same decision on every
//! replica and after every restart (a fixed hash, no seed, no state).

use super::config::SamplingKey;

/// `sampling.*`, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    pub rate: f64,
    pub key: SamplingKey,
    /// Keep when `hash(key) < threshold`.
    threshold: u64,
    /// Traces kept whatever the rate (`sampling.always_keep`).
    pub always_keep: Option<super::keep::AlwaysKeep>,
}

impl Sampling {
    pub fn new(rate: f64, key: SamplingKey) -> Self {
        let threshold = if rate >= 1.0 {
            u64::MAX
        } else {
            // rate < 1, so the product is below 2^64.
            (rate * 18_446_744_073_709_551_616.0) as u64
        };
        Self {
            rate,
            key,
            threshold,
            always_keep: None,
        }
    }

    /// Whether a trace (or session) with this key is kept.
    pub fn keeps(&self, key: &[u8]) -> bool {
        self.threshold == u64::MAX || hash(key) < self.threshold
    }
}

/// FNV-1a over the bytes, then MurmurHash3's 64-bit finaliser so that ids
/// differing in one byte land far apart. Fixed forever: changing it would
/// change which traces are kept across an upgrade.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_pinned() {
        // A change here changes which traces every deployment keeps.
        assert_eq!(hash(b""), 0xefd0_1f60_ba99_2926);
        assert_eq!(hash(&[1; 16]), 0x4d74_45d6_781e_a485);
    }

    #[test]
    fn the_kept_share_is_close_to_the_rate() {
        let s = Sampling::new(0.25, SamplingKey::Trace);
        let kept = (0u32..20_000)
            .filter(|i| {
                let mut id = [0u8; 16];
                id[12..].copy_from_slice(&i.to_be_bytes());
                s.keeps(&id)
            })
            .count();
        assert!((4_500..5_500).contains(&kept), "{kept}");
    }
}
