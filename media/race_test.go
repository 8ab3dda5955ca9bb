//go:build race

package media

// raceEnabled: sync.Pool drops items at random under -race, so pion's
// pooled buffers allocate and allocation counts are meaningless.
const raceEnabled = true
