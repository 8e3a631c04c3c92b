//! External ids of write-path records (`evt_…`, `ins_…`) that are unguessable yet locate their
//! row without an index: 16 bytes, hex, after the prefix —
//! `seq XOR pad ‖ tail`, where `tail` is 64 CSPRNG bits (never 0) kept in the row and
//! `pad = SHA-256(id key ‖ kind ‖ tenant ‖ tail)[..8]` under the appliance's random 32-byte id
//! key. Without the key an id reveals nothing about the position; with the tenant and the key
//! it decodes to `(seq, tail)`, and the row at `(tenant, seq)` must hold the same `tail`.
//!
//! Records migrated from schema 1 keep their original random ids (tail 0 marks them) and are
//! found through the `legacy_ids` table.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// The appliance's id key (32 random bytes, generated once, kept in `meta`).
pub(crate) type IdKey = [u8; 32];

/// A fresh non-zero tail.
pub(crate) fn new_tail() -> u64 {
    loop {
        let t = rand::rng().next_u64();
        if t != 0 {
            return t;
        }
    }
}

fn pad(key: &IdKey, kind: &str, tenant: &str, tail: u64) -> u64 {
    let mut h = Sha256::new();
    h.update(key);
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(tenant.as_bytes());
    h.update([0]);
    h.update(tail.to_be_bytes());
    let d = h.finalize();
    let mut p = [0u8; 8];
    p.copy_from_slice(&d[..8]);
    u64::from_be_bytes(p)
}

/// The id of the record `(tenant, seq)` with `tail`; `kind` is `evt` or `ins`.
pub(crate) fn encode(key: &IdKey, kind: &str, tenant: &str, seq: u64, tail: u64) -> String {
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&(seq ^ pad(key, kind, tenant, tail)).to_be_bytes());
    raw[8..].copy_from_slice(&tail.to_be_bytes());
    format!("{kind}_{}", hex::encode(raw))
}

/// `(seq, tail)` of an id made by [`encode`] for `tenant`; `None` when it has not that shape.
pub(crate) fn decode(key: &IdKey, kind: &str, tenant: &str, id: &str) -> Option<(u64, u64)> {
    let hex_part = id.strip_prefix(kind)?.strip_prefix('_')?;
    let mut raw = [0u8; 16];
    hex::decode_to_slice(hex_part, &mut raw).ok()?;
    let mut s = [0u8; 8];
    let mut t = [0u8; 8];
    s.copy_from_slice(&raw[..8]);
    t.copy_from_slice(&raw[8..]);
    let tail = u64::from_be_bytes(t);
    if tail == 0 {
        return None;
    }
    Some((u64::from_be_bytes(s) ^ pad(key, kind, tenant, tail), tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_per_tenant_and_hide_the_position() {
        let key = [9u8; 32];
        let a = encode(&key, "evt", "acme", 41, 0x1234);
        assert_eq!(a.len(), 4 + 32);
        assert_eq!(decode(&key, "evt", "acme", &a), Some((41, 0x1234)));
        // Another tenant, kind or key decodes to some other position.
        assert_ne!(decode(&key, "evt", "other", &a).map(|d| d.0), Some(41));
        assert_eq!(decode(&key, "ins", "acme", &a), None);
        assert_ne!(decode(&[1; 32], "evt", "acme", &a).map(|d| d.0), Some(41));
        // Consecutive positions do not look consecutive.
        let b = encode(&key, "evt", "acme", 42, 0x1235);
        assert_ne!(a[4..20], b[4..20]);
        assert_eq!(decode(&key, "evt", "acme", "evt_zz"), None);
        assert_eq!(
            decode(&key, "evt", "acme", "evt_00000000000000000000000000000000"),
            None
        );
    }
}
