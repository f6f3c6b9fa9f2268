package config

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Inventory configures a dock host that takes its camera inventory from the
// one a console publishes in the object store, signed with the console's
// key (service: inventory.go). The key is pinned here, from outside the
// store: a document the store holds is never trusted on its own word.
type Inventory struct {
	// FromConsole is the console's host_id: its document is
	// _inventory/<from_console>/inventory.note, and its signature must
	// name it.
	FromConsole string `yaml:"from_console"`
	// PublicKeyFile is the console's public key, as `evidenced key
	// --public` prints it at the console.
	PublicKeyFile string `yaml:"public_key_file"`
	// Poll is how often the store is read for a newer document.
	Poll Duration `yaml:"poll"`
}

// Inventory defaults and bounds: under a second only reads the store for
// nothing; over an hour, a reassignment would reach the docks too late to
// be worth publishing.
const (
	DefaultInventoryPoll = time.Minute
	minInventoryPoll     = time.Second
	maxInventoryPoll     = time.Hour
)

func defaultInventory() *Inventory { return &Inventory{Poll: Duration{DefaultInventoryPoll}} }

// inventory checks the inventory section: a dock host's, with an object
// store to read the document from, a console other than itself and its key.
func (v *validator) inventory(c *Config) {
	in := c.Inventory
	if in == nil {
		return
	}
	if c.Role != RoleDock {
		v.add("inventory", "set, but role is %s: a console publishes the inventory (evidenced inventory import), a dock host takes it", c.Role)
		return
	}
	if c.ObjectStore == nil {
		v.add("object_store", "required with inventory: the console's inventory is read from the store")
	}
	if v.ident("inventory.from_console", in.FromConsole, "host id") && in.FromConsole == c.HostID {
		v.add("inventory.from_console", "%q is this host's own host_id; name the console's", in.FromConsole)
	}
	v.absPath("inventory.public_key_file", in.PublicKeyFile)
	if d := in.Poll.Duration; d < minInventoryPoll || d > maxInventoryPoll {
		v.add("inventory.poll", "must be between %s and %s, got %s", minInventoryPoll, maxInventoryPoll, in.Poll)
	}
}

// InventoryCamera is one camera of a published inventory: what a console
// decides about it. The host's own keys of a camera (usb_id, the wipe
// overrides) stay in that host's cameras: list.
//
// AssignedTo is the holder at the document's publication (what the fleet
// view and find show). Assignments is the camera's history of
// reassignments, ordered by their effective time: pooled cameras change
// hands daily, and a recording belongs to whoever held the camera when it
// recorded (AssignedAt). Retired, when set, is when the camera left
// service: it has no assignment after it, and its footage is never wiped
// from it (a retired camera that docks is evidence nobody expected).
type InventoryCamera struct {
	Serial      string       `yaml:"serial" json:"serial"`
	Kind        string       `yaml:"kind" json:"kind"`
	AssignedTo  string       `yaml:"assigned_to" json:"assigned_to"`
	Retired     *time.Time   `yaml:"retired,omitempty" json:"retired,omitempty"`
	Assignments []Assignment `yaml:"assignments,omitempty" json:"assignments,omitempty"`
}

// Assignment is one hand-over of a camera: To holds it from From on, until
// the next assignment. The first leaves From zero, and only the first: the
// holder since before the history begins (inventory assign records the
// holder it replaces that way).
type Assignment struct {
	To   string    `yaml:"to" json:"to"`
	From time.Time `yaml:"from,omitempty" json:"from,omitzero"`
}

// AssignedAt is to whom the camera was issued at t: the last assignment in
// force at t, or AssignedTo when there is none (no history; a checked
// history starts undated, so every t has an entry). which is the
// assignment's index (-1: AssignedTo).
func (c InventoryCamera) AssignedAt(t time.Time) (who string, which int) {
	who, which = c.AssignedTo, -1
	for i, a := range c.Assignments {
		if a.From.After(t) {
			break
		}
		who, which = a.To, i
	}
	return who, which
}

// RetiredAt reports whether the camera is retired at t.
func (c InventoryCamera) RetiredAt(t time.Time) bool {
	return c.Retired != nil && !t.Before(*c.Retired)
}

// ParseInventory decodes and validates an inventory file, as `evidenced
// inventory import FILE` reads it: CSV (a header row naming serial, kind,
// assigned_to and optionally retired; see ParseInventoryCSV) when the name
// ends in .csv or the first line is such a header, otherwise YAML or JSON
// (`cameras:` with serial, kind, assigned_to, retired, assignments). name
// is the file, for errors.
func ParseInventory(data []byte, name string) ([]InventoryCamera, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // a spreadsheet's byte order mark
	if isCSV(data, name) {
		return ParseInventoryCSV(data, name)
	}
	var f struct {
		Cameras []InventoryCamera `yaml:"cameras"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrInvalid, displayName(name), strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(f.Cameras) == 0 {
		return nil, fmt.Errorf("%w: %s: cameras: required: an empty inventory would stop every dock", ErrInvalid, displayName(name))
	}
	if err := CheckInventory(f.Cameras, name); err != nil {
		return nil, err
	}
	return f.Cameras, nil
}

// CheckInventory validates a published inventory's cameras as the cameras:
// list is validated (serials, kinds, assigned_to), and each camera's
// history: assignments ordered by a strictly later effective time, each
// naming a holder, the first undated and only the first, none at or after the camera's
// retirement. Errors name name, the serial and the field.
func CheckInventory(cams []InventoryCamera, name string) error {
	v := &validator{c: &Config{Path: name}}
	list := make([]Camera, len(cams))
	for i, c := range cams {
		list[i] = Camera{Serial: c.Serial, Kind: c.Kind, AssignedTo: c.AssignedTo}
	}
	v.cameras("cameras", list)
	for i, c := range cams {
		key := fmt.Sprintf("cameras[%d]", i)
		if c.Retired != nil && c.Retired.IsZero() {
			v.add(key+".retired", "camera %s: a retirement needs its time", c.Serial)
		}
		for j, a := range c.Assignments {
			ak := fmt.Sprintf("%s.assignments[%d]", key, j)
			if a.To == "" {
				v.add(ak+".to", "camera %s: an assignment names its holder", c.Serial)
			} else {
				v.text(ak+".to", a.To, maxAssignedTo)
			}
			switch {
			case j == 0 && !a.From.IsZero():
				// AssignedAt answers assigned_to, the holder at publication,
				// before the first dated entry: a history that starts dated
				// would give a recording from before it to whoever holds the
				// camera now, whom the same history hands it to later.
				v.add(ak+".from", "camera %s: the first assignment leaves its effective time out: it names whoever held the camera before its history (%s here is a hand-over, and before it the holder is unknown)",
					c.Serial, a.From.Format(time.RFC3339))
			case a.From.IsZero() && j > 0:
				v.add(ak+".from", "camera %s: only the first assignment may leave its effective time out", c.Serial)
			case j > 0 && !a.From.After(c.Assignments[j-1].From):
				v.add(ak+".from", "camera %s: %s is not after the assignment before it (%s): the history is in the order it happened, one hand-over at a time",
					c.Serial, a.From.Format(time.RFC3339), c.Assignments[j-1].From.Format(time.RFC3339))
			}
			if c.Retired != nil && !a.From.IsZero() && !a.From.Before(*c.Retired) {
				v.add(ak+".from", "camera %s: assigned at %s, at or after its retirement (%s)",
					c.Serial, a.From.Format(time.RFC3339), c.Retired.Format(time.RFC3339))
			}
		}
	}
	return joinErrors(v.errs)
}

// Published is a console's inventory in force on this host.
type Published struct {
	Console     string
	Version     uint64
	SHA256      string
	PublishedAt time.Time
	// Source is where this host took it from: the store's object and
	// version id, or the cache file of the last accepted document.
	Source  string
	Cameras []InventoryCamera
}

// camera looks serial up in the published inventory: the console decides
// whether the camera is in the inventory, its kind and to whom it is
// issued; an entry of the same serial in local (cameras:) still gives the
// host's own keys (usb_id, the wipe overrides). The entry itself rides
// along (Camera.Published) for what is resolved by time.
func (p *Published) camera(local []Camera, serial string) (Camera, bool) {
	for i := range p.Cameras {
		pc := &p.Cameras[i]
		if pc.Serial != serial {
			continue
		}
		cam, _ := cameraIn(local, serial)
		cam.Serial, cam.Kind, cam.AssignedTo = pc.Serial, pc.Kind, pc.AssignedTo
		cam.Published = pc
		cam.InventoryVersion = p.Version
		return cam, true
	}
	return Camera{}, false
}

// SetPublished makes p the inventory Camera answers from (one atomic
// store: a dock looks its camera up once, at its start, and keeps it).
func (c *Config) SetPublished(p *Published) {
	if c.live == nil {
		c.live = &live{}
	}
	c.live.pub.Store(p)
}

// published is the console's inventory in force, nil when none is.
func (c *Config) published() *Published {
	if c.live == nil {
		return nil
	}
	return c.live.pub.Load()
}

// PublishedInventory is the console's inventory in force (nil: none, the
// cameras: list is).
func (c *Config) PublishedInventory() *Published { return c.published() }
