package anchor

import (
	"context"
	"fmt"
	"slices"

	"github.com/evidenced/evidenced/internal/objstore"
)

// NoteSizes is the checkpoint sizes a listing of a host's checkpoints/
// found a note for (any version, verified or not): what a check of other
// objects against the checkpoints needs (the catalog's check that each
// records object a follow reads has one version), a number per
// checkpoint, not the listing.
//
// Why it is handed out: at fleet scale a host's checkpoints/ is years of
// objects, each listing of it many paged LIST calls; an audit that lists
// it once for CheckWith (Report.Listed) checks the records against that
// same listing instead of listing the prefix again.
type NoteSizes struct {
	sizes []uint64 // sorted, once each, after done
}

func (s *NoteSizes) add(n uint64) { s.sizes = append(s.sizes, n) }

func (s *NoteSizes) done() *NoteSizes {
	slices.Sort(s.sizes)
	s.sizes = slices.Compact(s.sizes)
	return s
}

// Has reports whether a note of checkpoint size n was listed.
func (s *NoteSizes) Has(n uint64) bool {
	_, ok := slices.BinarySearch(s.sizes, n)
	return ok
}

// Len is how many checkpoint sizes a note was listed for.
func (s *NoteSizes) Len() int { return len(s.sizes) }

// ListNoteSizes lists host's checkpoints/ a page at a time
// (objstore.EachVersionPage) for the sizes it holds a note of: for a
// caller that does not run CheckWith over the same listing.
func ListNoteSizes(ctx context.Context, s Store, hostID string) (*NoteSizes, error) {
	var out NoteSizes
	err := objstore.EachVersionPage(ctx, s, Prefix(hostID)+"checkpoints/", func(vs []Version) error {
		for _, v := range vs {
			if n, ext, ok := parseCheckpointName(hostID, v.Key); ok && ext == "note" {
				out.add(n)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("anchor %s: list checkpoints: %w", hostID, err)
	}
	return out.done(), nil
}
