package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is the binary's version (Config.Version).
var version = "dev"

// revision returns the VCS revision the binary was built from, if known.
func revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

func versionCmd(args []string) error {
	fs := newFlags("version", "")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("version: unexpected argument %q", fs.Arg(0))
	}
	fmt.Printf("guard %s (%s, revision %s)\n", version, runtime.Version(), revision())
	return nil
}
