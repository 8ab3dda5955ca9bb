package evict

import (
	"maps"
	"slices"
	"testing"
)

func TestMakeRoom(t *testing.T) {
	// Values are expiry marks: negative means expired.
	tests := []struct {
		name string
		m    map[string]int
		max  int
		want []string // keys left
	}{
		{"under the cap: untouched", map[string]int{"a": -1, "b": 1}, 3, []string{"a", "b"}},
		{"full: expired entries go", map[string]int{"a": -1, "b": 1, "c": -2}, 3, []string{"b"}},
		{"full, nothing expired: cleared", map[string]int{"a": 1, "b": 2}, 2, nil},
		{"full, too few expired: cleared", map[string]int{"a": -1, "b": 1, "c": 2}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			MakeRoom(tt.m, tt.max, func(v int) bool { return v < 0 })
			got := slices.Sorted(maps.Keys(tt.m))
			if !slices.Equal(got, tt.want) {
				t.Errorf("keys left = %v, want %v", got, tt.want)
			}
		})
	}
}
