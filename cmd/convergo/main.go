// Command convergo is the convergo IMS application server: a SIP B2BUA with
// multi-device registration, RCS messaging, a network address book and an
// in-process media relay. See README.md for usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "convergo:", err)
		if errors.Is(err, errUsage) || errors.Is(err, errConfig) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
