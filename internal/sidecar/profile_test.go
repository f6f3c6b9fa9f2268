package sidecar

import (
	"strings"
	"testing"
)

func TestProfileMatch(t *testing.T) {
	p := Profile{Name: "vehicle", Rules: []Rule{
		{Glob: "*.NMEA", Kind: KindNMEA},
		{Glob: "*.GPX", Kind: KindGPX},
		{Glob: "ANPR/*.csv", Kind: KindANPRCSV},
		{Glob: "ANPR/*.jsonl", Kind: KindANPRJSONL},
		{Glob: "DCIM/*/*.MP4", Kind: KindMP4},
		{Glob: "*.MP4", Kind: KindMP4},
	}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		rel  string
		want Kind
	}{
		{"GPS/20261203.NMEA", KindNMEA},
		{"gps/20261203.nmea", KindNMEA}, // FAT: case does not matter
		{"track.gpx", KindGPX},
		{"ANPR/reads-20261203.csv", KindANPRCSV},
		{"anpr/reads.JSONL", KindANPRJSONL},
		{"OTHER/reads.csv", ""}, // a CSV elsewhere is not a read log
		{"ANPR/crops/0001.jpg", ""},
		{"DCIM/100MEDIA/VID_0001.MP4", KindMP4},
		{"./VID_0002.mp4", KindMP4},
	}
	for _, tc := range cases {
		got, ok := p.Match(tc.rel)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("Match(%q) = %q, %v; want %q", tc.rel, got, ok, tc.want)
		}
	}
}

func TestProfileValidate(t *testing.T) {
	cases := []struct {
		rule Rule
		want string
	}{
		{Rule{Glob: "", Kind: KindNMEA}, "empty glob"},
		{Rule{Glob: "/GPS/*.NMEA", Kind: KindNMEA}, "relative"},
		{Rule{Glob: "GPS\\*.NMEA", Kind: KindNMEA}, "'/'"},
		{Rule{Glob: "../*.NMEA", Kind: KindNMEA}, "'..'"},
		{Rule{Glob: "[*.NMEA", Kind: KindNMEA}, "syntax error"},
		{Rule{Glob: "*.KML", Kind: "kml"}, "unknown kind"},
		{Rule{Glob: "*.Nmea", Kind: KindGPX}, "same glob as rule 1"}, // FAT: one name
	}
	for _, tc := range cases {
		p := Profile{Name: "cam", Rules: []Rule{{Glob: "*.NMEA", Kind: KindNMEA}, tc.rule}}
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "rule 2") {
			t.Errorf("%+v: %v; want an error about %q naming rule 2", tc.rule, err, tc.want)
		}
	}
	for _, k := range Kinds() {
		p, err := New(k)
		if err != nil || p.Name() == "" || p.Version() == "" {
			t.Errorf("New(%q) = %v, %v", k, p, err)
		}
	}
	if _, err := New("kml"); err == nil {
		t.Error("New accepted an unknown kind")
	}
}
