package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultGCPercent is runtime.gc_percent's default. Each call allocates
// ~100 KB, and finished transactions stay sip.transaction_wait (5 s), so
// at 2,000 calls/s Go's GOGC=100 spent a fifth of the CPU collecting;
// 400 spends a quarter of that for ~2.5× the heap (make bench-sip: 570 →
// 470 µs per call, 0.5 → 1.3 GiB RSS). The automatic memory limit keeps
// that headroom from outgrowing the machine.
const defaultGCPercent = 400

// RuntimeConfig tunes the Go garbage collector. Finished SIP transactions
// stay for sip.transaction_wait, so the live heap grows with the call rate
// (~12 KB per call/s per second of wait). The environment variables GOGC
// and GOMEMLIMIT, when set, win over both settings.
type RuntimeConfig struct {
	// GCPercent is GOGC: the heap grows this many percent over the live
	// heap before a collection. Higher spends less CPU and more memory.
	// Default 400; 0 leaves Go's (100).
	GCPercent int `yaml:"gc_percent"`
	// MemoryLimitMiB is GOMEMLIMIT in MiB: a soft cap on the Go heap near
	// which the collector works harder whatever GCPercent says. Default 0:
	// three quarters of the memory the process may use (its cgroup's limit
	// or the machine's), so a high GCPercent never outgrows a container.
	MemoryLimitMiB int `yaml:"memory_limit_mib"`
}

// Validate checks that the settings are not negative.
func (c RuntimeConfig) Validate() error {
	var errs []error
	if c.GCPercent < 0 {
		errs = append(errs, fmt.Errorf("gc_percent: %d: must not be negative", c.GCPercent))
	}
	if c.MemoryLimitMiB < 0 {
		errs = append(errs, fmt.Errorf("memory_limit_mib: %d: must not be negative", c.MemoryLimitMiB))
	}
	return errors.Join(errs...)
}

// runtimeSettings is what apply decided.
type runtimeSettings struct {
	GCPercent   int   // -1: left to Go (GOGC)
	MemoryLimit int64 // bytes; -1: left to Go (GOMEMLIMIT or none)
}

// settings decides the collector settings from the configuration, the
// environment (GOGC and GOMEMLIMIT win) and the memory available in bytes
// (0 when unknown: no automatic limit).
func (c RuntimeConfig) settings(getenv func(string) string, available uint64) runtimeSettings {
	s := runtimeSettings{GCPercent: -1, MemoryLimit: -1}
	if getenv("GOGC") == "" && c.GCPercent > 0 {
		s.GCPercent = c.GCPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		switch {
		case c.MemoryLimitMiB > 0:
			s.MemoryLimit = int64(c.MemoryLimitMiB) << 20
		case available > 0 && available < math.MaxInt64/4:
			s.MemoryLimit = int64(available / 4 * 3)
		}
	}
	return s
}

// apply sets the decided settings for the process.
func (s runtimeSettings) apply() {
	if s.GCPercent > 0 {
		debug.SetGCPercent(s.GCPercent)
	}
	if s.MemoryLimit > 0 {
		debug.SetMemoryLimit(s.MemoryLimit)
	}
}

// memoryAvailable returns how many bytes this process may use: the lower
// of the machine's memory and its memory cgroup's limit (v2 memory.max or
// v1 memory.limit_in_bytes). 0 when neither can be read (not Linux).
func memoryAvailable(readFile func(string) ([]byte, error)) uint64 {
	var best uint64
	take := func(v uint64) {
		if v > 0 && (best == 0 || v < best) {
			best = v
		}
	}
	if b, err := readFile("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				if kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64); err == nil {
					take(kb << 10)
				}
			}
		}
	}
	limit := func(path string) {
		if b, err := readFile(path); err == nil {
			if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil { // "max" fails: no limit
				take(v)
			}
		}
	}
	b, err := readFile("/proc/self/cgroup")
	if err != nil {
		return best
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// "0::/path" (v2) or "4:memory:/path" (v1)
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || strings.Contains(parts[2], "..") {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			limit("/sys/fs/cgroup" + strings.TrimSuffix(parts[2], "/") + "/memory.max")
		case strings.Contains(","+parts[1]+",", ",memory,"):
			limit("/sys/fs/cgroup/memory" + strings.TrimSuffix(parts[2], "/") + "/memory.limit_in_bytes")
		}
	}
	return best
}

// lookupEnv returns a getenv over environ ("KEY=value" entries, the last
// one winning, as os.Getenv does).
func lookupEnv(environ []string) func(string) string {
	return func(key string) string {
		v := ""
		for _, kv := range environ {
			if k, val, ok := strings.Cut(kv, "="); ok && k == key {
				v = val
			}
		}
		return v
	}
}
