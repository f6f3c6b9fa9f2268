// Package export owns the court export package: a self-contained directory
// that lets a third party (a court, a defence expert) check the custody of
// recordings without the dock host, without evidenced's ledger and without a
// network, using only sha256sum, openssl and the package itself. Build
// writes a package from the custody ledger; Verify (the standalone
// `evidenced verify-export`) checks one.
//
// # Layout (format "evidenced-export/v1")
//
//	MANIFEST.sha256              sha256sum -c format over every other file, sorted by path
//	VERIFY.md                    the steps a third party follows with sha256sum and openssl
//	report.html                  printable report: hashes, the chain in plain language,
//	                             host clock status, certificate block (ECT Act s15(4))
//	package.json                 what was exported, by whom, why, when; the checkpoint,
//	                             the host keys and the record range each key signs; the
//	                             version of report.html's and VERIFY.md's text ("documents",
//	                             absent before it was numbered)
//	host/<key id>.pem            host Ed25519 public keys (PKIX PEM), key id = SHA-256 of the DER
//	checkpoints/<size>.note      C2SP signed-note checkpoint (tree size, Merkle root)
//	checkpoints/<size>.txt       ... or the unsigned tree head, when the ledger is unsigned
//	checkpoints/<n>.note         the newest checkpoint anchored in the object store at or below
//	                             the export's size, as anchored (package.json "anchored")
//	checkpoints/<size>.proof     consistency proof (tlog text form) from <n> to the export's size
//	checkpoints/<n>.tsr          its RFC 3161 reply over SHA-256 of checkpoints/<n>.note
//	checkpoints/tsa-ca.pem       the TSA CA certificate(s) from custody.tsa_ca
//	records/<seq>.json           the exact canonical record bytes: sha256sum gives the record hash
//	records/<seq>.sig            raw 64-byte Ed25519 signature over records/<seq>.json (signed ledgers)
//	proofs/<seq>.json            RFC 6962 inclusion proof of the record in the checkpoint's tree
//	items/<id>/item.json         the item as the ledger stores it (its SHA-256 is the item_hash
//	                             of the last record that wrote it)
//	items/<id>/custody.json      the item's full ordered custody, each entry naming its files
//	items/<id>/custody.csv       the same as CSV
//	items/<id>/footage[.ext]     with --footage: the recording, checked against its SHA-256;
//	                             always for the items package.json "files" names: the sidecar
//	                             files and plate-crop images the facts come from
//	facts.jsonl                  when package.json "facts" names it: the plate reads and GPS
//	                             fixes linked to the recordings (Fact), each naming its source
//	                             item, SHA-256, package file, byte offset and line
//
// Records are shared: a DOCKED record that several items' custody names is
// written once under records/.
//
// A console writes another format, FleetFormat (fleet.go): several hosts'
// records, each host's proven in a checkpoint that host signed, and the
// same facts.jsonl (each fact naming its source's host) with the files
// it comes from. Verify tells them apart by fleet.json.
//
// # Invariants
//
//   - Every file but MANIFEST.sha256 is in the manifest, and nothing else is.
//   - Every derived file (custody.json, custody.csv, report.html, VERIFY.md)
//     is a pure function of package.json, the item.json files and the record
//     bytes, so Verify regenerates each and compares bytes: a report that says
//     something the records do not is named, even with a recomputed manifest.
//     report.html and VERIFY.md are compared when package.json's "documents"
//     is the version this code writes (documentsVersion); another version's
//     are not compared, and a notice says so (their wording is not evidence:
//     nothing Verify accepts depends on them).
//   - A record in the package is the ledger's stored bytes, its hash the
//     ledger's hash; every record has an inclusion proof against the one
//     checkpoint in the package; footage counts only when its SHA-256 and size
//     equal the recorded ones.
//   - Every line of facts.jsonl is what the sidecar parser yields at the
//     stated offset of the stated file of the package, whose bytes hash to
//     the source item's recorded SHA-256; a crop it names is the item of
//     the same dock and camera at the path the read gives. Verify re-parses
//     and compares every field.
//   - An anchored checkpoint in the package verifies with a host key, the
//     export's tree extends it (the ledger's consistency proof leads from its
//     root to the export's), and its time-stamp is over its exact bytes (and chains to the
//     TSA CA when one is configured); Build refuses otherwise (ErrIntegrity).
//   - Build never writes a package whose own checks fail: it refuses when a
//     record's inclusion proof (read from the ledger's stored Merkle nodes in
//     O(log n), not by walking the ledger) does not lead to the checkpoint
//     root, a record does not hash to the chain's hash, or footage does not
//     match (ErrIntegrity). Whether the rest of the ledger is sound is
//     verify's question, not the export's. Callers
//     write into a temporary place and keep it only when Build and Verify both
//     succeed.
//
// # Trust
//
// A package cannot vouch for itself: its host keys, its TSA CA and an
// unsigned checkpoint are all files a forger can write. Verify therefore
// takes the trust from outside (Trust): the host key(s) or their
// fingerprints ("SHA256:<key id>", `evidenced key --fingerprint`) obtained
// out of band, the TSA's CA, and whether unsigned records are acceptable.
// The package's first key must be trusted (or the verifier explicitly trusts
// the package's own key, and says so); every later key must be trusted or
// introduced by its KEY_ROTATED record, in the package and signed by the
// accepted key before it. Signatures and checkpoints are checked only with
// accepted keys; a record without a signature of its own counts only when
// a checkpoint signed by an accepted key holds it, or when unsigned records
// are allowed. The TSA CA inside the package is informational only.
package export
