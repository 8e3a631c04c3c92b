//! Record encodings. Write-path records (events, insights) are postcard (compact, serde, not
//! self-describing: their structs live in this module's callers and never skip fields); the
//! cold configuration records (tenants, tokens, sources, artifacts, receipts, keys) stay JSON;
//! transparency-log entries are RFC 8785 JSON because they are the evidence.
//!
//! A postcard row may carry a fixed 8-byte big-endian trailer for the one value only the writer
//! knows (a position assigned at commit), so the row itself is encoded before the job reaches
//! the writer ([`seal`], [`open`]).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;

/// JSON encoding of a cold record.
pub(crate) fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Corrupt {
        table: "encode",
        message: e.to_string(),
    })
}

/// Decodes a JSON record of `table`.
pub(crate) fn dec<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table,
        message: e.to_string(),
    })
}

/// Postcard encoding of a write-path row followed by the 8-byte `trailer` (big-endian).
pub(crate) fn seal<T: Serialize>(v: &T, trailer: u64) -> Result<Vec<u8>, StoreError> {
    let mut out = postcard::to_allocvec(v).map_err(|e| StoreError::Corrupt {
        table: "encode",
        message: e.to_string(),
    })?;
    out.extend_from_slice(&trailer.to_be_bytes());
    Ok(out)
}

/// Replaces the trailer of a sealed row.
pub(crate) fn set_trailer(row: &mut [u8], trailer: u64) {
    if let Some(start) = row.len().checked_sub(8) {
        row[start..].copy_from_slice(&trailer.to_be_bytes());
    }
}

/// Decodes a row written by [`seal`]: the record and its trailer.
pub(crate) fn open<T: DeserializeOwned>(
    table: &'static str,
    bytes: &[u8],
) -> Result<(T, u64), StoreError> {
    let corrupt = |message: String| StoreError::Corrupt { table, message };
    let split = bytes
        .len()
        .checked_sub(8)
        .ok_or_else(|| corrupt("row shorter than its trailer".into()))?;
    let (row, trailer) = bytes.split_at(split);
    let mut t = [0u8; 8];
    t.copy_from_slice(trailer);
    let v = postcard::from_bytes(row).map_err(|e| corrupt(e.to_string()))?;
    Ok((v, u64::from_be_bytes(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Row {
        a: Option<String>,
        b: u64,
        c: [u8; 32],
    }

    #[test]
    fn sealed_rows_round_trip_and_trailers_change_in_place() {
        let r = Row {
            a: Some("x".into()),
            b: 300,
            c: [7; 32],
        };
        let mut bytes = seal(&r, 5).unwrap();
        assert!(bytes.len() < 50, "compact: {} bytes", bytes.len());
        assert_eq!(open::<Row>("t", &bytes).unwrap(), (r, 5));
        set_trailer(&mut bytes, u64::MAX);
        assert_eq!(open::<Row>("t", &bytes).unwrap().1, u64::MAX);
        assert!(open::<Row>("t", &bytes[..4]).is_err());
    }
}
