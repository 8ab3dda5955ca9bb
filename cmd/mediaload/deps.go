package main

import "time"

// processProbe samples one process's resource use; procProbe reads /proc.
// A nil probe means "not measured" (no -server-pid).
type processProbe interface {
	// Sample returns the CPU time (user+system) the process used so far and
	// its resident set size in bytes.
	Sample() (cpu time.Duration, rss int64, err error)
}
