package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/service"
)

func findCommand() *command {
	return &command{
		name: "find", summary: "find recordings by camera, officer or vehicle, and recording time; by number plate or by place from the sidecars",
		setup: func(fs *flag.FlagSet) runner {
			camera := fs.String("camera", "", "camera serial")
			assigned := fs.String("assigned-to", "", "officer or vehicle the camera is issued to")
			since := fs.String("since", "", "recorded at or after (RFC 3339 or YYYY-MM-DD, UTC)")
			until := fs.String("until", "", "recorded before (RFC 3339 or YYYY-MM-DD, UTC)")
			asJSON := fs.Bool("json", false, "print a JSON array")
			reason := fs.String("reason", "", "why you are searching (recorded in the custody ledger)")
			host := fs.String("host", "", "at a console: only the items of this dock host")
			plate := fs.String("plate", "", "recordings of this number plate, from the plate reads (CA 123-456, CA123456 and ca.123.456 are one plate); --since/--until bound the reads")
			fuzzy := fs.Bool("fuzzy", false, "with --plate: also plates one edit or a few OCR confusions (0/O/D, 1/I, 8/B, 5/S, 2/Z) away, nearest first")
			near := fs.String("near", "", "LAT,LON: recordings whose camera's GPS track came within --radius of this point (decimal degrees); --since/--until bound the fixes")
			radius := fs.Float64("radius", 0, "with --near: metres")
			limit := fs.Int("limit", 0, "at most this many results (0: all); with --offset, one page of them")
			offset := fs.Int("offset", 0, "skip this many results first (the order is stable: by recording time through --camera or --assigned-to, else by host and id)")
			after := fs.String("after", "", "the page after the one that printed this cursor (\"next page: --after …\"); with --limit, instead of --offset")
			return func(ctx context.Context, e *env) error {
				f := custody.Filter{Camera: *camera, AssignedTo: *assigned}
				var err error
				if f.Since, f.Until, err = parseSpan(*since, *until); err != nil {
					return err
				}
				o := service.FindOptions{Filter: f, Reason: *reason, Host: *host, Plate: *plate, Fuzzy: *fuzzy, Offset: *offset, Limit: *limit, After: *after, Asked: map[string]string{
					"camera": *camera, "assigned_to": *assigned, "since": *since, "until": *until, "plate": *plate, "near": *near,
				}}
				if *fuzzy {
					o.Asked["fuzzy"] = "true"
				}
				if o.Near, err = parseNear(*near, *radius); err != nil {
					return err
				}
				if o.Near != nil {
					o.Asked["radius"] = strconv.FormatFloat(*radius, 'f', -1, 64)
				}
				found, err := e.svc.FindPage(ctx, e.caller(), o)
				if err != nil {
					return err
				}
				items := found.Items
				if found.Next != "" {
					defer fmt.Fprintf(e.stderr, "next page: --after %s\n", found.Next)
				}
				if len(items) != found.Total {
					defer fmt.Fprintf(e.stderr, "results %d to %d of %d\n", min(found.Offset+1, found.Total), found.Offset+len(items), found.Total)
				}
				if *asJSON {
					return printJSON(e.stdout, items)
				}
				// At a console every item names the dock host that ingested it.
				fleet := e.svc.Config().IsConsole()
				if *plate != "" || o.Near != nil {
					return printMatches(e, items, fleet)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				if fleet {
					fmt.Fprint(tw, "HOST\t")
				}
				fmt.Fprintln(tw, "ID\tCAMERA\tASSIGNED_TO\tRECORDED_AT\tSIZE\tSTATE\tSOURCE_PATH")
				for _, it := range items {
					if fleet {
						fmt.Fprintf(tw, "%s\t", printable(it.Host))
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(it.ID), printable(it.Camera), printable(it.AssignedTo),
						it.RecordedAt.UTC().Format(time.RFC3339), humanBytes(it.Size), it.State, printable(it.SourcePath))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "%d item(s)\n", len(items))
				return nil
			}
		},
	}
}

// parseNear reads --near LAT,LON and --radius M.
func parseNear(near string, radius float64) (*service.NearOptions, error) {
	if near == "" {
		if radius != 0 {
			return nil, usageErrorf("--radius needs --near")
		}
		return nil, nil
	}
	la, lo, ok := strings.Cut(near, ",")
	lat, err1 := strconv.ParseFloat(strings.TrimSpace(la), 64)
	lon, err2 := strconv.ParseFloat(strings.TrimSpace(lo), 64)
	if !ok || err1 != nil || err2 != nil {
		return nil, usageErrorf("--near %q: want LAT,LON in decimal degrees, e.g. -33.9249,18.4241", near)
	}
	if !(radius > 0) {
		return nil, usageErrorf("--near needs --radius in metres (more than 0)")
	}
	return &service.NearOptions{Lat: lat, Lon: lon, Radius: radius}, nil
}

// printMatches is the table of a search by plate or place: the recording
// (at a console, fleet, with the dock host that ingested it), the fact that
// matched it and the file (and hash) the fact came from.
func printMatches(e *env, items []service.Found, fleet bool) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if fleet {
		fmt.Fprint(tw, "HOST\t")
	}
	fmt.Fprintln(tw, "ID\tCAMERA\tSOURCE_PATH\tMATCH\tAT\tFROM\tFROM_SHA256")
	for _, it := range items {
		if fleet {
			fmt.Fprintf(tw, "%s\t", printable(it.Host))
		}
		m := it.Match
		var what string
		switch m.Kind {
		case service.HitPlateRead:
			what = fmt.Sprintf("plate %s (read %q, confidence %.2f, distance %g)", m.Plate.Plate, m.Plate.AsRead, m.Plate.Confidence, m.Distance)
		default:
			what = fmt.Sprintf("%.0f m from the point (%.6f,%.6f; %d fixes)", m.Metres, m.Lat, m.Lon, m.Fixes)
		}
		id := it.ID
		if m.Recording == "" {
			id += " (no recording covers it)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s:%d\t%s\n", printable(id), printable(it.Camera), printable(it.SourcePath), printable(what),
			m.Time.UTC().Format(time.RFC3339), printable(m.Source.SourcePath), m.Line, m.Source.SHA256)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "%d match(es)\n", len(items))
	return nil
}

func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, usageErrorf("--%s %q: want RFC 3339 (2026-11-24T08:00:00Z) or a date (2026-11-24)", name, v)
}

// parseSpan reads --since and --until, refusing a span that ends before
// it starts: it would select nothing, silently.
func parseSpan(since, until string) (from, to time.Time, err error) {
	if from, err = parseTime("since", since); err != nil {
		return
	}
	if to, err = parseTime("until", until); err != nil {
		return
	}
	if !from.IsZero() && !to.IsZero() && from.After(to) {
		err = usageErrorf("--since %s is later than --until %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return
}
