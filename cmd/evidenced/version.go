package main

import (
	"context"
	"flag"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/evidenced/evidenced/internal/service"
)

func versionCommand() *command {
	return &command{
		name: "version", summary: "print the version, the module version and the VCS revision it was built from", noConfig: true,
		setup: func(fs *flag.FlagSet) runner {
			return func(ctx context.Context, e *env) error {
				_, err := fmt.Fprintln(e.stdout, versionLine())
				return err
			}
		},
	}
}

// versionLine says what this binary is: the release stamp (-ldflags), the
// module version and the VCS revision the Go toolchain recorded when it
// built the binary, so a report of a problem names the exact source.
func versionLine() string {
	parts := []string{"evidenced " + service.Version}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return parts[0] + " (no build information)"
	}
	info := []string{"module " + bi.Main.Path + " " + bi.Main.Version}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	switch {
	case rev == "":
		info = append(info, "revision unknown (built without VCS information)")
	case modified:
		info = append(info, "revision "+rev+" (with uncommitted changes)")
	default:
		info = append(info, "revision "+rev)
	}
	if at != "" {
		info = append(info, "committed "+at)
	}
	info = append(info, bi.GoVersion)
	return strings.Join(parts, " ") + " (" + strings.Join(info, ", ") + ")"
}
