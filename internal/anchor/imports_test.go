package anchor_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoStoreImplementation: anchoring speaks only objstore's interfaces
// (Store and Lister); the AWS SDK and s3store stay behind the store
// boundary, so anchoring runs the same on every store.
func TestNoStoreImplementation(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/aws/") || strings.HasSuffix(dep, "/objstore/s3store") {
			t.Errorf("anchor depends on %s", dep)
		}
	}
}
