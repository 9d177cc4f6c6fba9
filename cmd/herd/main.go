// Command herd runs a server as a cluster: a primary process that owns the
// listening sockets and supervises N worker processes. See herd --help.
package main

import (
	"fmt"
	"os"

	"github.com/herd-cluster/herd"
)

// version is herd's version, set at build time with
// -ldflags "-X main.version=v1.2.3".
var version = "dev"

// main runs the exec shim first (on a system without /bin/sh, a command
// worker being started re-executes this binary with arguments cobra must
// never see; the keeper too), then the command line.
func main() {
	if err := herd.ExecShim(); err != nil {
		fmt.Fprintln(os.Stderr, errorLine(err))
		os.Exit(exitExec)
	}
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr, runCluster))
}
