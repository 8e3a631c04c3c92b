// tlogcheck verifies Evidentia transparency-log fixtures with code Evidentia did not write:
// golang.org/x/mod/sumdb/note (C2SP signed notes, Ed25519) and golang.org/x/mod/sumdb/tlog
// (RFC 6962 / RFC 9162 Merkle trees), as packaged by Debian (golang-golang-x-mod-dev).
//
// A fixture is a JSON object (unknown members are an error):
//
//	about                  free text, ignored
//	origin                 expected log origin (optional): the checkpoint's first line must equal it
//	verifier_key           C2SP verifier key (name+keyid+base64), as served by GET /api/keys
//	signed_note            signed checkpoint (C2SP signed note over a C2SP tlog-checkpoint)
//	tree_size              must equal the checkpoint's size
//	leaf_index             0-based index of the entry
//	entry_b64              the entry's exact bytes (standard base64)
//	leaf_hash_b64          optional: must equal SHA-256(0x00 || entry)
//	entry_sha256_hex       optional: must equal SHA-256(entry)
//	body_b64               optional, notarised webhooks: the delivery's raw bytes; the entry must
//	                       be a JSON object {"type":"webhook",...} whose sha256 (hex) and size
//	                       are SHA-256(body) and len(body)
//	inclusion_proof_b64    RFC 9162 inclusion proof of the entry in the checkpoint's tree
//	old_signed_note        optional older checkpoint of the same log, same key ...
//	consistency_proof_b64  ... and the RFC 9162 consistency proof from it to signed_note
//	expect_reject          tampered fixtures only: prefix of the error the checker must report
//
// Usage:
//
//	tlogcheck [-v] FIXTURE.json...            every fixture must verify (exit 1 otherwise)
//	tlogcheck -tampered FIXTURE.json...       every fixture must be rejected, with an error
//	                                          starting with its expect_reject (exit 1 otherwise)
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type fixture struct {
	About               string   `json:"about"`
	Origin              string   `json:"origin"`
	VerifierKey         string   `json:"verifier_key"`
	SignedNote          string   `json:"signed_note"`
	TreeSize            int64    `json:"tree_size"`
	LeafIndex           int64    `json:"leaf_index"`
	EntryB64            string   `json:"entry_b64"`
	LeafHashB64         string   `json:"leaf_hash_b64"`
	EntrySHA256Hex      string   `json:"entry_sha256_hex"`
	BodyB64             string   `json:"body_b64"`
	InclusionProofB64   []string `json:"inclusion_proof_b64"`
	OldSignedNote       string   `json:"old_signed_note"`
	ConsistencyProofB64 []string `json:"consistency_proof_b64"`
	ExpectReject        string   `json:"expect_reject"`
}

type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

// openCheckpoint verifies the note with the x/mod note package and parses the C2SP
// tlog-checkpoint body (origin, decimal size, base64 root hash, optional extension lines).
func openCheckpoint(msg string, v note.Verifier) (checkpoint, error) {
	n, err := note.Open([]byte(msg), note.VerifierList(v))
	if err != nil {
		return checkpoint{}, fmt.Errorf("note: %w", err)
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 || lines[0] == "" {
		return checkpoint{}, errors.New("checkpoint: fewer than 3 lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return checkpoint{}, fmt.Errorf("checkpoint: bad size %q", lines[1])
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		return checkpoint{}, fmt.Errorf("checkpoint: bad root %q", lines[2])
	}
	return checkpoint{lines[0], size, root}, nil
}

func hashes(what string, in []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(in))
	for i, s := range in {
		h, err := tlog.ParseHash(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", what, i, err)
		}
		out[i] = h
	}
	return out, nil
}

type result struct {
	origin      string
	size        int64
	consistency bool
	summary     string
}

func check(path string) (result, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return result{}, err
	}
	var f fixture
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return result{}, fmt.Errorf("fixture: %w", err)
	}
	v, err := note.NewVerifier(f.VerifierKey)
	if err != nil {
		return result{}, fmt.Errorf("verifier key: %w", err)
	}
	cp, err := openCheckpoint(f.SignedNote, v)
	if err != nil {
		return result{}, err
	}
	if f.Origin != "" && cp.origin != f.Origin {
		return result{}, fmt.Errorf("origin: checkpoint is for %q, expected %q", cp.origin, f.Origin)
	}
	if cp.size != f.TreeSize {
		return result{}, fmt.Errorf("tree_size: %d differs from the signed checkpoint's %d", f.TreeSize, cp.size)
	}
	entry, err := base64.StdEncoding.DecodeString(f.EntryB64)
	if err != nil || f.EntryB64 == "" {
		return result{}, fmt.Errorf("entry: missing or not base64")
	}
	leaf := tlog.RecordHash(entry) // SHA-256(0x00 || entry)
	if f.LeafHashB64 != "" && f.LeafHashB64 != leaf.String() {
		return result{}, errors.New("leaf_hash: leaf_hash_b64 is not SHA-256(0x00 || entry)")
	}
	if f.EntrySHA256Hex != "" {
		sum := sha256.Sum256(entry)
		if f.EntrySHA256Hex != hex.EncodeToString(sum[:]) {
			return result{}, errors.New("entry_sha256: entry_sha256_hex is not SHA-256(entry)")
		}
	}
	if f.BodyB64 != "" {
		if err := checkBody(entry, f.BodyB64); err != nil {
			return result{}, err
		}
	}
	proof, err := hashes("inclusion proof", f.InclusionProofB64)
	if err != nil {
		return result{}, fmt.Errorf("inclusion: %w", err)
	}
	if err := tlog.CheckRecord(proof, cp.size, cp.root, f.LeafIndex, leaf); err != nil {
		return result{}, fmt.Errorf("inclusion: leaf %d in %s@%d: %w", f.LeafIndex, cp.origin, cp.size, err)
	}
	res := result{origin: cp.origin, size: cp.size}
	res.summary = fmt.Sprintf("leaf %d in %s@%d (root %s) signed by %s+%08x", f.LeafIndex, cp.origin, cp.size, cp.root, v.Name(), v.KeyHash())
	if f.OldSignedNote != "" {
		old, err := openCheckpoint(f.OldSignedNote, v)
		if err != nil {
			return result{}, fmt.Errorf("old checkpoint: %w", err)
		}
		if old.origin != cp.origin {
			return result{}, fmt.Errorf("old checkpoint: origin %q is another log's", old.origin)
		}
		cproof, err := hashes("consistency proof", f.ConsistencyProofB64)
		if err != nil {
			return result{}, fmt.Errorf("consistency: %w", err)
		}
		if err := tlog.CheckTree(cproof, cp.size, cp.root, old.size, old.root); err != nil {
			return result{}, fmt.Errorf("consistency: %d -> %d: %w", old.size, cp.size, err)
		}
		res.consistency = true
		res.summary += fmt.Sprintf("; consistent with @%d", old.size)
	} else if len(f.ConsistencyProofB64) > 0 {
		return result{}, errors.New("consistency: proof without old_signed_note")
	}
	return res, nil
}

// checkBody checks that a notarised webhook entry names the body's SHA-256 and size.
func checkBody(entry []byte, bodyB64 string) error {
	body, err := base64.StdEncoding.DecodeString(bodyB64)
	if err != nil {
		return errors.New("body: not base64")
	}
	var e struct {
		Type   string `json:"type"`
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	}
	if err := json.Unmarshal(entry, &e); err != nil {
		return fmt.Errorf("body: entry is not JSON: %w", err)
	}
	if e.Type != "webhook" {
		return fmt.Errorf("body: entry type is %q, not webhook", e.Type)
	}
	sum := sha256.Sum256(body)
	if e.SHA256 != hex.EncodeToString(sum[:]) || e.Size != int64(len(body)) {
		return errors.New("body: SHA-256 or size of the body differs from the notarised entry")
	}
	return nil
}

func main() {
	tampered := flag.Bool("tampered", false, "every fixture must be rejected with its expect_reject")
	verbose := flag.Bool("v", false, "print one line per verified fixture")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: tlogcheck [-v | -tampered] FIXTURE.json...")
		os.Exit(2)
	}
	failed := 0
	if *tampered {
		for _, path := range flag.Args() {
			name := filepath.Base(path)
			want := ""
			if raw, err := os.ReadFile(path); err == nil {
				var f fixture
				if json.Unmarshal(raw, &f) == nil {
					want = f.ExpectReject
				}
			}
			_, err := check(path)
			switch {
			case err == nil:
				fmt.Printf("FAIL %s: tampered fixture ACCEPTED\n", name)
				failed++
			case want == "":
				fmt.Printf("FAIL %s: has no expect_reject (rejected: %v)\n", name, err)
				failed++
			case !strings.HasPrefix(err.Error(), want):
				fmt.Printf("FAIL %s: rejected for another reason: %v (expected %q...)\n", name, err, want)
				failed++
			default:
				fmt.Printf("rejected %s: %v\n", name, err)
			}
		}
		if failed > 0 {
			os.Exit(1)
		}
		return
	}
	logs := map[string]int64{}
	inclusion, consistency := 0, 0
	for _, path := range flag.Args() {
		res, err := check(path)
		if err != nil {
			fmt.Printf("FAIL %s: %v\n", filepath.Base(path), err)
			failed++
			continue
		}
		inclusion++
		if res.consistency {
			consistency++
		}
		if res.size > logs[res.origin] {
			logs[res.origin] = res.size
		}
		if *verbose {
			fmt.Printf("OK %s: %s\n", filepath.Base(path), res.summary)
		}
	}
	var names []string
	for o, n := range logs {
		names = append(names, fmt.Sprintf("%s@%d", o, n))
	}
	sort.Strings(names)
	fmt.Printf("verified %d inclusion and %d consistency proofs under signed checkpoints of %s\n",
		inclusion, consistency, strings.Join(names, ", "))
	if failed > 0 {
		fmt.Printf("FAIL: %d of %d good fixtures did not verify\n", failed, flag.NArg())
		os.Exit(1)
	}
}
