package herd_test

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// The command workers of the lifecycle tests, added to helpers.
func init() {
	// watchdog says READY=1, then WATCHDOG=1 twice per WATCHDOG_USEC,
	// until SIGTERM.
	helpers["watchdog"] = func() int {
		usec, _ := strconv.Atoi(os.Getenv("WATCHDOG_USEC"))
		if usec <= 0 {
			fmt.Fprintln(os.Stderr, "watchdog helper: no WATCHDOG_USEC")
			return 3
		}
		daemon.SdNotify(false, daemon.SdNotifyReady)
		ch := make(chan os.Signal, 1)
		signalNotify(ch)
		t := time.NewTicker(time.Duration(usec) * time.Microsecond / 2)
		defer t.Stop()
		for {
			select {
			case <-ch:
				return 0
			case <-t.C:
				daemon.SdNotify(false, daemon.SdNotifyWatchdog)
			}
		}
	}
	// slot0-ready says READY=1 in slot 0 only, then waits for SIGTERM.
	helpers["slot0-ready"] = func() int {
		if os.Getenv("HERD_WORKER_ID") == "0" {
			daemon.SdNotify(false, daemon.SdNotifyReady)
		}
		ch := make(chan os.Signal, 1)
		signalNotify(ch)
		for s := range ch {
			if s == syscall.SIGTERM {
				return 0
			}
		}
		return 0
	}
	// stop-loop says READY=1, then STOPPING=1, and exits 0 soon after, as
	// a server that stops itself does.
	helpers["stop-loop"] = func() int {
		daemon.SdNotify(false, daemon.SdNotifyReady)
		daemon.SdNotify(false, daemon.SdNotifyStopping)
		time.Sleep(50 * time.Millisecond) // its shutdown
		return 0
	}
}
