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

/// A value the writer fills into a [`JcsTemplate`] hole.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Hole<'a> {
    /// A JSON number (positions, sizes).
    U64(u64),
    /// A JSON string, escaped as RFC 8785 §3.2.2.2 does.
    Str(&'a str),
}

/// The RFC 8785 (JCS) encoding of a JSON object whose top-level members named at construction
/// are only known in the store writer (a leaf index, an id derived from a sequence number).
/// Everything else is canonicalised in the request task; the writer splices the missing
/// values into the pre-encoded pieces, which gives byte for byte what canonicalising the whole
/// record there would (JCS orders members by name only, so a member's value never moves
/// another member).
#[derive(Debug, Clone)]
pub(crate) struct JcsTemplate {
    /// `holes.len() + 1` byte runs around the holes, in output order.
    pieces: Vec<Vec<u8>>,
    /// For each gap between pieces, the index into the names given to [`JcsTemplate::new`].
    order: Vec<usize>,
}

/// Marker string put where a hole is while canonicalising; U+0001 is escaped by JCS, so the
/// encoded marker (quotes included) can occur elsewhere only as a string value equal to it,
/// which [`JcsTemplate::new`] detects.
fn hole_marker(i: usize) -> String {
    format!("{MARKER_EDGE}evidentia-jcs-hole-{i}{MARKER_EDGE}")
}

/// The character that opens and closes a marker.
const MARKER_EDGE: char = '\u{1}';

/// [`hole_marker`] as JCS writes it: quoted, with [`MARKER_EDGE`] escaped as `\u0001` and the
/// rest (ASCII letters, digits, `-`) as it is.
fn encoded_marker(i: usize) -> String {
    format!("\"{}\"", hole_marker(i).replace(MARKER_EDGE, "\\u0001"))
}

fn jcs_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table: "log_entries",
        message: e.to_string(),
    }
}

impl JcsTemplate {
    /// Canonicalises `value` (which must serialise to a JSON object) with the members `holes`
    /// left open. `Ok(None)` when a marker would be ambiguous (some other string of the record
    /// equals it): the caller then canonicalises the complete record itself.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when `value` does not serialise to a JSON object.
    pub(crate) fn new<T: Serialize>(value: &T, holes: &[&str]) -> Result<Option<Self>, StoreError> {
        let serde_json::Value::Object(map) = serde_json::to_value(value).map_err(jcs_err)? else {
            return Err(jcs_err("a JCS template needs a JSON object"));
        };
        Self::from_members(map, holes)
    }

    /// [`JcsTemplate::new`] for members already in a JSON map (no serialisation round trip).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when canonicalisation fails.
    pub(crate) fn from_members(
        mut map: serde_json::Map<String, serde_json::Value>,
        holes: &[&str],
    ) -> Result<Option<Self>, StoreError> {
        for (i, name) in holes.iter().enumerate() {
            map.insert(
                (*name).to_string(),
                serde_json::Value::String(hole_marker(i)),
            );
        }
        let encoded =
            serde_json_canonicalizer::to_vec(&serde_json::Value::Object(map)).map_err(jcs_err)?;
        let holes = holes.len();
        let mut at: Vec<(usize, usize, usize)> = Vec::with_capacity(holes);
        for i in 0..holes {
            let marker = encoded_marker(i);
            let mut found = memchr::memmem::find_iter(&encoded, marker.as_bytes());
            match (found.next(), found.next()) {
                (Some(p), None) => at.push((p, p + marker.len(), i)),
                _ => return Ok(None),
            }
        }
        at.sort_unstable();
        let mut pieces = Vec::with_capacity(holes + 1);
        let mut order = Vec::with_capacity(holes);
        let mut from = 0;
        for (start, end, i) in at {
            pieces.push(encoded[from..start].to_vec());
            order.push(i);
            from = end;
        }
        pieces.push(encoded[from..].to_vec());
        Ok(Some(Self { pieces, order }))
    }

    /// The canonical encoding with `values[i]` in the hole named `holes[i]` at construction.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when `values` does not have one value per hole.
    pub(crate) fn fill(&self, values: &[Hole<'_>]) -> Result<Vec<u8>, StoreError> {
        if values.len() != self.order.len() {
            return Err(jcs_err(
                "a JCS template was filled with the wrong number of values",
            ));
        }
        let mut out =
            Vec::with_capacity(self.pieces.iter().map(Vec::len).sum::<usize>() + 32 * values.len());
        for (piece, i) in self.pieces.iter().zip(&self.order) {
            out.extend_from_slice(piece);
            match values[*i] {
                Hole::U64(n) => out.extend_from_slice(n.to_string().as_bytes()),
                // Ids and names are printable ASCII without `"` or `\`, which JCS copies as
                // they are; anything else goes through the canonicaliser.
                Hole::Str(s)
                    if s.bytes()
                        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') =>
                {
                    out.push(b'"');
                    out.extend_from_slice(s.as_bytes());
                    out.push(b'"');
                }
                Hole::Str(s) => out.extend_from_slice(
                    &serde_json_canonicalizer::to_vec(&serde_json::Value::String(s.to_string()))
                        .map_err(jcs_err)?,
                ),
            }
        }
        if let Some(last) = self.pieces.last() {
            out.extend_from_slice(last);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod template_tests {
    use super::*;

    #[derive(Serialize, Clone)]
    struct Rec {
        index: u64,
        a: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        resource: Option<String>,
        zeta: Vec<String>,
        num: f64,
    }

    fn full(r: &Rec) -> Vec<u8> {
        serde_json_canonicalizer::to_vec(r).unwrap()
    }

    #[test]
    fn filled_template_equals_canonicalising_the_whole_record() {
        let tricky = [
            "plain",
            "quote \" backslash \\ slash /",
            "controls \u{0}\u{1}\u{8}\t\n\u{c}\r\u{1f}",
            "unicode é ✓ 😀 \u{2028}\u{2029} \u{7f}",
            "",
        ];
        for a in tricky {
            for res in tricky {
                let filled = Rec {
                    index: 1_234_567_890_123,
                    a: a.into(),
                    resource: Some(res.into()),
                    zeta: vec![a.into(), "z".into()],
                    num: 1e21,
                };
                let blank = Rec {
                    index: 0,
                    resource: None,
                    ..filled.clone()
                };
                let t = JcsTemplate::new(&blank, &["index", "resource"])
                    .unwrap()
                    .unwrap();
                let got = t.fill(&[Hole::U64(filled.index), Hole::Str(res)]).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&full(&filled))
                );
            }
        }
    }

    #[test]
    fn a_value_equal_to_the_marker_falls_back_and_wrong_arity_is_refused() {
        let r = Rec {
            index: 0,
            a: hole_marker(0),
            resource: None,
            zeta: vec![],
            num: 0.5,
        };
        assert!(JcsTemplate::new(&r, &["index"]).unwrap().is_none());
        let ok = JcsTemplate::new(&Rec { a: "x".into(), ..r }, &["index"])
            .unwrap()
            .unwrap();
        assert!(ok.fill(&[]).is_err());
        assert!(JcsTemplate::new(&"not an object", &["index"]).is_err());
    }
}
