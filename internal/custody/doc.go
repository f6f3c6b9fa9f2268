// Package custody owns the chain-of-custody ledger: an append-only,
// hash-chained, signed record of every custody step (docked, copied,
// vaulted, uploaded, verified, accessed, ...) kept in one bbolt file per
// host, the Merkle tree over those records from which checkpoints and
// proofs are made, and the item projection that find and upload read.
//
// # Invariants
//
//   - A custody step is done when, and only when, Append has returned nil:
//     the record, the head and any item change are written in one synced
//     bbolt transaction (never NoSync).
//   - Records are never rewritten or deleted. Seqs run 1, 2, 3, ... without
//     gaps; each record's prev_hash is the hash of the record before it.
//   - An item exists only once a VAULTED record created it, changes only
//     through Append, and every write of it is bound to the chain: the
//     record that wrote it carries item_hash, the SHA-256 of the item bytes
//     as stored.
//   - No transaction is held across other I/O; long walks read in chunks of
//     short read transactions, and callbacks run outside any transaction.
//   - Once a ledger has a host key (a HOST_KEY record), every record from
//     that one on is signed, in the transaction that writes it, by the key
//     in force at its seq; keys change only by a KEY_ROTATED record signed
//     by the key in force.
//   - v1/meta tree is always the Merkle tree over exactly the records
//     1..head_seq, updated in the transaction that appends.
//   - Every record is authenticated by a signature that covers it: its own
//     Ed25519 signature in v1/sigs, or the signed tree head of its key in
//     v1/heads (one signature by that key over the Merkle root of records
//     1..size and a hash over their signatures), which Verify accepts only
//     if it verifies with the key the records put in force at size, and
//     its root and signature hash are the ones Verify recomputes from the
//     records and v1/sigs. Records a head does not cover, or whose head
//     does not check out, have their own signatures checked, so a record
//     or signature changed without the key fails Verify whatever derived
//     state (prev_hash chain, head, tree, stored nodes, signature hash) is
//     recomputed, and Verify names it as a check of every signature does.
//   - v1/nodes holds exactly the interior hashes of the tree over records
//     1..nodes_size, and nodes_size and sigs_hash are at the head: written
//     in the transaction that appends (and the head of the key in force
//     re-signed), built by a writable Open when absent or behind.
//
// # Layout (bbolt buckets), schema 2
//
//	v1/                                 bucket namespace (containerd style; not the schema version)
//	├── meta/
//	│   ├── version    → 8-byte big-endian uint64, 2
//	│   ├── host       → host id (UTF-8), fixed when the ledger is created
//	│   ├── created_at → RFC 3339 UTC time the ledger was created
//	│   ├── head_seq   → 8-byte big-endian seq of the last record (0: empty)
//	│   ├── head_hash  → 64 lower-hex digits, hash of the last record
//	│   │                (GenesisHash when empty); a removed tail shows here
//	│   ├── tree       → Merkle tree state over records 1..head_seq: 8-byte
//	│   │                big-endian size, then the 32-byte roots of the perfect
//	│   │                subtrees of size's binary decomposition, largest first
//	│   │                (tlog.Frontier; root in O(log n), updated on Append)
//	│   ├── nodes_size → 8-byte big-endian: v1/nodes covers records 1..this
//	│   ├── sigs_hash  → 8-byte big-endian n, then the 32-byte hash over the
//	│   │                signatures of records 1..n: h0 = 32 zero bytes,
//	│   │                h = SHA-256(h || seq (8-byte big-endian) || sig) for
//	│   │                every v1/sigs entry in seq order
//	│   └── migrated_from_v1 → 8-byte big-endian head seq when the ledger was
//	│                    migrated from schema 1 (absent if created as schema 2)
//	├── events/
//	│   └── <seq: 8-byte big-endian> → record bytes (see below)
//	├── items/
//	│   └── <item id>  → item JSON (see below)
//	├── item_events/
//	│   └── <item id>/
//	│       └── <seq: 8-byte big-endian> → empty: records naming the item
//	├── by_camera/
//	│   └── <camera serial>/
//	│       └── <recorded_at: 8-byte big-endian Unix ns><item id> → empty
//	├── by_assignee/
//	│   └── <assigned_to>/
//	│       └── <recorded_at: 8-byte big-endian Unix ns><item id> → empty
//	├── by_time/
//	│   └── <recorded_at: 8-byte big-endian Unix ns><item id> → empty
//	├── sigs/                           schema 2
//	│   └── <seq: 8-byte big-endian> → 64-byte Ed25519 signature of that record
//	├── keys/                           schema 2
//	│   └── <from seq: 8-byte big-endian> → PKIX "PUBLIC KEY" PEM of the host
//	│                 key in force from that record until the next entry
//	├── nodes/                          schema 2, from this release
//	│   └── <index: 8-byte big-endian> → 32-byte hash of a perfect subtree of
//	│                 2^level records (level >= 1), index being
//	│                 golang.org/x/mod/sumdb/tlog StoredHashIndex(level, n)
//	└── heads/                          schema 2, from this release
//	    └── <from seq: 8-byte big-endian> → signed tree head of the key in
//	                  force from that record: a C2SP checkpoint note signed
//	                  by that key, "evidenced/<host id>", size, root and the
//	                  extension line "evidenced-sigs <base64 sigs_hash at size>"
//
// item_events, by_camera, by_assignee and by_time are indexes derived from
// the records and items, maintained in the same transaction; Verify checks
// them both ways. recorded_at before 1970 is stored as 0 and after 2262 as
// 2^63-1 in index keys (the item keeps the exact time). Bucket names and
// ids are raw UTF-8 bytes.
//
// v1/sigs and v1/keys are not part of the hash chain (the record encoding
// and its chain are exactly schema 1's); keys/ is an index of what the key
// records say, and Verify checks one against the other.
//
// # Migrations
//
// Open reads v1/meta version. A writable Open migrates an older ledger to
// schema 2 in the same write transaction that checks it (all or nothing),
// and refuses a newer one (ErrSchema). A read-only Open reads a schema 1
// ledger as it is (unsigned, tree computed from the records when asked).
//
// Schema 1 to 2 (migrate1to2): records, items and indexes are untouched;
// v1/sigs and v1/keys are created empty; the Merkle tree over the existing
// records is computed and stored in meta tree; meta migrated_from_v1 records
// the head at migration; version becomes 2. A schema 1 ledger with a
// missing record or a head that disagrees with its records is not migrated
// (ErrCorrupt; open it read-only and run Verify). Records written under
// schema 1 are NOT signed at migration: the key would vouch for steps it
// never witnessed. Verify reports them as a Notice, "records 1 to N are
// unsigned (created before signing, schema v1)", not a problem. The first
// signed record after them, the HOST_KEY record, carries the hash of
// record N as its prev_hash, so its signature covers the earlier chain.
//
// # Signing
//
// Options.Signer (an Ed25519 key: signing.Key, from the host key file)
// signs every record appended. What is signed is exactly the stored record
// bytes (the value in v1/events, the same bytes whose SHA-256 is the
// record's hash): pure Ed25519 (RFC 8032) over those bytes, no prefix, no
// hashing first. So a third party with the record bytes, the 64-byte
// signature and the public key checks it with openssl alone:
//
//	bbolt get --parse-format hex --format bytes ledger.db v1 events 0000000000000011 | head -c -1 > rec
//	bbolt get --parse-format hex --format bytes ledger.db v1 sigs 0000000000000011 | head -c -1 > sig
//	openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in rec -sigfile sig
//
// (exports carry rec, sig and pub.pem as files; the key id is
// `openssl pkey -pubin -in pub.pem -outform DER | sha256sum`).
//
// The key in force at a seq comes from the records themselves:
//
//   - HOST_KEY introduces the first key. Append writes it in the same
//     transaction, just before the caller's event, the first time a Signer
//     appends to a ledger with no key (record 1 of a new ledger; the record
//     after the last unsigned one otherwise). It is signed by the key it
//     introduces, which is in force from it on. Its Details: algorithm
//     "ed25519", key_id (lower-hex SHA-256 of the PKIX DER public key),
//     public_key (standard base64 of that DER), note_key (the signed-note
//     verifier key for this host's checkpoints), ledger_created_at (v1/meta
//     created_at) and, in a migrated ledger, migrated_from_v1: Verify
//     checks v1/meta against these, so they are covered by a signature.
//   - KEY_ROTATED (RotateKey) names the next key in the same Details plus
//     previous_key_id. It is signed by the key in force; the next key is in
//     force from the record after it.
//   - Append with a Signer that is not the key in force fails
//     (ErrKeyMismatch); Append without a Signer on a ledger with a key fails
//     (ErrNoSigner). A ledger opened without a Signer stays readable and
//     verifiable. A lost key cannot be replaced by this package: a second
//     HOST_KEY record is reported by Verify as a problem.
//
// Before any cursor touches a file opened read-only (and in Verify and
// Check), the B+tree pages are walked from the file itself (page ids
// within the file, no page referenced twice, page types exact, elements
// inside their page), because bbolt trusts them and a damaged page can
// loop its cursors forever or fault; such a file gives ErrCorrupt.
//
// Verify reports "record N: signature does not verify with key <id>",
// "record N: signature missing (key <id> is in force since record M)", and
// any mismatch between v1/keys and the key records.
//
// # Merkle tree and checkpoints
//
// The records form an RFC 6962 / C2SP tlog Merkle tree (package tlog): leaf
// i (0-based) is record i+1, and its leaf data is the stored record bytes,
// so leaf hash = SHA-256(0x00 || record bytes). The tree over the first n
// records is the ledger "at size n". TreeHead reads the current size and
// root from meta tree in O(log n); Checkpoint signs it as a C2SP
// tlog-checkpoint note:
//
//	evidenced/<host id>
//	<size>
//	<base64 root>
//
//	— evidenced-<host id> <base64 signature>
//
// InclusionProof and ConsistencyProof read O(log n) hashes: the leaf hashes
// of the stored records and the interior nodes kept in v1/nodes (sumdb/tlog
// storage layout). A damaged node yields a proof that fails against the
// signed root (export refuses to write it) and Verify reports it. In a
// ledger without stored nodes they recompute from the records (O(n)).
// RootAt recomputes from the records and never trusts meta or nodes. VerifyAgainst checks that the ledger
// reproduces an earlier checkpoint (anchored off-host): a ledger that was
// truncated, restored from an older copy, or rewritten with every hash and
// signature recomputed (by someone holding the key) fails it. Anchor bundles
// a fresh checkpoint with the records and signatures since the previous one
// and the consistency proof between them, for the anchoring job to store
// under Object Lock.
//
// # Stored nodes and signed tree heads
//
// v1/nodes, v1/heads, meta nodes_size and meta sigs_hash are derived from the
// records and signatures and kept by Append in the same transaction: the
// interior hashes each record completes, the signature hash extended by each
// signature, and the signed tree head of the signing key's period (one more
// signature per transaction). A KEY_ROTATED record's transaction leaves the
// old key's final head; the new key's period gets its own. They are absent
// from a file an older release wrote; a writable Open builds the nodes and
// the signature hash (a head needs the key: the next Append writes it), and
// until then Verify checks every signature and proofs walk the records. An
// older release still reads such a file (it ignores what it does not know);
// one that appends leaves nodes_size behind the head, which Verify reports
// as a Notice and the next writable Open repairs. On an otherwise sound
// ledger, a derived value that does not match (a head that does not verify
// or does not reproduce, a node, a size) is a problem; when anything else
// is wrong it is not reported, as the altered record explains it.
//
// # Record encoding
//
// The value stored in v1/events is the record. It is the RFC 8785 (JSON
// Canonicalization Scheme) serialisation of a JSON object with exactly these
// eleven members, in this order (RFC 8785 sorts names by UTF-16 code units,
// which for these ASCII names is byte order):
//
//	actor, at, camera, details, host, item, item_hash, prev_hash, seq, sha256, type
//
// Every member is always present; an absent string is "" and absent details
// are {}. In detail:
//
//   - no whitespace between tokens and no trailing newline;
//   - seq is a JSON number written as a decimal integer, no sign, no leading
//     zeros, no fraction or exponent, 1 <= seq < 2^53; every other member
//     except details is a JSON string;
//   - at is the UTC time in Go's RFC3339Nano layout: YYYY-MM-DDTHH:MM:SS,
//     then '.' and 1 to 9 fraction digits with trailing zeros removed (no
//     '.' at all when the fraction is zero), then 'Z'; years 0001 to 9999;
//   - details is an object of string members sorted by the UTF-16 code
//     units of their names (byte order, unless a name holds characters at or
//     above U+10000 compared with ones in U+E000..U+FFFF);
//   - strings are UTF-8 with no Unicode noncharacters; only '"' and '\' (as
//     \" and \\), and U+0000..U+001F are escaped: \b \t \n \f \r for those
//     five, \u00xx with lower-case hex for the rest. Everything else,
//     including '/', U+2028, U+2029 and all non-ASCII, is written as UTF-8;
//   - type is upper-case ASCII letters, digits and '_', starting with a
//     letter; sha256, item_hash and prev_hash are "" or 64 lower-hex digits
//     (prev_hash never "").
//
// A record's hash is the lower-hex SHA-256 of exactly those bytes. The
// prev_hash of seq 1 is 64 '0' digits (GenesisHash). The hash itself is not
// stored in the record; it appears as the next record's prev_hash and, for
// the last record, as v1/meta head_hash. DecodeRecord accepts only bytes
// EncodeRecord would produce, so one event has one encoding.
//
// Example, seq 1 (one line, 274 bytes):
//
//	{"actor":"evidenced","at":"2025-03-14T06:02:11.25Z","camera":"BWC-000123","details":{"bay":"3","usb":"1-1.3"},"host":"depot-north-01","item":"","item_hash":"","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","seq":1,"sha256":"","type":"DOCKED"}
//
// hashes to 0d473a7b38150e33dd02db2bb2114d9badcf3f4407d8e724a59765d41ad74d4d,
// which the record at seq 2 must carry as prev_hash. To check a record
// without this code (bbolt's CLI appends a newline, which head strips):
//
//	bbolt get --parse-format hex --format bytes ledger.db v1 events 0000000000000001 | head -c -1 | sha256sum
//
// Records (the exact bytes, one per line) is the export form: no record
// contains a raw newline, so line n of an export is record n and
// `sed -n 1p export | head -c -1 | sha256sum` checks it.
//
// # Item encoding
//
// v1/items values are encoding/json of Item (field order as declared,
// HTML escaping off, times in UTC RFC 3339, no trailing newline). The
// item_hash of the record that last wrote an item is the lower-hex SHA-256
// of those stored bytes.
package custody
