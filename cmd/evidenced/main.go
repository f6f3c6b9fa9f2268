// Command evidenced takes camera footage off docked cameras into a verified,
// chain-of-custody-recorded evidence store. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// First SIGINT/SIGTERM cancels intake (the daemon drains); a second one
	// cancels everything (hard).
	intake, stopIntake := context.WithCancel(context.Background())
	hard, stopHard := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		stopIntake()
		<-sig
		stopHard()
	}()
	code := Main(intake, hard, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stopIntake()
	stopHard()
	os.Exit(code)
}
