package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// resolveVersion returns the version to report. stamped is what the build
// set with -ldflags "-X main.version=..." (make: git describe); when it is
// empty or "dev", the module version that the go command recorded in the
// binary is used instead: v1.2.3 for go install ...@v1.2.3, a pseudo-version
// such as v0.0.0-20261201165000-ccd6231abcde+dirty for go build in a
// checkout. "dev" when neither is known (go run, a build without VCS).
func resolveVersion(stamped string) string {
	if stamped != "" && stamped != "dev" {
		return stamped
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// buildSetting returns a setting the go command recorded in the binary
// (vcs.revision, vcs.time, vcs.modified), or "".
func buildSetting(key string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == key {
				return s.Value
			}
		}
	}
	return ""
}

// revision returns the VCS revision the binary was built from, if known.
func revision() string {
	if r := buildSetting("vcs.revision"); r != "" {
		return r
	}
	return "unknown"
}

// versionLine is what guard version prints: the version, then the Go
// release, the platform, and the VCS revision when the binary was built in
// a checkout (a module downloaded by go install has none).
func (c *CLI) versionLine() string {
	info := []string{runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH}
	if r := buildSetting("vcs.revision"); r != "" {
		if buildSetting("vcs.modified") == "true" {
			r += "+dirty"
		}
		info = append(info, "revision "+r)
		if t := buildSetting("vcs.time"); t != "" {
			info = append(info, t)
		}
	}
	return fmt.Sprintf("%s %s (%s)", c.progName(), c.version, strings.Join(info, ", "))
}

func (c *CLI) versionCmd(args []string) error {
	fs := c.newFlags("version", "")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("version: unexpected argument %q", fs.Arg(0))
	}
	_, err := fmt.Fprintln(c.stdout, c.versionLine())
	return err
}
