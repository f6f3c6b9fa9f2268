package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/internal/sidecar"
)

const sidecarBase = `host_id: dock-01
state_dir: /var/lib/evidenced
retention:
  classes: [{name: uncategorized, days: 90, mode: GOVERNANCE}]
cameras:
  - {serial: BWC-0001, kind: body, assigned_to: officer-4711}
  - {serial: CAR-0001, kind: vehicle, assigned_to: vehicle-1}
`

// A camera kind gets the rules for every camera plus its own, in file
// order; the other kind does not see a rule limited to the first.
func TestSidecarProfilePerKind(t *testing.T) {
	c, err := Parse([]byte(sidecarBase+`sidecars:
  - {glob: "*.MP4", parser: mp4}
  - {glob: "ANPR/*.csv", parser: anpr-csv, kinds: [vehicle]}
  - {glob: "*.nmea", parser: nmea}
`), "/etc/evidenced/evidenced.yaml")
	if err != nil {
		t.Fatal(err)
	}
	car := c.SidecarProfile(KindVehicle)
	if k, ok := car.Match("ANPR/reads-0001.CSV"); !ok || k != sidecar.KindANPRCSV {
		t.Errorf("vehicle: ANPR/reads-0001.CSV = %q %v, want anpr-csv", k, ok)
	}
	if k, ok := car.Match("DCIM/100MEDIA/a.mp4"); !ok || k != sidecar.KindMP4 {
		t.Errorf("vehicle: a.mp4 = %q %v, want mp4", k, ok)
	}
	body := c.SidecarProfile(KindBody)
	if k, ok := body.Match("ANPR/reads-0001.csv"); ok {
		t.Errorf("body: ANPR csv matched %q; the rule is for vehicle cameras only", k)
	}
	if k, ok := body.Match("GPS/track.NMEA"); !ok || k != sidecar.KindNMEA {
		t.Errorf("body: track.NMEA = %q %v, want nmea", k, ok)
	}
}

// Each broken rule is refused naming its key and line and saying what is
// wrong with it.
func TestSidecarRulesRefused(t *testing.T) {
	for _, tc := range []struct{ rules, key, want string }{
		{`  - {glob: "*.nmea", parser: nmae}`, "sidecars[0].parser", `must be one of [nmea gpx anpr-csv anpr-jsonl mp4], got "nmae"`},
		{`  - {glob: "/GPS/*.gpx", parser: gpx}`, "sidecars[0].glob", "relative to the camera root"},
		{`  - {glob: "../x/*.gpx", parser: gpx}`, "sidecars[0].glob", "'..'"},
		{`  - {glob: "GPS\\*.gpx", parser: gpx}`, "sidecars[0].glob", "use '/'"},
		{`  - {glob: "[x", parser: gpx}`, "sidecars[0].glob", "syntax error in pattern"},
		{`  - {glob: "", parser: gpx}`, "sidecars[0].glob", "empty glob"},
		{`  - {glob: "*.csv", parser: anpr-csv, kinds: [car]}`, "sidecars[0].kinds[0]", `must be body or vehicle, got "car"`},
		{"  - {glob: \"*.csv\", parser: anpr-csv}\n  - {glob: \"*.CSV\", parser: anpr-jsonl, kinds: [body]}", "sidecars", "for body cameras"},
	} {
		_, err := Parse([]byte(sidecarBase+"sidecars:\n"+tc.rules+"\n"), "/etc/evidenced/evidenced.yaml")
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: err = %v, want a FieldError", tc.rules, err)
			continue
		}
		if fe.Key != tc.key || !strings.Contains(fe.Msg, tc.want) || fe.Line == 0 {
			t.Errorf("%s: got key %q line %d %q, want key %q containing %q", tc.rules, fe.Key, fe.Line, fe.Msg, tc.key, tc.want)
		}
	}
}
