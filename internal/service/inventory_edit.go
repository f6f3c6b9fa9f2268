package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
)

// ErrInventoryConflict: another publication reached the store between this
// edit's read of the document and its write; nothing was published.
var ErrInventoryConflict = errors.New("the inventory in the store changed while this edit was prepared")

// readInventory reads the newest version of key: its bytes and version id.
func (s *Service) readInventory(ctx context.Context, key string) ([]byte, string, error) {
	info, err := s.store.Stat(ctx, key, "")
	if err != nil {
		return nil, "", err
	}
	data, err := s.readInventoryVersion(ctx, key, info.VersionID)
	return data, info.VersionID, err
}

// InventoryPublication is what an inventory edit stored.
type InventoryPublication struct {
	Object    string `json:"object"`
	VersionID string `json:"version_id"`
	Version   uint64 `json:"version"`
	SHA256    string `json:"sha256"`
	Cameras   int    `json:"cameras"`
	// Change says what the edit changed (import, assign, retire and its
	// details), as INVENTORY_PUBLISHED records it.
	Change map[string]string `json:"change"`
	// Bytes is the signed document's size; MaxBytes the most a dock host
	// reads, and so the most a console publishes.
	Bytes    int `json:"bytes"`
	MaxBytes int `json:"max_bytes"`
	// Warning, when the document is past three quarters of MaxBytes,
	// says so: an edit past MaxBytes will be refused.
	Warning string `json:"warning,omitempty"`
}

// storeInventory is the console's document as the store holds it now,
// opened with the console's own key (nil doc: none published).
type storeInventory struct {
	doc       *inventoryDoc
	versionID string
	sha256    string
	bytes     int
}

// currentInventory reads and opens the console's own document. One that
// does not open with the console's key is an integrity failure naming it:
// someone besides this console wrote it, and nothing is published over it
// (nor shown as the console's) until a custodian looks.
func (s *Service) currentInventory(ctx context.Context) (storeInventory, error) {
	self := s.config.HostID
	key := InventoryKey(self)
	data, versionID, err := s.readInventory(ctx, key)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return storeInventory{}, nil
	case errors.Is(err, errInventoryTooLarge):
		return storeInventory{}, &kindError{kind: ErrIntegrity, err: fmt.Errorf("the inventory in the store (%s version %s) is larger than this console publishes: %w", key, versionID, err)}
	case err != nil:
		return storeInventory{}, fmt.Errorf("read the inventory in the store: %w", err)
	}
	doc, err := openInventory(data, s.hostKey().NoteVerifier(), self)
	if err != nil {
		return storeInventory{}, &kindError{kind: ErrIntegrity, err: fmt.Errorf("the inventory in the store (%s version %s) is not this console's: %w", key, versionID, err)}
	}
	return storeInventory{doc: &doc, versionID: versionID, sha256: digest.Bytes(data).Hex(), bytes: len(data)}, nil
}

// publishNext, at a console, publishes the next version of the console's
// inventory: edit makes its cameras from the document in the store (nil:
// none yet) and says what changed. The edit follows the store's version it
// read: just before the write the store is asked again, and if another
// publication landed meanwhile nothing is written (ErrInventoryConflict:
// run the edit again, it then starts from that one). S3 has no
// compare-and-swap for a versioned object, so two edits racing within the
// moment between that check and the write can both land with the same
// version number (edits through one daemon are serialised by invEdit, so
// only two processes writing at once can race); the dock hosts then keep whichever they read first and
// refuse the other as not newer (INVENTORY_REFUSED, an alert): never a
// silent overwrite. Each publication is recorded as INVENTORY_PUBLISHED
// with what changed.
func (s *Service) publishNext(ctx context.Context, c Caller, edit func(prev *inventoryDoc) ([]config.InventoryCamera, map[string]string, error)) (InventoryPublication, error) {
	var res InventoryPublication
	if !s.config.IsConsole() {
		return res, &kindError{kind: ErrInvalid, err: ErrNotConsole}
	}
	s.invEdit.Lock()
	defer s.invEdit.Unlock()
	self := s.config.HostID
	key := InventoryKey(self)
	cur, err := s.currentInventory(ctx)
	if err != nil {
		return res, err
	}
	cams, change, err := edit(cur.doc)
	if err != nil {
		return res, err
	}
	if err := config.CheckInventory(cams, key); err != nil {
		return res, &kindError{kind: ErrInvalid, err: err}
	}
	doc := inventoryDoc{Format: inventoryFormat, Console: self, Version: 1, PublishedAt: time.Now().UTC(), Cameras: cams}
	if cur.doc != nil {
		doc.Version = cur.doc.Version + 1
	}
	text, err := json.Marshal(doc)
	if err != nil {
		return res, fmt.Errorf("encode the inventory: %w", err)
	}
	signed, err := note.Sign(&note.Note{Text: string(text) + "\n"}, s.hostKey().NoteSigner())
	if err != nil {
		return res, fmt.Errorf("sign the inventory: %w", err)
	}
	if len(signed) > maxInventory {
		// Every reader (the dock hosts, this console's own next edit and
		// show) refuses a document over maxInventory: stored, it would
		// stop the inventory's flow and every later edit with it.
		return res, invalidf("the signed inventory (version %d, %d cameras) is %d bytes, over the %d a dock host reads: nothing published",
			doc.Version, len(cams), len(signed), maxInventory)
	}
	// Check before put: the version this edit follows must still be the
	// newest.
	switch info, err := s.store.Stat(ctx, key, ""); {
	case errors.Is(err, objstore.ErrNotFound):
		if cur.doc != nil {
			return res, fmt.Errorf("%w: version %s was removed", ErrInventoryConflict, cur.versionID)
		}
	case err != nil:
		return res, fmt.Errorf("read the inventory in the store again: %w", err)
	case info.VersionID != cur.versionID:
		return res, fmt.Errorf("%w: version %s is newer than the %q this edit started from; nothing published, run it again",
			ErrInventoryConflict, info.VersionID, cur.versionID)
	}
	sum := digest.Bytes(signed)
	put, err := s.store.Put(ctx, objstore.PutRequest{
		Key: key, Body: bytes.NewReader(signed), Size: int64(len(signed)), SHA256: sum,
		Metadata: map[string]string{"sha256": sum.Hex()}, ContentType: "text/plain; charset=utf-8",
	})
	if err != nil {
		return res, fmt.Errorf("store the inventory: %w", err)
	}
	res = InventoryPublication{Object: key, VersionID: put.VersionID, Version: doc.Version, SHA256: sum.Hex(), Cameras: len(cams), Change: change,
		Bytes: len(signed), MaxBytes: maxInventory}
	details := map[string]string{
		"console": self, "version": strconv.FormatUint(doc.Version, 10), "sha256": res.SHA256,
		"object": key, "version_id": put.VersionID, "cameras": strconv.Itoa(len(cams)),
	}
	for k, v := range change {
		details[k] = v
	}
	if c.Peer != "" {
		// Where the edit came from: the web console's "web:…" or the
		// control socket's uid/pid, as retention actions record it.
		details["peer"] = c.Peer
	}
	if _, err := s.ledger.Append(context.WithoutCancel(ctx), custody.Event{
		Type: InventoryPublished, Actor: c.Actor, Details: c.details(details),
	}, nil); err != nil {
		return res, fmt.Errorf("record the inventory's publication: %w", err)
	}
	s.log.Info("inventory published", "object", key, "version", doc.Version, "sha256", res.SHA256, "cameras", len(cams), "change", change["change"])
	if res.Warning = inventorySizeWarning(len(signed)); res.Warning != "" {
		s.log.Warn("the published inventory is past three quarters of the size a dock host reads", "object", key, "version", doc.Version,
			"bytes", len(signed), "max_bytes", maxInventory)
	}
	return res, nil
}

// inventorySizeWarning says, for a signed document of n bytes past
// inventoryWarnAt, how close it is to maxInventory ("" below it).
func inventorySizeWarning(n int) string {
	if n <= inventoryWarnAt {
		return ""
	}
	return fmt.Sprintf("the signed inventory is %d bytes, %d%% of the %d a dock host reads: an edit past it is refused (docs/ARCHITECTURE.md, \"Inventory size\")",
		n, n*100/maxInventory, maxInventory)
}

// ImportInventory, at a console, publishes the inventory in file merged
// into the console's document in force as its next version: CSV (serial,
// kind, assigned_to, retired) or YAML/JSON (cameras: with serial, kind,
// assigned_to, retired, assignments), told apart by extension or content.
// HQ re-imports its asset register routinely, and a CSV carries no
// history: taking the file as the whole inventory dropped every
// hand-over and retirement, so recordings docked afterwards went to the
// current holder for all times and a retired camera could be wiped
// again. The merge (config.MergeInventory) keeps what the document in
// force says happened: histories and retirements are kept, a changed
// holder becomes a hand-over at the import's time, cameras the file does
// not list are kept; a row that would rewrite history, un-retire or
// re-kind a camera is refused naming its serial, and nothing is published.
// Change counts what the import did (added, handed_over, newly_retired,
// kept_absent, with the serials of the last).
func (s *Service) ImportInventory(ctx context.Context, c Caller, file string) (InventoryPublication, error) {
	data, err := readSmallFile(file, maxInventory)
	if err != nil {
		return InventoryPublication{}, &kindError{kind: ErrInvalid, err: err}
	}
	return s.ImportInventoryData(ctx, c, file, data)
}

// ImportInventoryData is ImportInventory for a file's contents already
// read (the web console's upload, which never lands on the console's
// disk): name is the file's name as given, which tells the format (see
// config.ParseInventory), names the file in errors and is recorded as the
// import's file.
func (s *Service) ImportInventoryData(ctx context.Context, c Caller, name string, data []byte) (InventoryPublication, error) {
	if len(data) > maxInventory {
		return InventoryPublication{}, invalidf("%s: larger than %d bytes", name, maxInventory)
	}
	cams, err := config.ParseInventory(data, name)
	if err != nil {
		return InventoryPublication{}, &kindError{kind: ErrInvalid, err: err}
	}
	return s.publishNext(ctx, c, func(prev *inventoryDoc) ([]config.InventoryCamera, map[string]string, error) {
		var before []config.InventoryCamera
		if prev != nil {
			before = prev.Cameras
		}
		merged, m, err := config.MergeInventory(before, cams, time.Now().UTC())
		if err != nil {
			return nil, nil, &kindError{kind: ErrInvalid, err: fmt.Errorf("import %s: %w: nothing published", name, err)}
		}
		return merged, importChange(name, m), nil
	})
}

// importChange is what INVENTORY_PUBLISHED records of an import: counts
// of what it did, and the serials kept though the file left them out (the
// custodian's cue to retire any that really left service).
func importChange(file string, m config.InventoryMerge) map[string]string {
	change := map[string]string{
		"change": "import", "file": file,
		"added": strconv.Itoa(len(m.Added)), "handed_over": strconv.Itoa(len(m.HandedOver)),
		"newly_retired": strconv.Itoa(len(m.Retired)), "kept_absent": strconv.Itoa(len(m.KeptAbsent)),
	}
	if len(m.HandedOver) > 0 {
		change["handed_over_serials"] = strings.Join(m.HandedOver, ",")
	}
	if len(m.KeptAbsent) > 0 {
		change["kept_absent_serials"] = strings.Join(m.KeptAbsent, ",")
	}
	return change
}

// PublishInventory is ImportInventory (the command's first name).
func (s *Service) PublishInventory(ctx context.Context, c Caller, file string) (InventoryPublication, error) {
	return s.ImportInventory(ctx, c, file)
}

// editCamera publishes the next version with camera serial changed by
// edit (which says what changed); none published, or a serial not in the
// store's document, is the caller's error naming it.
func (s *Service) editCamera(ctx context.Context, c Caller, serial string, edit func(cam *config.InventoryCamera) (map[string]string, error)) (InventoryPublication, error) {
	return s.publishNext(ctx, c, func(prev *inventoryDoc) ([]config.InventoryCamera, map[string]string, error) {
		if prev == nil {
			return nil, nil, invalidf("no inventory is published yet: import one first (evidenced inventory import FILE)")
		}
		cams := slices.Clone(prev.Cameras)
		for i := range cams {
			if strings.EqualFold(cams[i].Serial, serial) {
				cams[i].Assignments = slices.Clone(cams[i].Assignments)
				change, err := edit(&cams[i])
				return cams, change, err
			}
		}
		return nil, nil, invalidf("camera %s is not in the inventory (version %d)", serial, prev.Version)
	})
}

// AssignInventory, at a console, hands camera serial to who from
// effective on (zero: now), as the next version of the document in the
// store. The camera's history gains the assignment; a camera with no
// history first gets its current holder as the undated first entry, so a
// recording made before effective still names them. assigned_to becomes
// who when effective is not in the future.
func (s *Service) AssignInventory(ctx context.Context, c Caller, serial, who string, effective time.Time) (InventoryPublication, error) {
	now := time.Now().UTC()
	if effective.IsZero() {
		effective = now
	}
	effective = effective.UTC()
	return s.editCamera(ctx, c, serial, func(cam *config.InventoryCamera) (map[string]string, error) {
		if cam.RetiredAt(effective) {
			return nil, invalidf("camera %s is retired since %s: not assigned", cam.Serial, cam.Retired.Format(time.RFC3339))
		}
		from, _ := cam.AssignedAt(effective)
		if len(cam.Assignments) == 0 {
			cam.Assignments = []config.Assignment{{To: cam.AssignedTo}}
		}
		if last := cam.Assignments[len(cam.Assignments)-1]; !effective.After(last.From) {
			return nil, invalidf("camera %s: effective %s is not after its last assignment (%s to %s)",
				cam.Serial, effective.Format(time.RFC3339), last.From.Format(time.RFC3339), last.To)
		}
		cam.Assignments = append(cam.Assignments, config.Assignment{To: who, From: effective})
		if !effective.After(now) {
			cam.AssignedTo = who
		}
		return map[string]string{
			"change": "assign", "serial": cam.Serial, "from": from, "to": who, "effective": effective.Format(time.RFC3339),
		}, nil
	})
}

// RetireInventory, at a console, retires camera serial from effective on
// (zero: now), as the next version of the document in the store: docks
// of it from then on are alerts (RETIRED_DOCKED), and it is never wiped.
func (s *Service) RetireInventory(ctx context.Context, c Caller, serial string, effective time.Time) (InventoryPublication, error) {
	if effective.IsZero() {
		effective = time.Now()
	}
	effective = effective.UTC()
	return s.editCamera(ctx, c, serial, func(cam *config.InventoryCamera) (map[string]string, error) {
		if cam.Retired != nil {
			return nil, invalidf("camera %s is already retired (since %s)", cam.Serial, cam.Retired.Format(time.RFC3339))
		}
		cam.Retired = &effective
		return map[string]string{
			"change": "retire", "serial": cam.Serial, "retired": effective.Format(time.RFC3339), "assigned_to": cam.AssignedTo,
		}, nil
	})
}

// InventoryView is the inventory `inventory show` prints: at a console the
// document in the store, verified with the console's key; on a dock host
// the version in force and where it came from.
type InventoryView struct {
	Console     string                   `json:"console,omitempty"`
	Version     uint64                   `json:"version"`
	SHA256      string                   `json:"sha256,omitempty"`
	PublishedAt *time.Time               `json:"published_at,omitempty"`
	Source      string                   `json:"source"`
	Cameras     []config.InventoryCamera `json:"cameras"`
	// Bytes is the signed document's size, at a console; Warning says
	// when it is past three quarters of what a dock host reads (as a
	// publication's does).
	Bytes   int    `json:"bytes,omitempty"`
	Warning string `json:"warning,omitempty"`
}

// ShowInventory is the inventory as this host knows it. At a console it is
// the store's document (none published: ErrNotFound; one that does not
// open with the console's key: ErrIntegrity). On a dock host it is the
// console's version in force: the daemon's, or, without a daemon, the last
// accepted document kept in state_dir (opened with the pinned key); with
// none, the cameras: list (version 0).
func (s *Service) ShowInventory(ctx context.Context) (InventoryView, error) {
	if s.config.IsConsole() {
		cur, err := s.currentInventory(ctx)
		if err != nil {
			return InventoryView{}, err
		}
		if cur.doc == nil {
			return InventoryView{}, &kindError{kind: ErrNotFound, err: fmt.Errorf("no inventory published at %s", InventoryKey(s.config.HostID))}
		}
		at := cur.doc.PublishedAt
		return InventoryView{Console: cur.doc.Console, Version: cur.doc.Version, SHA256: cur.sha256, PublishedAt: &at,
			Source: InventoryKey(s.config.HostID) + "@" + cur.versionID, Cameras: cur.doc.Cameras,
			Bytes: cur.bytes, Warning: inventorySizeWarning(cur.bytes)}, nil
	}
	pub := s.config.PublishedInventory()
	if pub == nil && s.config.Inventory != nil {
		if _, err := s.newInventoryFollower(); err != nil { // loads the cache, if any
			return InventoryView{}, err
		}
		pub = s.config.PublishedInventory()
	}
	if pub == nil {
		var cams []config.InventoryCamera
		for _, c := range s.config.Cameras {
			cams = append(cams, config.InventoryCamera{Serial: c.Serial, Kind: c.Kind, AssignedTo: c.AssignedTo})
		}
		return InventoryView{Source: "cameras: (" + s.config.Path + ")", Cameras: cams}, nil
	}
	at := pub.PublishedAt
	return InventoryView{Console: pub.Console, Version: pub.Version, SHA256: pub.SHA256, PublishedAt: &at, Source: pub.Source, Cameras: pub.Cameras}, nil
}
