//! RFC 9162 §2.1 Merkle hash trees over storage that keeps only complete subtrees.
//!
//! # Node addressing
//!
//! Node `(level L, index i)` is the hash of the *complete* (perfect) subtree covering the
//! leaves `[i·2^L, (i+1)·2^L)`; level 0 holds the leaf hashes. A complete subtree never changes
//! once all its leaves exist, so these nodes are write-once and are the only thing a store
//! keeps. Every hash of the RFC 9162 tree of any size `n` — root, proof element — is either such
//! a complete node or the hash of a right-edge subtree `[a, n)`, which is folded from the at most
//! `log2 n` complete subtrees that tile it ([`root`], [`inclusion_proof`],
//! [`consistency_proof`]). Therefore every past tree size stays provable, with O(log n) reads.
//!
//! # Hashing (RFC 9162 §2.1.1)
//!
//! * empty tree: `MTH({}) = SHA-256()` ([`empty_root`])
//! * leaf: `SHA-256(0x00 ‖ entry)` ([`leaf_hash`])
//! * interior node: `SHA-256(0x01 ‖ left ‖ right)` ([`node_hash`])
//!
//! # Verification
//!
//! [`verify_inclusion`] and [`verify_consistency`] implement RFC 9162 §2.1.3.2 and §2.1.4.2 step
//! by step, after up-front checks (hash lengths, sizes, exact proof length) that name the failed
//! check in [`VerifyError`]. They take hashes as byte slices so that wrongly sized input is a
//! verification failure rather than a parse step the caller may forget.

use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root (32 bytes).
pub type Hash = [u8; 32];

/// Length in bytes of a [`Hash`](type@Hash) (SHA-256 output, RFC 9162 §2.1.1).
pub const HASH_LEN: usize = 32;

/// Root of the empty tree, `MTH({}) = SHA-256("")` (RFC 9162 §2.1.1).
///
/// Returns `e3b0c442…b855`.
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// Leaf hash of one log entry, `SHA-256(0x00 ‖ entry)` (RFC 9162 §2.1.1).
///
/// `entry` is the entry's exact bytes (any length, including empty).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    h.finalize().into()
}

/// Interior node hash, `SHA-256(0x01 ‖ left ‖ right)` (RFC 9162 §2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Read access to the stored complete-subtree hashes of one log.
///
/// Implementations are typically a read (or write) transaction of the appliance database; see
/// [`MemoryNodes`] for an in-memory one. The proof functions of this module call
/// [`tree_size`](NodeReader::tree_size) at most once and [`node`](NodeReader::node) O(log n)
/// times per call.
pub trait NodeReader {
    /// Error of the underlying store (I/O, missing node, corruption, …); passed through as
    /// [`TreeError::Store`].
    type Error;

    /// Number of leaves currently in the log. Every complete-subtree node inside
    /// `[0, tree_size)` must be readable.
    ///
    /// # Errors
    /// The store's error.
    fn tree_size(&self) -> Result<u64, Self::Error>;

    /// Hash of the complete subtree at `level` (0 = leaf hashes, up to 63) covering the leaves
    /// `[index·2^level, (index+1)·2^level)`. Callers only ask for nodes that lie entirely below
    /// the tree size they were given.
    ///
    /// # Errors
    /// The store's error, including a missing node.
    fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error>;
}

impl<R: NodeReader + ?Sized> NodeReader for &R {
    type Error = R::Error;

    fn tree_size(&self) -> Result<u64, Self::Error> {
        (**self).tree_size()
    }

    fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
        (**self).node(level, index)
    }
}

/// Errors of the prover side ([`append_nodes`], [`root`], [`inclusion_proof`],
/// [`consistency_proof`]); `E` is the store's [`NodeReader::Error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError<E> {
    /// The leaf index is not below the tree size (RFC 9162 §2.1.3.1 requires `0 ≤ m < n`).
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// Requested leaf index (0-based).
        index: u64,
        /// Tree size the proof was requested for.
        size: u64,
    },
    /// A consistency proof was requested from a larger to a smaller tree.
    #[error("first tree size {size1} is larger than second tree size {size2}")]
    SizeOrder {
        /// Older tree size.
        size1: u64,
        /// Newer tree size.
        size2: u64,
    },
    /// The requested tree size is larger than the log's current size.
    #[error("tree size {requested} is beyond the log's current size {current}")]
    SizeBeyondLog {
        /// Requested tree size (leaves).
        requested: u64,
        /// The log's current size, from [`NodeReader::tree_size`].
        current: u64,
    },
    /// The log already holds `u64::MAX` leaves; no further leaf can be appended.
    #[error("the log is full (u64::MAX leaves)")]
    LogFull,
    /// The node store failed.
    #[error("node store error: {0}")]
    Store(#[source] E),
}

/// One node to store: `(level, index, hash)` of a complete subtree (see [`NodeReader::node`]).
pub type NodeWrite = (u8, u64, Hash);

/// The nodes to store when appending leaf number `size` (0-based, so the tree grows from `size`
/// to `size + 1` leaves) with leaf hash `leaf`.
///
/// Returns `(level, index, hash)` triples: the leaf itself `(0, size, leaf)` followed by every
/// complete subtree the new leaf completes, bottom-up (as many as the trailing one bits of
/// `size`). It reads exactly one left sibling per completed parent, from `reader`, which must
/// already contain the nodes returned by every earlier append; so a batch of appends in one
/// database transaction works as long as each call's nodes are written before the next call.
/// `reader.tree_size()` is not consulted (the caller owns the size counter).
///
/// # Errors
/// [`TreeError::LogFull`] if `size == u64::MAX`; [`TreeError::Store`] if a sibling can't be read.
pub fn append_nodes<R: NodeReader + ?Sized>(
    reader: &R,
    size: u64,
    leaf: Hash,
) -> Result<Vec<NodeWrite>, TreeError<R::Error>> {
    if size == u64::MAX {
        return Err(TreeError::LogFull);
    }
    let mut out = Vec::with_capacity(1 + size.trailing_ones() as usize);
    out.push((0u8, size, leaf));
    let (mut level, mut index, mut hash) = (0u8, size, leaf);
    while index & 1 == 1 {
        let left = reader.node(level, index - 1).map_err(TreeError::Store)?;
        hash = node_hash(&left, &hash);
        level += 1;
        index >>= 1;
        out.push((level, index, hash));
    }
    Ok(out)
}

/// Largest power of two strictly smaller than `n` (the RFC 9162 §2.1.1 split point `k`).
/// Requires `n ≥ 2`.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Hash of the RFC 9162 subtree over the leaves `[lo, hi)`, where `lo < hi` and `lo` is a
/// multiple of a power of two `≥ hi − lo` (true of every node of the RFC tree). Reads the
/// `popcount(hi − lo)` complete subtrees tiling the range, largest first, and folds them from
/// the right, which is exactly the RFC recursion `MTH(D[lo:hi])`.
fn range_hash<R: NodeReader + ?Sized>(reader: &R, lo: u64, hi: u64) -> Result<Hash, R::Error> {
    debug_assert!(lo < hi);
    let mut parts: Vec<Hash> = Vec::with_capacity((hi - lo).count_ones() as usize);
    let (mut start, mut rem) = (lo, hi - lo);
    while rem > 0 {
        let level = 63 - rem.leading_zeros(); // highest set bit of rem, < 64
        let width = 1u64 << level;
        parts.push(reader.node(level as u8, start >> level)?);
        start += width;
        rem -= width;
    }
    let mut acc = parts.pop().unwrap_or_else(empty_root);
    while let Some(left) = parts.pop() {
        acc = node_hash(&left, &acc);
    }
    Ok(acc)
}

/// Fails with [`TreeError::SizeBeyondLog`] unless `size ≤ reader.tree_size()`.
fn check_size<R: NodeReader + ?Sized>(reader: &R, size: u64) -> Result<(), TreeError<R::Error>> {
    let current = reader.tree_size().map_err(TreeError::Store)?;
    if size > current {
        return Err(TreeError::SizeBeyondLog {
            requested: size,
            current,
        });
    }
    Ok(())
}

/// Merkle Tree Hash `MTH(D[0:size])` of the first `size` leaves (RFC 9162 §2.1.1), for any
/// `size` up to the log's current size.
///
/// Reads `popcount(size)` ≤ 64 nodes plus the tree size. `size == 0` gives [`empty_root`].
///
/// # Errors
/// [`TreeError::SizeBeyondLog`] if `size > reader.tree_size()`; [`TreeError::Store`].
pub fn root<R: NodeReader + ?Sized>(reader: &R, size: u64) -> Result<Hash, TreeError<R::Error>> {
    check_size(reader, size)?;
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(reader, 0, size).map_err(TreeError::Store)
}

/// Inclusion proof `PATH(index, D[0:size])` (RFC 9162 §2.1.3.1) for leaf `index` in the tree of
/// `size` leaves, for any `size` up to the log's current size.
///
/// Returns the audit path ordered from the leaf's sibling up to the root's child (the order
/// [`verify_inclusion`] consumes); empty for a one-leaf tree. At most `⌈log2 size⌉` hashes,
/// computed with at most `2·⌈log2 size⌉` node reads plus one tree-size read.
///
/// # Errors
/// [`TreeError::IndexOutOfRange`] if `index ≥ size`; [`TreeError::SizeBeyondLog`];
/// [`TreeError::Store`].
pub fn inclusion_proof<R: NodeReader + ?Sized>(
    reader: &R,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    if index >= size {
        return Err(TreeError::IndexOutOfRange { index, size });
    }
    check_size(reader, size)?;
    // Walk down from the root; each step records the sibling subtree of the half holding
    // `index`. At most one sibling (the first right sibling) is a partial right-edge subtree.
    let (mut lo, mut hi) = (0u64, size);
    let mut path = Vec::with_capacity(64);
    while hi - lo > 1 {
        let mid = lo + split_point(hi - lo);
        if index < mid {
            path.push(range_hash(reader, mid, hi).map_err(TreeError::Store)?);
            hi = mid;
        } else {
            path.push(range_hash(reader, lo, mid).map_err(TreeError::Store)?);
            lo = mid;
        }
    }
    path.reverse();
    Ok(path)
}

/// Consistency proof `PROOF(size1, D[0:size2])` (RFC 9162 §2.1.4.1, via `SUBPROOF`) between the
/// trees of `size1` and `size2` leaves, for any `size1 ≤ size2 ≤` the log's current size.
///
/// Returns the proof in RFC order (the hashes nearest the leaves first). It is empty when
/// `size1 == size2` (`SUBPROOF(m, D[m], true) = {}`) and when `size1 == 0` (the empty tree is
/// a prefix of every tree; RFC 9162 defines proofs only for `0 < m < n`, and
/// [`verify_consistency`] accepts exactly the empty proof there). At most `⌈log2 size2⌉ + 1`
/// hashes, with at most `2·⌈log2 size2⌉ + 1` node reads plus one tree-size read.
///
/// # Errors
/// [`TreeError::SizeOrder`] if `size1 > size2`; [`TreeError::SizeBeyondLog`] if `size2` is
/// beyond the log; [`TreeError::Store`].
pub fn consistency_proof<R: NodeReader + ?Sized>(
    reader: &R,
    size1: u64,
    size2: u64,
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    if size1 > size2 {
        return Err(TreeError::SizeOrder { size1, size2 });
    }
    check_size(reader, size2)?;
    if size1 == 0 || size1 == size2 {
        return Ok(Vec::new());
    }
    // SUBPROOF walk: invariant lo < size1 ≤ hi, so hi − lo ≥ 2 while size1 < hi.
    let (mut lo, mut hi) = (0u64, size2);
    let mut complete = true;
    let mut siblings = Vec::with_capacity(64);
    while size1 < hi {
        let mid = lo + split_point(hi - lo);
        if size1 <= mid {
            siblings.push(range_hash(reader, mid, hi).map_err(TreeError::Store)?);
            hi = mid;
        } else {
            siblings.push(range_hash(reader, lo, mid).map_err(TreeError::Store)?);
            lo = mid;
            complete = false;
        }
    }
    let mut proof = Vec::with_capacity(siblings.len() + 1);
    if !complete {
        // SUBPROOF(m, D[m], false) = {MTH(D[m])}: the old tree's subtree [lo, size1).
        proof.push(range_hash(reader, lo, hi).map_err(TreeError::Store)?);
    }
    proof.extend(siblings.into_iter().rev());
    Ok(proof)
}

/// Number of hashes in `PATH(index, D[0:size])` (RFC 9162 §2.1.3.1); requires `index < size`.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let (mut lo, mut hi, mut len) = (0u64, size, 0usize);
    while hi - lo > 1 {
        let mid = lo + split_point(hi - lo);
        if index < mid {
            hi = mid;
        } else {
            lo = mid;
        }
        len += 1;
    }
    len
}

/// Number of hashes in `PROOF(size1, D[0:size2])` (RFC 9162 §2.1.4.1); requires
/// `0 < size1 < size2`.
fn consistency_proof_len(size1: u64, size2: u64) -> usize {
    let (mut lo, mut hi, mut len, mut complete) = (0u64, size2, 0usize, true);
    while size1 < hi {
        let mid = lo + split_point(hi - lo);
        if size1 <= mid {
            hi = mid;
        } else {
            lo = mid;
            complete = false;
        }
        len += 1;
    }
    len + usize::from(!complete)
}

/// Why a proof failed verification ([`verify_inclusion`], [`verify_consistency`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A leaf hash or root is not 32 bytes.
    #[error("{field} is {len} bytes, not 32")]
    HashLength {
        /// Which input: `"leaf hash"`, `"root"`, `"root1"` or `"root2"`.
        field: &'static str,
        /// Its actual length in bytes.
        len: usize,
    },
    /// A proof element is not 32 bytes.
    #[error("proof element {position} is {len} bytes, not 32")]
    ProofHashLength {
        /// 0-based position in the proof.
        position: usize,
        /// Its actual length in bytes.
        len: usize,
    },
    /// RFC 9162 §2.1.3.2 step 1: `leaf_index ≥ tree_size`.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// Claimed leaf index.
        index: u64,
        /// Claimed tree size.
        size: u64,
    },
    /// The first tree is larger than the second (`size1 > size2`).
    #[error("first tree size {size1} is larger than second tree size {size2}")]
    SizeOrder {
        /// Claimed older tree size.
        size1: u64,
        /// Claimed newer tree size.
        size2: u64,
    },
    /// The proof does not have exactly the number of hashes the RFC 9162 structure requires for
    /// these sizes (this includes RFC 9162 §2.1.4.2 step 1, an empty consistency proof, and a
    /// non-empty proof where an empty one is required).
    #[error("proof has {got} hashes, expected exactly {expected}")]
    ProofLength {
        /// Required number of hashes.
        expected: usize,
        /// Number supplied.
        got: usize,
    },
    /// RFC 9162 §2.1.3.2 step 4a / §2.1.4.2 step 6a: `sn` reached 0 with proof hashes left.
    #[error("proof continues past the root (sn reached 0 early)")]
    PathTooLong,
    /// RFC 9162 §2.1.3.2 step 5 / §2.1.4.2 step 7: `sn` is not 0 after the last proof hash.
    #[error("proof ends below the root (sn is not 0)")]
    PathTooShort,
    /// RFC 9162 §2.1.3.2 step 5: the computed root differs from the expected root.
    #[error("computed root does not match the expected root")]
    RootMismatch,
    /// RFC 9162 §2.1.4.2 step 7: the computed first root `fr` differs from `root1` (or, for
    /// `size1 == 0`, `root1` is not the empty-tree root).
    #[error("computed first root does not match root1")]
    Root1Mismatch,
    /// RFC 9162 §2.1.4.2 step 7: the computed second root `sr` differs from `root2` (or, for
    /// `size1 == size2`, `root1 ≠ root2`).
    #[error("computed second root does not match root2")]
    Root2Mismatch,
}

/// Interprets `bytes` as a 32-byte hash or fails with [`VerifyError::HashLength`].
fn as_hash(field: &'static str, bytes: &[u8]) -> Result<Hash, VerifyError> {
    Hash::try_from(bytes).map_err(|_| VerifyError::HashLength {
        field,
        len: bytes.len(),
    })
}

/// Interprets every proof element as a 32-byte hash.
fn as_proof<P: AsRef<[u8]>>(proof: &[P]) -> Result<Vec<Hash>, VerifyError> {
    proof
        .iter()
        .enumerate()
        .map(|(position, p)| {
            let p = p.as_ref();
            Hash::try_from(p).map_err(|_| VerifyError::ProofHashLength {
                position,
                len: p.len(),
            })
        })
        .collect()
}

/// Verifies an inclusion proof exactly per RFC 9162 §2.1.3.2: that `leaf_hash` (32 bytes, as
/// from [`leaf_hash`]) is leaf number `index` (0-based) of the tree of `size` leaves whose root
/// is `root` (32 bytes), given the audit path `proof` (32-byte hashes, leaf end first, as from
/// [`inclusion_proof`]).
///
/// Before the RFC algorithm it checks hash lengths, `index < size` (step 1) and that the proof
/// has exactly the RFC 9162 §2.1.3.1 length for `(index, size)`.
///
/// Note that, as in the RFC algorithm, a proof for the left edge of a tree may also verify
/// against the same root under a different claimed size with the same path shape; the tree
/// size is bound to the root by the signed checkpoint, not by the proof.
///
/// # Errors
/// The failed check, as a [`VerifyError`].
pub fn verify_inclusion<P: AsRef<[u8]>>(
    leaf_hash: &[u8],
    index: u64,
    size: u64,
    proof: &[P],
    root: &[u8],
) -> Result<(), VerifyError> {
    let leaf = as_hash("leaf hash", leaf_hash)?;
    let root = as_hash("root", root)?;
    let proof = as_proof(proof)?;
    // Step 1.
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(VerifyError::ProofLength {
            expected,
            got: proof.len(),
        });
    }
    // Steps 2–3.
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = leaf;
    // Step 4.
    for p in &proof {
        if snode == 0 {
            return Err(VerifyError::PathTooLong); // 4a
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r); // 4b.1
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1; // 4c
        snode >>= 1;
    }
    // Step 5.
    if snode != 0 {
        return Err(VerifyError::PathTooShort);
    }
    if r != root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

/// Verifies a consistency proof exactly per RFC 9162 §2.1.4.2: that the tree of `size1` leaves
/// with root `root1` is a prefix of the tree of `size2` leaves with root `root2`, given `proof`
/// (32-byte hashes, as from [`consistency_proof`]). All hashes are 32 bytes.
///
/// Cases outside the RFC's `0 < size1 < size2`:
/// * `size1 > size2` fails ([`VerifyError::SizeOrder`]);
/// * `size1 == size2` requires an empty proof (`SUBPROOF(m, D[m], true) = {}`) and
///   `root1 == root2`;
/// * `size1 == 0` (for `size2 > 0`) requires an empty proof and `root1` equal to the empty-tree
///   root `SHA-256()` (RFC 9162 §2.1.1); `root2` is unconstrained, every tree extends the empty
///   one.
///
/// Otherwise it checks the exact RFC 9162 §2.1.4.1 proof length (which includes step 1, an
/// empty proof fails) and runs steps 2–7.
///
/// # Errors
/// The failed check, as a [`VerifyError`].
pub fn verify_consistency<P: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    proof: &[P],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), VerifyError> {
    let root1 = as_hash("root1", root1)?;
    let root2 = as_hash("root2", root2)?;
    let proof = as_proof(proof)?;
    if size1 > size2 {
        return Err(VerifyError::SizeOrder { size1, size2 });
    }
    if size1 == size2 || size1 == 0 {
        if !proof.is_empty() {
            return Err(VerifyError::ProofLength {
                expected: 0,
                got: proof.len(),
            });
        }
        if size1 == size2 {
            return if root1 == root2 {
                Ok(())
            } else {
                Err(VerifyError::Root2Mismatch)
            };
        }
        return if root1 == empty_root() {
            Ok(())
        } else {
            Err(VerifyError::Root1Mismatch)
        };
    }
    let expected = consistency_proof_len(size1, size2);
    if proof.len() != expected {
        return Err(VerifyError::ProofLength {
            expected,
            got: proof.len(),
        });
    }
    // Step 1: an empty path fails (also implied by the length check above).
    let Some((&head, tail)) = proof.split_first() else {
        return Err(VerifyError::ProofLength { expected, got: 0 });
    };
    // Step 2: if size1 is a power of two, the path starts with root1.
    let (first, rest): (Hash, &[Hash]) = if size1.is_power_of_two() {
        (root1, &proof)
    } else {
        (head, tail)
    };
    // Step 3.
    let (mut fnode, mut snode) = (size1 - 1, size2 - 1);
    // Step 4.
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 5.
    let (mut fr, mut sr) = (first, first);
    // Step 6.
    for c in rest {
        if snode == 0 {
            return Err(VerifyError::PathTooLong); // 6a
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr); // 6b.1
            sr = node_hash(c, &sr); // 6b.2
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1; // 6c
        snode >>= 1;
    }
    // Step 7.
    if snode != 0 {
        return Err(VerifyError::PathTooShort);
    }
    if fr != root1 {
        return Err(VerifyError::Root1Mismatch);
    }
    if sr != root2 {
        return Err(VerifyError::Root2Mismatch);
    }
    Ok(())
}

/// A node that [`MemoryNodes`] does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no stored node at level {level}, index {index}")]
pub struct MissingNode {
    /// Requested level.
    pub level: u8,
    /// Requested index within the level.
    pub index: u64,
}

/// An in-memory node store (one `Vec` of complete-subtree hashes per level), for tests, tools
/// and the offline verifier. Implements [`NodeReader`]; grow it with
/// [`append_leaf_hash`](MemoryNodes::append_leaf_hash) or [`append_entry`](MemoryNodes::append_entry).
/// Memory: about `2·n` hashes (64 bytes per leaf).
#[derive(Debug, Clone, Default)]
pub struct MemoryNodes {
    levels: Vec<Vec<Hash>>,
    size: u64,
}

impl MemoryNodes {
    /// An empty tree (size 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree of the given leaf hashes, in order.
    pub fn from_leaf_hashes<I: IntoIterator<Item = Hash>>(leaves: I) -> Self {
        let mut t = Self::new();
        for l in leaves {
            t.append_leaf_hash(l);
        }
        t
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash (via [`append_nodes`]) and returns its leaf index (0-based).
    pub fn append_leaf_hash(&mut self, leaf: Hash) -> u64 {
        let index = self.size;
        // A Vec-backed tree can never hold u64::MAX leaves, and every left sibling exists
        // because earlier appends stored it, so append_nodes cannot fail here; should it, the
        // tree is left unchanged.
        if let Ok(nodes) = append_nodes(self, index, leaf) {
            for (level, _, hash) in nodes {
                let level = usize::from(level);
                if self.levels.len() <= level {
                    self.levels.resize_with(level + 1, Vec::new);
                }
                self.levels[level].push(hash);
            }
            self.size += 1;
        }
        index
    }

    /// Appends an entry (its leaf hash is [`leaf_hash`]`(entry)`) and returns its leaf index.
    pub fn append_entry(&mut self, entry: &[u8]) -> u64 {
        self.append_leaf_hash(leaf_hash(entry))
    }
}

impl NodeReader for MemoryNodes {
    type Error = MissingNode;

    fn tree_size(&self) -> Result<u64, MissingNode> {
        Ok(self.size)
    }

    fn node(&self, level: u8, index: u64) -> Result<Hash, MissingNode> {
        self.levels
            .get(usize::from(level))
            .and_then(|l| l.get(usize::try_from(index).ok()?))
            .copied()
            .ok_or(MissingNode { level, index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::Value;
    use std::cell::Cell;
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn b64(v: &Value) -> Vec<u8> {
        B64.decode(v.as_str().unwrap()).unwrap()
    }

    fn b64_list(v: &Value) -> Vec<Vec<u8>> {
        match v {
            Value::Null => Vec::new(),
            Value::Array(a) => a.iter().map(b64).collect(),
            other => panic!("unexpected proof {other}"),
        }
    }

    fn json_files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(json_files(&p));
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
        out.sort();
        out
    }

    fn load(p: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    }

    /// The eight standard leaves of merkle-roots.json and the roots for sizes 0..=8.
    fn standard() -> (Vec<Vec<u8>>, Vec<Hash>) {
        let v = load(&Path::new(VECTORS).join("merkle-roots.json"));
        let leaves: Vec<Vec<u8>> = v["leaves_hex"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| hex(l.as_str().unwrap()))
            .collect();
        let roots = (0..=8)
            .map(|n| Hash::try_from(hex(v["roots_hex"][n.to_string()].as_str().unwrap())).unwrap())
            .collect();
        (leaves, roots)
    }

    fn standard_tree() -> MemoryNodes {
        MemoryNodes::from_leaf_hashes(standard().0.iter().map(|l| leaf_hash(l)))
    }

    /// Independent reference: the RFC 9162 §2.1.1 recursive MTH over all leaf hashes.
    fn naive_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = n.next_power_of_two() / 2;
                let k = if k == n { n / 2 } else { k };
                node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn hashing_primitives() {
        assert_eq!(
            empty_root().to_vec(),
            hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        let (leaves, roots) = standard();
        assert_eq!(leaf_hash(&leaves[0]), roots[1]);
        assert_eq!(
            node_hash(&leaf_hash(&leaves[0]), &leaf_hash(&leaves[1])),
            roots[2]
        );
    }

    #[test]
    fn merkle_vectors_verdicts() {
        let base = Path::new(VECTORS).join("merkle");
        let (mut n_incl, mut n_cons) = (0, 0);
        for p in json_files(&base.join("inclusion")) {
            let v = load(&p);
            let got = verify_inclusion(
                &b64(&v["leafHash"]),
                v["leafIdx"].as_u64().unwrap(),
                v["treeSize"].as_u64().unwrap(),
                &b64_list(&v["proof"]),
                &b64(&v["root"]),
            );
            let want_err = v["wantErr"].as_bool().unwrap();
            assert_eq!(got.is_err(), want_err, "{}: {got:?}", p.display());
            n_incl += 1;
        }
        for p in json_files(&base.join("consistency")) {
            let v = load(&p);
            let got = verify_consistency(
                v["size1"].as_u64().unwrap(),
                v["size2"].as_u64().unwrap(),
                &b64_list(&v["proof"]),
                &b64(&v["root1"]),
                &b64(&v["root2"]),
            );
            let want_err = v["wantErr"].as_bool().unwrap();
            assert_eq!(got.is_err(), want_err, "{}: {got:?}", p.display());
            n_cons += 1;
        }
        assert_eq!(n_incl + n_cons, 170, "all probes read");
        assert!(n_incl > 50 && n_cons > 50);
    }

    #[test]
    fn prover_reproduces_vector_proofs_and_roots() {
        let tree = standard_tree();
        let (leaves, roots) = standard();
        for (n, want) in roots.iter().enumerate() {
            assert_eq!(&root(&tree, n as u64).unwrap(), want, "root {n}");
        }
        let base = Path::new(VECTORS).join("merkle");
        let mut happy = 0;
        for p in json_files(&base.join("inclusion")) {
            let v = load(&p);
            if v["wantErr"].as_bool().unwrap() || v["desc"] != "happy path" {
                continue;
            }
            let (i, n) = (
                v["leafIdx"].as_u64().unwrap(),
                v["treeSize"].as_u64().unwrap(),
            );
            if p.parent().unwrap().ends_with("single-entry") {
                continue; // not over the standard leaves
            }
            assert_eq!(leaf_hash(&leaves[i as usize]).to_vec(), b64(&v["leafHash"]));
            assert_eq!(root(&tree, n).unwrap().to_vec(), b64(&v["root"]));
            let proof: Vec<Vec<u8>> = inclusion_proof(&tree, i, n)
                .unwrap()
                .iter()
                .map(|h| h.to_vec())
                .collect();
            assert_eq!(proof, b64_list(&v["proof"]), "{}", p.display());
            happy += 1;
        }
        for p in json_files(&base.join("consistency")) {
            let v = load(&p);
            if v["wantErr"].as_bool().unwrap() || v["desc"] != "happy path" {
                continue;
            }
            let (m, n) = (v["size1"].as_u64().unwrap(), v["size2"].as_u64().unwrap());
            assert_eq!(root(&tree, m).unwrap().to_vec(), b64(&v["root1"]));
            assert_eq!(root(&tree, n).unwrap().to_vec(), b64(&v["root2"]));
            let proof: Vec<Vec<u8>> = consistency_proof(&tree, m, n)
                .unwrap()
                .iter()
                .map(|h| h.to_vec())
                .collect();
            assert_eq!(proof, b64_list(&v["proof"]), "{}", p.display());
            happy += 1;
        }
        assert_eq!(happy, 10);
    }

    #[test]
    fn prover_errors() {
        let tree = standard_tree();
        assert_eq!(
            inclusion_proof(&tree, 8, 8),
            Err(TreeError::IndexOutOfRange { index: 8, size: 8 })
        );
        assert_eq!(
            inclusion_proof(&tree, 0, 0),
            Err(TreeError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            inclusion_proof(&tree, 3, 9),
            Err(TreeError::SizeBeyondLog {
                requested: 9,
                current: 8
            })
        );
        assert_eq!(
            consistency_proof(&tree, 5, 4),
            Err(TreeError::SizeOrder { size1: 5, size2: 4 })
        );
        assert_eq!(
            consistency_proof(&tree, 4, u64::MAX),
            Err(TreeError::SizeBeyondLog {
                requested: u64::MAX,
                current: 8
            })
        );
        assert!(matches!(
            root(&tree, u64::MAX),
            Err(TreeError::SizeBeyondLog { .. })
        ));
        assert_eq!(consistency_proof(&tree, 0, 8), Ok(vec![]));
        assert_eq!(consistency_proof(&tree, 8, 8), Ok(vec![]));
        assert_eq!(consistency_proof(&tree, 0, 0), Ok(vec![]));
        assert_eq!(root(&MemoryNodes::new(), 0), Ok(empty_root()));
        // A store that lies about its size surfaces as a store error, not a panic.
        struct Liar;
        impl NodeReader for Liar {
            type Error = &'static str;
            fn tree_size(&self) -> Result<u64, &'static str> {
                Ok(100)
            }
            fn node(&self, _: u8, _: u64) -> Result<Hash, &'static str> {
                Err("missing")
            }
        }
        assert_eq!(
            inclusion_proof(&Liar, 5, 100),
            Err(TreeError::Store("missing"))
        );
        assert_eq!(
            append_nodes(&Liar, 3, [0; 32]),
            Err(TreeError::Store("missing"))
        );
        assert_eq!(
            append_nodes(&Liar, u64::MAX, [0; 32]),
            Err(TreeError::LogFull)
        );
    }

    #[test]
    fn verifier_edge_cases() {
        let tree = standard_tree();
        let (_, roots) = standard();
        let l0 = leaf_hash(b"");
        let none: &[Hash] = &[];
        // size1 == 0: empty proof and the empty-tree root only.
        assert_eq!(
            verify_consistency(0, 8, none, &empty_root(), &roots[8]),
            Ok(())
        );
        assert_eq!(
            verify_consistency(0, 8, none, &roots[1], &roots[8]),
            Err(VerifyError::Root1Mismatch)
        );
        assert_eq!(
            verify_consistency(0, 8, &[roots[1]], &empty_root(), &roots[8]),
            Err(VerifyError::ProofLength {
                expected: 0,
                got: 1
            })
        );
        assert_eq!(
            verify_consistency(0, 0, none, &empty_root(), &empty_root()),
            Ok(())
        );
        // size1 == size2: empty proof, equal roots.
        assert_eq!(verify_consistency(5, 5, none, &roots[5], &roots[5]), Ok(()));
        assert_eq!(
            verify_consistency(5, 5, none, &roots[5], &roots[6]),
            Err(VerifyError::Root2Mismatch)
        );
        assert_eq!(
            verify_consistency(5, 5, &[roots[5]], &roots[5], &roots[5]),
            Err(VerifyError::ProofLength {
                expected: 0,
                got: 1
            })
        );
        assert_eq!(
            verify_consistency(6, 5, none, &roots[6], &roots[5]),
            Err(VerifyError::SizeOrder { size1: 6, size2: 5 })
        );
        let p = consistency_proof(&tree, 3, 7).unwrap();
        assert_eq!(
            verify_consistency(3, 7, &p[..1], &roots[3], &roots[7]),
            Err(VerifyError::ProofLength {
                expected: p.len(),
                got: 1
            })
        );
        assert_eq!(
            verify_consistency(3, 7, none, &roots[3], &roots[7]),
            Err(VerifyError::ProofLength {
                expected: p.len(),
                got: 0
            })
        );
        assert_eq!(
            verify_consistency(3, 7, &p, &roots[3][..31], &roots[7]),
            Err(VerifyError::HashLength {
                field: "root1",
                len: 31
            })
        );
        // Inclusion.
        assert_eq!(
            verify_inclusion(&l0, 1, 1, none, &l0),
            Err(VerifyError::IndexOutOfRange { index: 1, size: 1 })
        );
        assert_eq!(
            verify_inclusion(&l0, 0, 0, none, &empty_root()),
            Err(VerifyError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(verify_inclusion(&l0, 0, 1, none, &roots[1]), Ok(()));
        let p = inclusion_proof(&tree, 6, 8).unwrap();
        let mut long = p.clone();
        long.push(roots[8]);
        assert_eq!(
            verify_inclusion(&leaf_hash(&standard().0[6]), 6, 8, &long, &roots[8]),
            Err(VerifyError::ProofLength {
                expected: 3,
                got: 4
            })
        );
        let bad: Vec<Vec<u8>> = vec![vec![0; 32], vec![0; 33], vec![0; 32]];
        assert_eq!(
            verify_inclusion(&l0, 6, 8, &bad, &roots[8]),
            Err(VerifyError::ProofHashLength {
                position: 1,
                len: 33
            })
        );
        // Extreme u64 inputs never panic.
        for &(a, b) in &[
            (u64::MAX, u64::MAX),
            (u64::MAX - 1, u64::MAX),
            (0, u64::MAX),
            (1 << 63, u64::MAX),
            ((1 << 63) - 1, 1 << 63),
            (u64::MAX, 0),
        ] {
            let proof = vec![[7u8; 32]; 64];
            for len in [0, 1, 63, 64] {
                assert!(verify_inclusion(&l0, a, b, &proof[..len], &roots[8]).is_err());
                assert!(verify_consistency(a, b, &proof[..len], &roots[8], &roots[7]).is_err());
            }
        }
    }

    /// A reader over a sparse map, to check batched appends (writes land between calls, reads
    /// see earlier writes of the same "transaction").
    #[derive(Default)]
    struct MapNodes(HashMap<(u8, u64), Hash>, u64);
    impl NodeReader for MapNodes {
        type Error = MissingNode;
        fn tree_size(&self) -> Result<u64, MissingNode> {
            Ok(self.1)
        }
        fn node(&self, level: u8, index: u64) -> Result<Hash, MissingNode> {
            self.0
                .get(&(level, index))
                .copied()
                .ok_or(MissingNode { level, index })
        }
    }

    #[test]
    fn append_nodes_batches_and_matches_memory_nodes() {
        let mut rng = StdRng::seed_from_u64(7);
        let leaves: Vec<Hash> = (0..300).map(|_| rng.random()).collect();
        let mem = MemoryNodes::from_leaf_hashes(leaves.iter().copied());
        let mut map = MapNodes::default();
        let mut size = 0u64;
        for batch in leaves.chunks(37) {
            // One "transaction": the committed size moves only after the batch.
            for (j, l) in batch.iter().enumerate() {
                let nodes = append_nodes(&map, size + j as u64, *l).unwrap();
                assert_eq!(nodes.len(), 1 + (size + j as u64).trailing_ones() as usize);
                for (lv, i, h) in nodes {
                    assert!(map.0.insert((lv, i), h).is_none(), "nodes are write-once");
                }
            }
            size += batch.len() as u64;
            map.1 = size;
            assert_eq!(
                root(&map, size).unwrap(),
                naive_root(&leaves[..size as usize])
            );
        }
        for (&(lv, i), h) in &map.0 {
            assert_eq!(mem.node(lv, i).unwrap(), *h);
            let lo = (i << lv) as usize;
            assert_eq!(naive_root(&leaves[lo..lo + (1 << lv)]), *h);
        }
    }

    /// Which side each proof hash is combined on by the RFC 9162 §2.1.3.2 loop, or `None` if
    /// the loop fails on shape alone.
    fn inclusion_shape(index: u64, size: u64, len: usize) -> Option<Vec<bool>> {
        if index >= size {
            return None;
        }
        let (mut f, mut s) = (index, size - 1);
        let mut out = Vec::new();
        for _ in 0..len {
            if s == 0 {
                return None;
            }
            let left = f & 1 == 1 || f == s;
            if left && f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
            out.push(left);
            f >>= 1;
            s >>= 1;
        }
        (s == 0).then_some(out)
    }

    /// Same for the §2.1.4.2 loop: (seeded with root1, sides).
    fn consistency_shape(m: u64, n: u64, len: usize) -> Option<(bool, Vec<bool>)> {
        if m == 0 || m >= n || len == 0 {
            return None;
        }
        let seeded = m.is_power_of_two();
        let steps = if seeded { len } else { len - 1 };
        let (mut f, mut s) = (m - 1, n - 1);
        while f & 1 == 1 {
            f >>= 1;
            s >>= 1;
        }
        let mut out = Vec::new();
        for _ in 0..steps {
            if s == 0 {
                return None;
            }
            let both = f & 1 == 1 || f == s;
            if both && f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
            out.push(both);
            f >>= 1;
            s >>= 1;
        }
        (s == 0).then_some((seeded, out))
    }

    fn flip(h: &Hash, bit: usize) -> Hash {
        let mut h = *h;
        h[bit / 8] ^= 1 << (bit % 8);
        h
    }

    #[test]
    fn random_trees_proofs_verify_and_mutations_fail() {
        const MAX: usize = 3000;
        let mut rng = StdRng::seed_from_u64(0x7106_2024);
        let leaves: Vec<Hash> = (0..MAX)
            .map(|i| leaf_hash(format!("entry {i} {}", rng.random::<u64>()).as_bytes()))
            .collect();
        let tree = MemoryNodes::from_leaf_hashes(leaves.iter().copied());
        let mut sizes: Vec<u64> = vec![1, 2, 3, 4, 5, 7, 8, 9, 1023, 1024, 1025, 2048, 3000];
        sizes.extend((0..25).map(|_| rng.random_range(1..=MAX as u64)));
        let mut roots: HashMap<u64, Hash> = HashMap::new();
        let mut naive = |n: u64| {
            *roots
                .entry(n)
                .or_insert_with(|| naive_root(&leaves[..n as usize]))
        };
        // Counts of accepted mutations: (inclusion index, inclusion size, consistency size1,
        // consistency size2), and of all mutations tried.
        let mut accepted = [0usize; 4];
        let mut checked = 0usize;
        for &n in &sizes {
            let r = naive(n);
            assert_eq!(root(&tree, n).unwrap(), r, "root {n}");
            // Inclusion.
            for _ in 0..3 {
                let i = rng.random_range(0..n);
                let leaf = leaves[i as usize];
                let p = inclusion_proof(&tree, i, n).unwrap();
                assert_eq!(
                    verify_inclusion(&leaf, i, n, &p, &r),
                    Ok(()),
                    "incl {i}/{n}"
                );
                for (k, h) in p.iter().enumerate() {
                    for _ in 0..3 {
                        let mut q = p.clone();
                        q[k] = flip(h, rng.random_range(0..256));
                        assert!(verify_inclusion(&leaf, i, n, &q, &r).is_err());
                    }
                }
                for _ in 0..4 {
                    let bad = flip(&r, rng.random_range(0..256));
                    assert!(verify_inclusion(&leaf, i, n, &p, &bad).is_err());
                    let bad = flip(&leaf, rng.random_range(0..256));
                    assert!(verify_inclusion(&bad, i, n, &p, &r).is_err());
                }
                let shape = inclusion_shape(i, n, p.len());
                for bit in 0..64 {
                    for (which, i2, n2) in [(0, i ^ (1 << bit), n), (1, i, n ^ (1 << bit))] {
                        let ok = verify_inclusion(&leaf, i2, n2, &p, &r).is_ok();
                        // The RFC loop computes the same hash iff the shape is unchanged; the
                        // size is bound by the signed checkpoint, not by the proof.
                        let same = inclusion_shape(i2, n2, p.len()) == shape;
                        assert_eq!(ok, same, "incl {i}/{n} mutated to {i2}/{n2}");
                        accepted[which] += usize::from(ok);
                        checked += 1;
                    }
                }
            }
            // Consistency.
            for _ in 0..3 {
                let m = rng.random_range(1..=n);
                let r1 = naive(m);
                let p = consistency_proof(&tree, m, n).unwrap();
                assert_eq!(
                    verify_consistency(m, n, &p, &r1, &r),
                    Ok(()),
                    "cons {m}/{n}"
                );
                for (k, h) in p.iter().enumerate() {
                    for _ in 0..3 {
                        let mut q = p.clone();
                        q[k] = flip(h, rng.random_range(0..256));
                        assert!(verify_consistency(m, n, &q, &r1, &r).is_err());
                    }
                }
                for _ in 0..4 {
                    let b1 = flip(&r1, rng.random_range(0..256));
                    let b2 = flip(&r, rng.random_range(0..256));
                    assert!(verify_consistency(m, n, &p, &b1, &r).is_err());
                    assert!(verify_consistency(m, n, &p, &r1, &b2).is_err());
                }
                let shape = consistency_shape(m, n, p.len());
                for bit in 0..64 {
                    for (which, m2, n2) in [(2, m ^ (1 << bit), n), (3, m, n ^ (1 << bit))] {
                        let ok = verify_consistency(m2, n2, &p, &r1, &r).is_ok();
                        let same = m != n && consistency_shape(m2, n2, p.len()) == shape;
                        assert_eq!(ok, same, "cons {m}/{n} mutated to {m2}/{n2}");
                        accepted[which] += usize::from(ok);
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 10_000);
        eprintln!("accepted mutations {accepted:?} of {checked}");
        // A changed leaf index never verifies.
        assert_eq!(accepted[0], 0);
    }

    /// A synthetic store of `size` leaves whose node hashes are derived from (level, index),
    /// counting reads.
    struct Synthetic {
        size: u64,
        reads: Cell<u64>,
    }
    impl NodeReader for Synthetic {
        type Error = std::convert::Infallible;
        fn tree_size(&self) -> Result<u64, Self::Error> {
            self.reads.set(self.reads.get() + 1);
            Ok(self.size)
        }
        fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
            assert!(
                (index
                    .checked_add(1)
                    .map(|e| e as u128)
                    .unwrap_or(1u128 << 64)
                    << level)
                    <= self.size as u128,
                "read outside the tree: ({level}, {index})"
            );
            self.reads.set(self.reads.get() + 1);
            let mut h = [0u8; 32];
            h[0] = level;
            h[1..9].copy_from_slice(&index.to_be_bytes());
            Ok(h)
        }
    }

    #[test]
    fn proofs_use_logarithmic_reads() {
        let n: u64 = 1_000_000;
        let store = Synthetic {
            size: n,
            reads: Cell::new(0),
        };
        // 4·⌈log2 size⌉ + 4
        let bound = |size: u64| 4 * u64::from(64 - (size - 1).leading_zeros()) + 4;
        let mut rng = StdRng::seed_from_u64(99);
        let mut worst = 0;
        for k in 0..2000 {
            let size = if k < 1000 { n } else { rng.random_range(1..=n) };
            let i = rng.random_range(0..size);
            let m = rng.random_range(0..=size);
            store.reads.set(0);
            let p = inclusion_proof(&store, i, size).unwrap();
            assert!(store.reads.get() <= bound(size.max(2)), "incl {i}/{size}");
            assert_eq!(p.len(), inclusion_proof_len(i, size));
            worst = worst.max(store.reads.get());
            store.reads.set(0);
            let p = consistency_proof(&store, m, size).unwrap();
            assert!(store.reads.get() <= bound(size.max(2)), "cons {m}/{size}");
            if m > 0 && m < size {
                assert_eq!(p.len(), consistency_proof_len(m, size));
            }
            worst = worst.max(store.reads.get());
            store.reads.set(0);
            root(&store, size).unwrap();
            assert!(store.reads.get() <= 21);
        }
        assert!(worst <= bound(n), "worst {worst}");
        // append: one read per completed parent.
        store.reads.set(0);
        let nodes = append_nodes(&store, (1 << 19) - 1, [1; 32]).unwrap();
        assert_eq!(nodes.len(), 20);
        assert_eq!(store.reads.get(), 19);
        // The largest sizes work without overflow.
        let huge = Synthetic {
            size: u64::MAX,
            reads: Cell::new(0),
        };
        for (i, n) in [(u64::MAX - 1, u64::MAX), (0, u64::MAX), (1 << 62, 1 << 63)] {
            huge.reads.set(0);
            let p = inclusion_proof(&huge, i, n).unwrap();
            assert!(huge.reads.get() <= bound(n));
            assert_eq!(p.len(), inclusion_proof_len(i, n));
            assert!(p.len() >= 63);
        }
        for (m, n) in [
            ((1 << 63) + 1, u64::MAX),
            (1, u64::MAX),
            (u64::MAX - 1, u64::MAX),
        ] {
            huge.reads.set(0);
            let p = consistency_proof(&huge, m, n).unwrap();
            assert!(huge.reads.get() <= bound(n));
            assert_eq!(p.len(), consistency_proof_len(m, n));
            assert!(p.len() >= 2);
        }
        huge.reads.set(0);
        root(&huge, u64::MAX).unwrap();
        assert_eq!(huge.reads.get(), 65);
        assert_eq!(
            append_nodes(&huge, (1 << 63) - 1, [0; 32]).unwrap().len(),
            64
        );
        assert_eq!(append_nodes(&huge, u64::MAX - 1, [0; 32]).unwrap().len(), 1);
    }
}
