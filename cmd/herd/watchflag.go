package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// addWatchFlag registers --watch, in the Development section.
func (f *clusterFlags) addWatchFlag(fs *pflag.FlagSet) {
	add(fs, "Development", &listValue{p: &f.watch, check: checkWatchPath, split: splitWatchEnv}, "watch", "`PATH`",
		"Restart the workers one by one, as herd reload does, when files under PATH change (a file, or a directory and all below it, relative to herd's working directory); repeatable. Changes are taken together once nothing changed for 300ms; version control, node_modules, __pycache__ and editors' scratch files are ignored; at most 1024 directories. For development.")
}

// checkWatchPath refuses a --watch path that does not exist.
func checkWatchPath(s string) error {
	if s == "" {
		return errors.New("empty path")
	}
	if _, err := os.Stat(s); err != nil {
		return fmt.Errorf("cannot watch it: %w", errors.Unwrap(err))
	}
	return nil
}

// splitWatchEnv splits HERD_WATCH at commas.
func splitWatchEnv(s string) []string { return strings.Split(s, ",") }
