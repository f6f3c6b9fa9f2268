// Package wipe owns what leaves a docking host's storage: the deletion of a
// recording from the camera it came from (the wipe rule), the release of
// vault copies after their grace period, and the refusal of docks the vault
// has no room for. Everything else in evidenced only ever adds.
//
// # The wipe rule
//
// A camera file is deleted only when every condition below held, each
// recorded as its own custody event, in this order, within one attempt:
//
//	WIPE_STARTED    the file on the camera is the one copied (same path, size
//	                and mtime as the item); its dev/ino are pinned here
//	WIPE_CHECKED    check=stream_vault: (a) the hash streamed while copying
//	                (the COPIED event) equals (b) a cold re-read of the vault
//	                copy now, and the item's SHA-256
//	WIPE_CHECKED    check=store: (c) the object store reports that SHA-256 for
//	                the recorded version (objstore.Verify: its own checksum,
//	                a recomputed composite, or a read-back), our sha256
//	                metadata agrees, and the version is still the key's newest
//	WIPE_CHECKED    check=lock: (d) the version is under Object Lock retention
//	                until a date in the future, or under legal hold
//	WIPE_CHECKED    check=source (verify_source_before_wipe only): (e) a fresh
//	                read of the camera file hashes as streamed
//	WIPE_UNLINKING  the intent, recorded before the unlink
//	WIPED           the file was unlinked
//
// The state of an attempt is read back from the ledger every time (Wipe
// never trusts memory), so a process killed between any two steps resumes at
// the next step on restart, and no step is repeated once recorded. The
// unlink is reachable only through every earlier event of the same attempt.
// A condition that does not hold ends the attempt with WIPE_REFUSED and the
// file stays; retry=false means a person must look (a corrupt vault copy, a
// replaced object, a changed source), retry=true that a new attempt may start
// (the file's identity moved, e.g. the camera was re-mounted). A transient
// failure (the store unreachable, the camera undocked) records nothing and
// is tried again later.
//
// The unlink is the single place in evidenced that writes to camera media.
// It opens each directory from the dock root down with O_NOFOLLOW, checks
// with fstatat (not following links) that the entry is a regular file with
// the dev, ino, size and mtime pinned at WIPE_STARTED, and removes it with
// unlinkat relative to that directory, then fsyncs the directory. Linux has
// no unlink-by-descriptor, so a window remains between the fstatat and the
// unlinkat in which the name could be swapped; the dock folder belongs to
// the dock helper and evidenced, and nothing else is expected to write it.
//
// # The vault as a buffer
//
// Release removes a vault copy once its item has been VERIFIED for at least
// vault.grace: VAULT_RELEASED is recorded first (with the item's vault_path
// cleared), then the file is removed; a crash in between leaves a file the
// next Release removes. Never before VERIFIED, and where the wipe rule is on
// for the camera, never before the camera file is WIPED (or the wipe given
// up): the wipe re-reads the vault copy.
//
// AdmitDock refuses a dock, before any copy starts, when the new footage on
// the camera plus max(vault.min_free, vault_reserve) does not fit in the
// vault's free space: REFUSED in the ledger, ErrVaultFull to the caller. The
// ingester calls it (as its ingest.Admitter) with what its own walk of the
// camera found; the wipe rule never walks a camera.
package wipe
