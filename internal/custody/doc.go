// Package custody owns the chain-of-custody ledger: an append-only,
// hash-chained record of every custody step (docked, copied, vaulted,
// uploaded, verified, accessed, ...) kept in one bbolt file per host, and the
// item projection that find and upload read.
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
//
// # Layout (bbolt buckets)
//
//	v1/                                 schema version 1 (containerd style)
//	├── meta/
//	│   ├── version    → 8-byte big-endian uint64, 1
//	│   ├── host       → host id (UTF-8), fixed when the ledger is created
//	│   ├── created_at → RFC 3339 UTC time the ledger was created
//	│   ├── head_seq   → 8-byte big-endian seq of the last record (0: empty)
//	│   └── head_hash  → 64 lower-hex digits, hash of the last record
//	│                    (GenesisHash when empty); a removed tail shows here
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
//	└── by_time/
//	    └── <recorded_at: 8-byte big-endian Unix ns><item id> → empty
//
// item_events, by_camera, by_assignee and by_time are indexes derived from
// the records and items, maintained in the same transaction; Verify checks
// them both ways. recorded_at before 1970 is stored as 0 and after 2262 as
// 2^63-1 in index keys (the item keeps the exact time). Bucket names and
// ids are raw UTF-8 bytes.
//
// Migrations: Open reads v1/meta version and refuses any version but 1
// (ErrSchema). A later schema adds an ordered list of migrations, each with
// its test, run by Open in one write transaction.
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
