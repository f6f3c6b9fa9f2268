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
		v.add("inventory", "set, but role is %s: a console publishes the inventory (evidenced inventory publish), a dock host takes it", c.Role)
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
type InventoryCamera struct {
	Serial     string `yaml:"serial" json:"serial"`
	Kind       string `yaml:"kind" json:"kind"`
	AssignedTo string `yaml:"assigned_to" json:"assigned_to"`
}

// ParseInventory decodes and validates an inventory file (YAML or JSON:
// `cameras:` with serial, kind and assigned_to), as `evidenced inventory
// publish FILE` reads it. name is the file, for errors.
func ParseInventory(data []byte, name string) ([]InventoryCamera, error) {
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
// list is validated (serials, kinds, assigned_to), errors naming name.
func CheckInventory(cams []InventoryCamera, name string) error {
	v := &validator{c: &Config{Path: name}}
	list := make([]Camera, len(cams))
	for i, c := range cams {
		list[i] = Camera{Serial: c.Serial, Kind: c.Kind, AssignedTo: c.AssignedTo}
	}
	v.cameras("cameras", list)
	return joinErrors(v.errs)
}

// Published is a console's inventory in force on this host.
type Published struct {
	Console string
	Version uint64
	SHA256  string
	Cameras []InventoryCamera
}

// camera looks serial up in the published inventory: the console decides
// whether the camera is in the inventory, its kind and to whom it is
// issued; an entry of the same serial in local (cameras:) still gives the
// host's own keys (usb_id, the wipe overrides).
func (p *Published) camera(local []Camera, serial string) (Camera, bool) {
	for _, pc := range p.Cameras {
		if pc.Serial != serial {
			continue
		}
		cam, _ := cameraIn(local, serial)
		cam.Serial, cam.Kind, cam.AssignedTo = pc.Serial, pc.Kind, pc.AssignedTo
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
