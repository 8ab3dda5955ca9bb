package main

import (
	"io/fs"
	"testing"
)

func TestRuntimeSettings(t *testing.T) {
	const gib = 1 << 30
	env := func(kv ...string) func(string) string { return lookupEnv(kv) }
	tests := []struct {
		name      string
		cfg       RuntimeConfig
		getenv    func(string) string
		available uint64
		want      runtimeSettings
	}{
		{"defaults: 400 and three quarters of memory", RuntimeConfig{GCPercent: 400}, env(), 8 * gib, runtimeSettings{400, 6 * gib}},
		{"explicit limit", RuntimeConfig{GCPercent: 200, MemoryLimitMiB: 1024}, env(), 8 * gib, runtimeSettings{200, gib}},
		{"GOGC and GOMEMLIMIT win", RuntimeConfig{GCPercent: 400, MemoryLimitMiB: 1024}, env("GOGC=150", "GOMEMLIMIT=2GiB"), 8 * gib, runtimeSettings{-1, -1}},
		{"zero leaves Go's GC percent", RuntimeConfig{}, env(), 8 * gib, runtimeSettings{-1, 6 * gib}},
		{"memory unknown: no automatic limit", RuntimeConfig{GCPercent: 400}, env(), 0, runtimeSettings{400, -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.settings(tt.getenv, tt.available); got != tt.want {
				t.Errorf("settings = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMemoryAvailable(t *testing.T) {
	const meminfo = "MemTotal:       16384000 kB\nMemFree:         1000 kB\n"
	tests := []struct {
		name  string
		files map[string]string
		want  uint64
	}{
		{"machine only", map[string]string{"/proc/meminfo": meminfo}, 16384000 << 10},
		{"cgroup v2 limit", map[string]string{
			"/proc/meminfo": meminfo, "/proc/self/cgroup": "0::/app.slice/convergo\n",
			"/sys/fs/cgroup/app.slice/convergo/memory.max": "2147483648\n",
		}, 2 << 30},
		{"cgroup v2 unlimited", map[string]string{
			"/proc/meminfo": meminfo, "/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "max\n",
		}, 16384000 << 10},
		{"cgroup v1 limit", map[string]string{
			"/proc/meminfo": meminfo, "/proc/self/cgroup": "5:cpu,cpuacct:/\n4:memory:/docker/abc\n",
			"/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "1073741824",
		}, 1 << 30},
		{"cgroup v1 'unlimited' is larger than the machine", map[string]string{
			"/proc/meminfo": meminfo, "/proc/self/cgroup": "4:memory:/\n",
			"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712",
		}, 16384000 << 10},
		{"nothing readable", map[string]string{}, 0},
		{"path escaping the cgroup tree is ignored", map[string]string{
			"/proc/meminfo": meminfo, "/proc/self/cgroup": "0::/../../etc\n", "/sys/fs/cgroup/../../etc/memory.max": "1",
		}, 16384000 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read := func(path string) ([]byte, error) {
				if v, ok := tt.files[path]; ok {
					return []byte(v), nil
				}
				return nil, fs.ErrNotExist
			}
			if got := memoryAvailable(read); got != tt.want {
				t.Errorf("memoryAvailable = %d, want %d", got, tt.want)
			}
		})
	}
}
