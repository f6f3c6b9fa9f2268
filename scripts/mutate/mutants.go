package main

// The curated evidence-safety mutants. Each one is the smallest edit that
// removes one guarantee the README or docs/RELIABILITY.md makes; the tests of
// the packages that own that guarantee must fail with it in place.
//
// Rules for an entry:
//   - Original is copied from the file exactly (tabs and all) and occurs in it
//     exactly once; Replacement differs from it and compiles. A mutant whose
//     Original no longer matches is stale: the run fails before testing
//     anything, and TestMutantsApply fails in the default test command, so a
//     refactor that moves the guarded code must move the mutant with it.
//   - Packages are the packages that own the guarantee (not every package
//     that would notice), so the table says which tests guard what. Run, when
//     set, narrows a package set to the tests that concern the guarantee and
//     must never be chosen to leave out a test that fails.
var mutants = []Mutant{
	// --- custody ledger: hash chain, signatures, Merkle tree --------------
	{
		ID:          "custody-prev-hash",
		File:        "internal/custody/verify.go",
		Desc:        "Verify does not compare a record's prev_hash with the hash of the record before it",
		Original:    `case v.havePrev && ev.PrevHash != v.prevHash:`,
		Replacement: `case false && v.havePrev && ev.PrevHash != v.prevHash:`,
		Packages:    []string{"./internal/custody"},
	},
	{
		ID:          "custody-signature",
		File:        "internal/custody/signed.go",
		Desc:        "Verify counts every present Ed25519 signature as good without checking it",
		Original:    `if ed25519.Verify(j.key.pub, j.rec, j.sig) {`,
		Replacement: `if len(j.sig) > 0 {`,
		Packages:    []string{"./internal/custody"},
	},
	{
		ID:          "custody-item-hash",
		File:        "internal/custody/verify.go",
		Desc:        "Verify does not compare an item with the item_hash of the last record that wrote it",
		Original:    `case h != f.lastWriteHash:`,
		Replacement: `case false && h != f.lastWriteHash:`,
		Packages:    []string{"./internal/custody"},
	},
	{
		ID:          "custody-meta-root",
		File:        "internal/custody/verify.go",
		Desc:        "Verify compares only the size of the Merkle tree kept in v1/meta, not its root",
		Original:    `case stored.Size != v.tree.Size || stored.Root() != v.tree.Root():`,
		Replacement: `case stored.Size != v.tree.Size:`,
		Packages:    []string{"./internal/custody"},
	},
	{
		ID:          "custody-head-recheck",
		File:        "internal/custody/verifyheads.go",
		Desc:        "a signed tree head that does not reproduce the records still vouches for their signatures",
		Original:    `v.acc.recheck = append(v.acc.recheck, sigRange{cv.from, seq, cv.key})`,
		Replacement: `v.acc.ok += cv.count`,
		Packages:    []string{"./internal/custody"},
	},
	{
		ID:          "custody-head-sigs",
		File:        "internal/custody/verifyheads.go",
		Desc:        "Verify does not compare a signed tree head's signature hash with the signatures",
		Original:    `case sigs != v.acc.sigs:`,
		Replacement: `case sigs != v.acc.sigs && false:`,
		Packages:    []string{"./internal/custody"},
	},
	{
		ID:          "custody-verifyagainst-root",
		File:        "internal/custody/tree.go",
		Desc:        "VerifyAgainst accepts a checkpoint of the same size with another Merkle root",
		Original:    `if root != c.Root {`,
		Replacement: `if false && root != c.Root {`,
		Packages:    []string{"./internal/custody", "./internal/anchor"},
	},

	// --- vault: durable, complete, read-only copies -----------------------
	{
		ID:          "vault-partial-fsync",
		File:        "internal/vault/store.go",
		Desc:        "Store skips the fsync of the finished partial before the rename",
		Original:    `if err := v.syncFile(f); err != nil {`,
		Replacement: `if err := error(nil); err != nil {`,
		Packages:    []string{"./internal/vault"},
	},
	{
		ID:          "vault-dir-fsync",
		File:        "internal/vault/store.go",
		Desc:        "Store skips the fsync of the shard directory after the rename",
		Original:    `if err := v.syncDir(shard); err != nil {`,
		Replacement: `if err := error(nil); err != nil {`,
		Packages:    []string{"./internal/vault"},
	},
	{
		ID:          "vault-dir-fsync-rollback",
		File:        "internal/vault/store.go",
		Desc:        "a failed fsync of the shard directory leaves the final file in place",
		Original:    `os.Remove(final)`,
		Replacement: `_ = final`,
		Packages:    []string{"./internal/vault"},
	},
	{
		ID:   "vault-record-after-publish",
		File: "internal/vault/store.go",
		Desc: "the copy is published under items/ before its COPIED is recorded, so a crash between them leaves a file no record names",
		Original: `	if err == nil && record != nil {
		err = record(st)
	}
	if err != nil {
		os.Remove(tmp)
		return Stored{}, fmt.Errorf("vault store %s: %w", id, err)
	}
	final, err := v.publish(tmp, id)`,
		Replacement: `	if err != nil {
		os.Remove(tmp)
		return Stored{}, fmt.Errorf("vault store %s: %w", id, err)
	}
	final, err := v.publish(tmp, id)
	if err == nil && record != nil {
		err = record(st)
	}`,
		Packages: []string{"./internal/vault", "./internal/ingest"},
	},
	{
		ID:          "vault-short-copy",
		File:        "internal/vault/store.go",
		Desc:        "Store keeps a copy shorter than the size the camera listed",
		Original:    `if total != size {`,
		Replacement: `if total > size {`,
		Packages:    []string{"./internal/vault"},
	},
	{
		ID:          "vault-read-only",
		File:        "internal/vault/store.go",
		Desc:        "Store leaves the vault copy writable by its owner (0640, not 0440)",
		Original:    `if err := f.Chmod(0o440); err != nil {`,
		Replacement: `if err := f.Chmod(0o640); err != nil {`,
		Packages:    []string{"./internal/vault"},
	},
	{
		ID:          "vault-readback-follows-link",
		File:        "internal/vault/readback.go",
		Desc:        "ReadBack follows a symbolic link planted in place of the vault copy",
		Original:    `f, err := os.OpenFile(v.Path(id), os.O_RDONLY|unix.O_NOFOLLOW, 0)`,
		Replacement: `f, err := os.OpenFile(v.Path(id), os.O_RDONLY, 0)`,
		Packages:    []string{"./internal/vault"},
	},

	// --- ingest: VAULTED only after a cold read-back of an unchanged file --
	{
		ID:          "ingest-readback-streamed",
		File:        "internal/ingest/ingest.go",
		Desc:        "the read-back's hash is taken as the streamed one (cold = stored.SHA256)",
		Original:    `if err == nil && (cold != stored.SHA256 || n != stored.Size) {`,
		Replacement: `if cold = stored.SHA256; err == nil && (cold != stored.SHA256 || n != stored.Size) {`,
		Packages:    []string{"./internal/ingest"},
	},
	{
		ID:          "ingest-readback-size-only",
		File:        "internal/ingest/ingest.go",
		Desc:        "only the size is compared after the read-back",
		Original:    `if err == nil && (cold != stored.SHA256 || n != stored.Size) {`,
		Replacement: `if err == nil && n != stored.Size {`,
		Packages:    []string{"./internal/ingest"},
	},
	{
		ID:          "ingest-eof-unchanged",
		File:        "internal/ingest/ingest.go",
		Desc:        "the end-of-file check that the camera file did not change during the copy is disabled",
		Original:    `if !same {`,
		Replacement: `if false && !same {`,
		Packages:    []string{"./internal/ingest"},
	},
	{
		ID:          "ingest-listed-vs-opened",
		File:        "internal/ingest/ingest.go",
		Desc:        "a file whose size or mtime moved between listing and opening is copied under the listed identity",
		Original:    `if f.Size() != e.Size || !f.ModTime().Equal(e.ModTime) {`,
		Replacement: `if false {`,
		Packages:    []string{"./internal/ingest"},
	},
	{
		ID:   "ingest-copied-before-readback",
		File: "internal/ingest/ingest.go",
		Desc: "the next file's COPIED is recorded without waiting for the previous file's read-back to be recorded",
		Original: `		if err := settle(); err != nil {
			return err
		}
		ev, err := in.ledger.Append(`,
		Replacement: `		ev, err := in.ledger.Append(`,
		Packages:    []string{"./internal/ingest"},
	},
	{
		ID:   "ingest-undock-before-readback",
		File: "internal/ingest/ingest.go",
		Desc: "the pass ends (and records SAFE_TO_UNDOCK) with the last file's read-back still in flight",
		Original: `	if err := settle(); err != nil {
		return res, err
	}

	if len(res.Failed) == 0 && unexamined == 0 {`,
		Replacement: `	if len(res.Failed) == 0 && unexamined == 0 {`,
		Packages:    []string{"./internal/ingest"},
	},

	// --- upload and the store's proof ---------------------------------------
	{
		ID:          "upload-lock-governance",
		File:        "internal/upload/upload.go",
		Desc:        "uploads are locked GOVERNANCE whatever the item's retention class says",
		Original:    `LockMode:    class.Mode, RetainUntil: until,`,
		Replacement: `LockMode:    objstore.LockGovernance, RetainUntil: until,`,
		Packages:    []string{"./internal/upload"},
	},
	{
		ID:          "upload-verify-lock-mode",
		File:        "internal/upload/upload.go",
		Desc:        "verification accepts an object whose lock mode is weaker than the one its class requires",
		Original:    `if weaker := objstore.CheckExtension(class.Mode, time.Time{}, info.LockMode, info.RetainUntil); weaker != nil {`,
		Replacement: `if weaker := error(nil); weaker != nil {`,
		Packages:    []string{"./internal/upload"},
	},
	{
		ID:          "upload-multipart-lock-not-reapplied",
		File:        "internal/upload/settle.go",
		Desc:        "a lock a store dropped from a multipart upload (Ceph RGW) is not put back on the version",
		Original:    `	if lockMissing(info, req) {`,
		Replacement: `	if false {`,
		Packages:    []string{"./internal/upload"},
		Run:         "TestMultipartLockReapplied",
	},
	{
		ID:          "memstore-no-sha256-check",
		File:        "internal/objstore/memstore/memstore.go",
		Desc:        "the in-memory stand-in stores a body that does not hash to the SHA-256 it was sent with",
		Original:    `	if digest.Bytes(data) != req.SHA256 {`,
		Replacement: `	if false {`,
		Packages:    []string{"./internal/objstore/memstore"},
	},
	{
		ID:          "s3store-checksum-not-sent",
		File:        "internal/objstore/s3store/s3store.go",
		Desc:        "a single PUT does not send the recorded SHA-256 for the server to check the body against",
		Original:    `ChecksumSHA256:    aws.String(req.SHA256.Base64()),`,
		Replacement: `ChecksumSHA256:    nil,`,
		Packages:    []string{"./internal/objstore/s3store"},
	},
	{
		ID:          "objstore-verify-size",
		File:        "internal/objstore/verify.go",
		Desc:        "Verify does not compare the stored object's size with the recorded size",
		Original:    `if info.Size != size {`,
		Replacement: `if false {`,
		Packages:    []string{"./internal/objstore"},
	},
	{
		ID:          "objstore-verify-checksum",
		File:        "internal/objstore/verify.go",
		Desc:        "Verify accepts any full-object checksum the store reports",
		Original:    `if sum != want.Base64() {`,
		Replacement: `if false {`,
		Packages:    []string{"./internal/objstore"},
	},
	{
		ID:          "objstore-readback-hash",
		File:        "internal/objstore/verify.go",
		Desc:        "Verify's read-back compares the byte count only, not the SHA-256",
		Original:    `if n != size || got != want {`,
		Replacement: `if n != size {`,
		Packages:    []string{"./internal/objstore"},
	},

	// --- wipe: the camera file goes only when every check held --------------
	{
		ID:   "wipe-store-verify-ignored",
		File: "internal/wipe/wipe.go",
		Desc: "check (c) passes although the store's verification failed",
		Original: `method, err := objstore.Verify(ctx, r.w.store, it.ObjectKey, it.VersionID, it.Size, r.sum, local)
	if err != nil {`,
		Replacement: `method, err := objstore.Verify(ctx, r.w.store, it.ObjectKey, it.VersionID, it.Size, r.sum, local)
	if false && err != nil {`,
		Packages: []string{"./internal/wipe"},
	},
	{
		ID:          "wipe-newest-version",
		File:        "internal/wipe/wipe.go",
		Desc:        "check (c) does not require the recorded version to be the key's newest",
		Original:    `if latest.VersionID != it.VersionID {`,
		Replacement: `if false {`,
		Packages:    []string{"./internal/wipe"},
	},
	{
		ID:          "wipe-lock-expired",
		File:        "internal/wipe/wipe.go",
		Desc:        "check (d) counts a lock whose retain-until date has passed as protection",
		Original:    `locked := (info.LockMode == objstore.LockGovernance || info.LockMode == objstore.LockCompliance) && info.RetainUntil.After(now)`,
		Replacement: `locked := (info.LockMode == objstore.LockGovernance || info.LockMode == objstore.LockCompliance) && now.After(time.Time{})`,
		Packages:    []string{"./internal/wipe"},
	},
	{
		ID:          "wipe-vault-readback-hash",
		File:        "internal/wipe/wipe.go",
		Desc:        "check (a)=(b) compares the vault copy's length, not its hash",
		Original:    `if cold != r.sum || n != it.Size {`,
		Replacement: `if n != it.Size {`,
		Packages:    []string{"./internal/wipe"},
	},
	{
		ID:          "wipe-unlink-identity",
		File:        "internal/wipe/source.go",
		Desc:        "the unlink does not re-check that the file is the one pinned at WIPE_STARTED",
		Original:    `if got := identityOf(&st); got != want {`,
		Replacement: `if got := identityOf(&st); false && got != want {`,
		Packages:    []string{"./internal/wipe"},
	},

	// --- camfs: the camera is read, never followed out of ------------------
	{
		ID:          "camfs-open-nofollow",
		File:        "internal/camfs/open.go",
		Desc:        "O_NOFOLLOW dropped from the open of the camera file itself",
		Original:    `unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY`,
		Replacement: `unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY`,
		Packages:    []string{"./internal/camfs"},
	},
	{
		ID:          "camfs-dir-nofollow",
		File:        "internal/camfs/open.go",
		Desc:        "O_NOFOLLOW dropped from the opens of the directories on the way to a camera file",
		Original:    `next, err := openat(dirfd, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)`,
		Replacement: `next, err := openat(dirfd, p, unix.O_RDONLY|unix.O_DIRECTORY)`,
		Packages:    []string{"./internal/camfs"},
	},
	{
		ID:          "camfs-stat-follows-link",
		File:        "internal/camfs/sys.go",
		Desc:        "the walk and open stat a symbolic link's target instead of refusing the link",
		Original:    `err := unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW)`,
		Replacement: `err := unix.Fstatat(dirfd, name, st, 0)`,
		Packages:    []string{"./internal/camfs"},
	},
	{
		ID:          "camfs-unchanged-size-only",
		File:        "internal/camfs/open.go",
		Desc:        "Unchanged compares the size only, so a rewrite in place with a new mtime counts as unchanged",
		Original:    `return st.Size == f.size && st.Mtim == f.mtime, nil`,
		Replacement: `return st.Size == f.size, nil`,
		Packages:    []string{"./internal/camfs"},
	},

	// --- anchor: the ledger on record off the host ---------------------------
	{
		ID:          "anchor-governance",
		File:        "internal/anchor/anchor.go",
		Desc:        "custody objects are anchored under GOVERNANCE (removable with a bypass), not COMPLIANCE",
		Original:    `ContentType: ctype, LockMode: objstore.LockCompliance, RetainUntil: w.until,`,
		Replacement: `ContentType: ctype, LockMode: objstore.LockGovernance, RetainUntil: w.until,`,
		Packages:    []string{"./internal/anchor"},
	},
	{
		ID:          "anchor-consistency-unchecked",
		File:        "internal/anchor/anchor.go",
		Desc:        "Anchor writes a checkpoint without proving it extends the last anchored one",
		Original:    `if err := tlog.VerifyConsistency(last.Size, c.Size, last.Root, c.Root, a.Consistency.Hashes); err != nil {`,
		Replacement: `if err := tlog.VerifyConsistency(last.Size, c.Size, last.Root, c.Root, a.Consistency.Hashes); false && err != nil {`,
		Packages:    []string{"./internal/anchor"},
	},
	{
		ID:          "anchor-check-records-root",
		File:        "internal/anchor/check.go",
		Desc:        "Check does not compare the anchored records' Merkle root with their checkpoint",
		Original:    `if root := f.Root(); root != g.c.Root {`,
		Replacement: `if root := f.Root(); false && root != g.c.Root {`,
		Packages:    []string{"./internal/anchor"},
	},
	{
		ID:          "follow-pinned-key",
		File:        "internal/anchor/follow.go",
		Desc:        "the fleet console trusts a host's first HOST_KEY whatever key it names, not only the configured one",
		Original:    `case inForce == nil && !pub.Equal(pinned):`,
		Replacement: `case inForce == nil && false:`,
		Packages:    []string{"./internal/catalog"},
	},
	{
		ID:          "follow-fork",
		File:        "internal/anchor/follow.go",
		Desc:        "the fleet console follows one of two checkpointed continuations after the same checkpoint (a fork) instead of flagging it",
		Original:    `case len(tos) > 1:`,
		Replacement: `case false:`,
		Packages:    []string{"./internal/catalog"},
	},
	{
		ID:          "catalog-withheld-served",
		File:        "internal/catalog/catalog.go",
		Desc:        "the fleet console's find serves the items of a host its audit withheld",
		Original:    `if held[string(host)] {`,
		Replacement: `if held[string(host)] && host == nil {`,
		Packages:    []string{"./internal/catalog"},
	},
	{
		ID:          "ledger-group-returns-before-commit",
		File:        "internal/custody/group.go",
		Desc:        "a caller of AppendGrouped queued behind a commit returns before its access record is committed (data could be released before its access is on disk)",
		Original:    "\t\t<-c.done\n\t\tif !c.lead {",
		Replacement: "\t\tif !c.lead {",
		Packages:    []string{"./internal/custody"},
		Run:         "TestAppendGroupedSharesCommits",
	},
	{
		ID:          "catalog-withheld-precheck",
		File:        "internal/catalog/catalog.go",
		Desc:        "the fleet console's quick check for withheld hosts misses the key, so a host its audit withheld is served",
		Original:    "if !bytes.Contains(v, []byte(`\"withheld\"`)) {",
		Replacement: "if !bytes.Contains(v, []byte(`\"withheld\":false`)) {",
		Packages:    []string{"./internal/catalog"},
		Run:         "TestAuditWithholdsAHostTamperedBehindTheTail",
	},
	{
		ID:          "catalog-page-before-filter",
		File:        "internal/catalog/catalog.go",
		Desc:        "a console search by officer or camera with a state filter counts (and pages) the index keys without applying the state filter: the total shown and recorded in the access log is wrong",
		Original:    `keyOnly := len(f.States) == 0 && other == ""`,
		Replacement: `keyOnly := other == ""`,
		Packages:    []string{"./internal/catalog"},
		Run:         "TestFindPagesAreTheWholeResultCut",
	},
	{
		ID:          "anchor-check-signature",
		File:        "internal/anchor/check.go",
		Desc:        "Check does not verify the anchored Ed25519 signatures",
		Original:    `case !ed25519.Verify(k.pub, rec, sig):`,
		Replacement: `case false:`,
		Packages:    []string{"./internal/anchor"},
	},

	// --- fleet console: metrics, verify, holds on every stored version ----------
	{
		ID:          "fleet-metric-broken",
		File:        "internal/service/fleetmetrics.go",
		Desc:        "a console's metrics show a dock host whose anchored history broke as sound, so the broken-host alert never fires",
		Original:    "states[\"broken\"]++\n\t\t\tbroken = 1",
		Replacement: "states[\"broken\"]++\n\t\t\tbroken = 0",
		Packages:    []string{"./internal/service"},
		Run:         "TestConsoleServesTheFleet",
	},
	{
		ID:          "fleet-metric-scrub-failures",
		File:        "internal/service/metrics.go",
		Desc:        "a console's metrics do not count the scrub's SCRUB_FAILED records, so a changed or vanished object raises no alert",
		Original:    "case ScrubFailed:\n\t\t\tm.scrubFailed++",
		Replacement: "case ScrubFailed:",
		Packages:    []string{"./internal/service"},
		Run:         "TestConsoleServesTheFleet",
	},
	{
		ID:          "fleet-verify-host",
		File:        "internal/service/fleetverify.go",
		Desc:        "verify at a console passes with a dock host whose anchored history broke or was withheld",
		Original:    `case h.Broken || h.Withheld:`,
		Replacement: `case false:`,
		Packages:    []string{"./internal/service"},
		Run:         "TestConsoleServesTheFleet",
	},
	{
		ID:          "fleet-verify-object",
		File:        "internal/service/fleetverify.go",
		Desc:        "verify --remote at a console passes a stored recording that no longer holds the bytes its dock host recorded",
		Original:    `case !r.OK:`,
		Replacement: `case false:`,
		Packages:    []string{"./internal/service"},
		Run:         "TestConsoleServesTheFleet",
	},
	{
		ID:          "fleet-verify-audit",
		File:        "internal/service/fleetverify.go",
		Desc:        "verify --remote at a console does not audit the hosts' anchored histories, so a checkpoint altered behind what was followed passes",
		Original:    `if remote && rep.StoreUnchecked == "" {`,
		Replacement: `if false {`,
		Packages:    []string{"./cmd/evidenced"},
		Run:         "TestConsoleFleetE2E$",
	},
	{
		ID:          "fleet-hold-first-copy",
		File:        "internal/service/retention.go",
		Desc:        "a hold at the console holds only the first host's version of a recording two hosts stored, leaving the other deletable",
		Original:    `for _, c := range append([]custody.Item{it}, copies...) {`,
		Replacement: `for _, c := range []custody.Item{it} {`,
		Packages:    []string{"./internal/service"},
		Run:         "TestConsoleHoldsEveryCopy",
	},
	{
		ID:          "fleet-classify-first-copy",
		File:        "internal/service/retention.go",
		Desc:        "a class raised at the console extends only the first host's version of a recording two hosts stored",
		Original:    "for _, v := range versions {\n\t\tif err := r.PutRetention(",
		Replacement: "for _, v := range versions[:1] {\n\t\tif err := r.PutRetention(",
		Packages:    []string{"./internal/service"},
		Run:         "TestConsoleHoldsEveryCopy",
	},

	// --- the console's inventory, as a dock host takes it ----------------------
	{
		ID:          "inventory-signature",
		File:        "internal/service/inventory.go",
		Desc:        "a dock host takes the console's inventory document without checking its signature against the pinned console key",
		Original:    "n, err := note.Open(data, note.VerifierList(v))\n\tif err != nil {\n\t\treturn doc, fmt.Errorf(\"signature: %w\", err)\n\t}\n\ttext := n.Text",
		Replacement: "text := string(data[:bytes.LastIndex(data, []byte(\"\\n\\n\"))+1])",
		Packages:    []string{"./internal/service", "./cmd/evidenced"},
		Run:         "TestInventory",
	},
	{
		ID:          "inventory-rollback",
		File:        "internal/service/inventory.go",
		Desc:        "a dock host takes an older signed inventory put back in the store (a rollback of a reassignment)",
		Original:    `if err == nil && doc.Version <= f.floor {`,
		Replacement: `if err == nil && false && doc.Version <= f.floor {`,
		Packages:    []string{"./internal/service", "./cmd/evidenced"},
		Run:         "TestInventory",
	},

	// --- export: the court package and verify-export ------------------------
	{
		ID:          "export-manifest-hash",
		File:        "internal/export/verify.go",
		Desc:        "verify-export does not compare a file's SHA-256 with MANIFEST.sha256",
		Original:    `case v.sums[name] != sum:`,
		Replacement: `case false:`,
		Packages:    []string{"./internal/export"},
	},
	{
		ID:          "export-footage-hash",
		File:        "internal/export/verify.go",
		Desc:        "verify-export checks the footage's size only, not its SHA-256",
		Original:    `case v.sums[f] != it.SHA256 || v.sizes[f] != it.Size:`,
		Replacement: `case v.sizes[f] != it.Size:`,
		Packages:    []string{"./internal/export"},
	},
	{
		ID:          "export-signature",
		File:        "internal/export/verify.go",
		Desc:        "verify-export checks a record signature's length, not the signature",
		Original:    `if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, v.recs[seq], sig) {`,
		Replacement: `if len(sig) != ed25519.SignatureSize || (false && !ed25519.Verify(pub, v.recs[seq], sig)) {`,
		Packages:    []string{"./internal/export"},
	},
	{
		ID:          "export-prev-hash",
		File:        "internal/export/verify.go",
		Desc:        "verify-export does not follow the prev_hash chain between records",
		Original:    `case ok && ev.PrevHash != prev.Hash:`,
		Replacement: `case false && ok && ev.PrevHash != prev.Hash:`,
		Packages:    []string{"./internal/export"},
	},
	{
		ID:          "export-fact-reparse",
		File:        "internal/export/facts.go",
		Desc:        "verify-export does not compare a listed plate read or GPS fix with what its source file says at that offset",
		Original:    `if !bytes.Equal(got, line) {`,
		Replacement: `if false && !bytes.Equal(got, line) {`,
		Packages:    []string{"./internal/export"},
	},
	{
		ID:          "export-fact-files",
		File:        "internal/export/verify.go",
		Desc:        "verify-export does not check the sidecar files and crop images a package carries for its facts against their recorded SHA-256",
		Original:    `if carried := slices.Contains(v.info.Files, id); v.info.Footage || carried {`,
		Replacement: `if carried := slices.Contains(v.info.Files, id); v.info.Footage {`,
		Packages:    []string{"./internal/export"},
	},

	// --- config: strict decoding and the lock mode ---------------------------
	{
		ID:          "config-unknown-key",
		File:        "internal/config/decode.go",
		Desc:        "an unknown (e.g. misspelt) key is not reported by the strict check",
		Original:    `k.fail(key, p, "%s", unknownKey(key.Value, fields))`,
		Replacement: `_ = unknownKey`,
		Packages:    []string{"./internal/config"},
	},
	{
		ID:          "config-lock-mode",
		File:        "internal/config/validate.go",
		Desc:        "a retention class with a lock mode other than GOVERNANCE or COMPLIANCE is accepted",
		Original:    `if cl.Mode != ModeGovernance && cl.Mode != ModeCompliance {`,
		Replacement: `if false {`,
		Packages:    []string{"./internal/config"},
	},
	// --- the witness of the signed head outside state_dir ----------------------
	{
		ID:          "witness-not-compared",
		File:        "internal/service/witness.go",
		Desc:        "verify and the start never compare the ledger with the newest witnessed head, so a trimmed unanchored tail passes",
		Original:    `if _, err := s.ledger.VerifyAgainst(ctx, []byte(h.Note), v); err != nil {`,
		Replacement: `if _, err := s.ledger.VerifyAgainst(ctx, []byte(h.Note), v); false && err != nil {`,
		Packages:    []string{"./internal/service"},
		Run:         "TestWitness",
	},
	{
		ID:          "witness-unsigned-trusted",
		File:        "internal/witness/witness.go",
		Desc:        "a head planted in the witness counts without the host key's signature",
		Original:    `if err != nil || xc.Size != x.Size {`,
		Replacement: `if err != nil {` + "\n\t\t\txc = tlog.Checkpoint{Size: x.Size}\n\t\t}\n\t\tif xc.Size != x.Size {",
		Packages:    []string{"./internal/service"},
		Run:         "TestWitness",
	},
	{
		ID:          "anchor-start-unsigned-trusted",
		File:        "internal/service/service.go",
		Desc:        "the start check measures the ledger against a checkpoint planted in the store without the host key",
		Original:    `ao := anchor.Options{Logger: log, Verifier: key.NoteVerifier()}`,
		Replacement: `ao := anchor.Options{Logger: log}`,
		Packages:    []string{"./cmd/evidenced"},
		Run:         "TestPlantedCheckpointDoesNotStopStart",
	},

	// --- rights on the control socket -------------------------------------------
	{
		ID:          "control-group-always",
		File:        "internal/control/rights.go",
		Desc:        "the group test always passes: whoever can connect to the socket may ingest, hold and classify",
		Original:    `if slices.Contains(have, gr.Gid) {`,
		Replacement: `if true || slices.Contains(have, gr.Gid) {`,
		Packages:    []string{"./internal/control", "./cmd/evidenced"},
		Run:         "TestAuthorizeByGroup|TestControlRightsByGroup",
	},
	{
		ID:          "control-ingest-read-right",
		File:        "cmd/evidenced/cli.go",
		Desc:        "ingest through the daemon needs only read rights",
		Original:    `"ingest": control.Write,`,
		Replacement: `"ingest": control.Read,`,
		Packages:    []string{"./cmd/evidenced"},
		Run:         "TestControlRightsByGroup",
	},

	// --- supervision and reload ------------------------------------------------
	{
		ID:          "service-watchdog-stuck",
		File:        "internal/service/notify.go",
		Desc:        "the watchdog is pinged even when the heartbeat's ledger read hangs, so systemd never restarts a wedged daemon",
		Original:    `line, err := beat(ctx)`,
		Replacement: "line, err := \"\", error(nil)\n\t\tgo beat(ctx)",
		Packages:    []string{"./internal/service"},
		Run:         "TestStuckHeartbeatStopsWatchdog",
	},
	{
		ID:          "config-reload-inventory",
		File:        "internal/config/config.go",
		Desc:        "a camera added to the inventory by a reload is not recognised until a restart",
		Original:    `return cameraIn(c.current().Cameras, serial)`,
		Replacement: `return cameraIn(c.Cameras, serial)`,
		Packages:    []string{"./internal/config"},
		Run:         "TestReload",
	},
	{
		ID:          "config-reload-wipe",
		File:        "internal/config/config.go",
		Desc:        "the wipe rule follows a reloaded inventory, so a camera added by a reload is wiped before a restart",
		Original:    `cam, ok := cameraIn(c.Cameras, serial)`,
		Replacement: `cam, ok := c.Camera(serial)`,
		Packages:    []string{"./internal/config"},
		Run:         "TestReload",
	},
	// --- sidecar facts ----------------------------------------------------------
	{
		ID:          "facts-held-hash",
		File:        "internal/facts/step.go",
		Desc:        "facts are indexed from a held copy that does not hash to the item's recorded SHA-256",
		Original:    `if got := digest.FromHash(h); got != want {`,
		Replacement: `if got := digest.FromHash(h); false && got != want {`,
		Packages:    []string{"./internal/facts"},
	},
	{
		// The console parses through the same step: this is the check that
		// stands between an object altered in the store and the console's
		// answers, guarded end to end through the built binary.
		ID:          "console-facts-held-hash",
		File:        "internal/facts/step.go",
		Desc:        "at the console, facts are indexed from a store object that does not hash to the SHA-256 the dock host recorded",
		Original:    `if got := digest.FromHash(h); got != want {`,
		Replacement: `if got := digest.FromHash(h); false && got != want {`,
		Packages:    []string{"./cmd/evidenced"},
		Run:         "TestConsoleSidecarsE2E",
	},
	{
		ID:          "facts-link-span",
		File:        "internal/facts/query.go",
		Desc:        "a plate read or GPS fix is linked to a recording that ended before it",
		Original:    `if !t.Before(s.start) && !t.After(s.end) {`,
		Replacement: `if !t.Before(s.start) {`,
		Packages:    []string{"./internal/facts"},
	},
	// --- the dock page: what an officer reads before undocking ---------------
	{
		ID:          "dock-percent-before-safe",
		File:        "internal/web/dock/view.go",
		Desc:        "the dock page reads 100 % while the last file is still being verified, before the dock says safe to undock",
		Original:    `return min(99, int(math.Floor(b.Percent())))`,
		Replacement: `return int(math.Floor(b.Percent()))`,
		Packages:    []string{"./internal/web/dock"},
	},
	{
		ID:          "dock-assigned-to-public",
		File:        "internal/web/dock/view.go",
		Desc:        "a public dock screen (show_assigned_to: false) still shows to whom each camera is issued",
		Original:    `if known && opt.ShowAssignedTo {`,
		Replacement: `if known {`,
		Packages:    []string{"./internal/web/dock"},
	},
	{
		ID:          "bays-notify-blocks",
		File:        "internal/service/bays_notify.go",
		Desc:        "a dock page client that stops reading holds up ingest's progress reports",
		Original:    `default: // already told; it reads the latest state anyway`,
		Replacement: `case <-make(chan struct{}): // never: the send waits`,
		Packages:    []string{"./internal/service"},
	},
	// --- web console: sessions, CSRF, roles, playback --------------------------
	// Each is killed by the console's unit tests and by the real-browser
	// test on the built binary (Chromium, the OIDC provider, versitygw).
	{
		ID:          "web-console-role-get-only",
		File:        "internal/web/console/routes.go",
		Desc:        "a role a route does not admit is refused only for GET: an investigator posts a custodian's hold",
		Original:    `if s.roles&rt.allow == 0 {`,
		Replacement: `if s.roles&rt.allow == 0 && r.Method == http.MethodGet {`,
		Packages:    []string{"./internal/web/console", "./cmd/evidenced"},
		Run:         "TestRouteRoleMatrix|TestConsoleWebInBrowserE2E",
	},
	{
		ID:          "web-console-csrf-empty",
		File:        "internal/web/console/auth.go",
		Desc:        "a state-changing request without a CSRF token is accepted",
		Original:    `return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.csrf)) == 1`,
		Replacement: `return tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.csrf)) == 1`,
		Packages:    []string{"./internal/web/console", "./cmd/evidenced"},
		Run:         "TestCSRFRequired|TestConsoleWebInBrowserE2E",
	},
	{
		ID:          "web-console-session-any",
		File:        "internal/web/console/auth.go",
		Desc:        "a session cookie naming no session (tampered, or ended) signs the browser in as someone",
		Original:    `s, ok := ss.byID[c.Value]`,
		Replacement: `s, ok := ss.byID[c.Value]; for _, o := range ss.byID { if !ok { s, ok = o, true } }`,
		Packages:    []string{"./internal/web/console", "./cmd/evidenced"},
		Run:         "TestSessionCookieTamperExpiryLogout|TestConsoleWebInBrowserE2E",
	},
	{
		ID:          "web-console-media-no-range",
		File:        "internal/web/console/pages.go",
		Desc:        "the player's Range requests are answered with the whole recording (200), not the range (206)",
		Original:    `http.ServeContent(w, r, "", time.Time{}, rs)`,
		Replacement: `_, _ = io.Copy(w, rs)`,
		Packages:    []string{"./internal/web/console", "./cmd/evidenced"},
		Run:         "TestPlayAsksOnceAndServesRanges|TestConsoleWebInBrowserE2E",
	},
	{
		ID:          "web-console-near-off-globe",
		File:        "internal/web/console/params.go",
		Desc:        "the near form passes a latitude, longitude or radius out of range to the service",
		Original:    `v < c.lo || v > c.hi ||`,
		Replacement: `v < c.lo ||`,
		Packages:    []string{"./internal/web/console"},
		Run:         "TestBadParameters|FuzzParams",
	},
	{
		ID:          "web-console-plate-fuzzy-dropped",
		File:        "internal/web/console/params.go",
		Desc:        "the plate box's similar-plates checkbox is not passed on: a plate with an OCR confusion finds nothing",
		Original:    `s.By, s.opts.Plate, s.opts.Fuzzy = byPlate, s.Plate, s.Fuzzy`,
		Replacement: `s.By, s.opts.Plate = byPlate, s.Plate`,
		Packages:    []string{"./internal/web/console", "./cmd/evidenced"},
		Run:         "TestPlateAndNearSearch|TestConsoleWebInBrowserE2E",
	},
}
