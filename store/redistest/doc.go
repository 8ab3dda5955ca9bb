// Package redistest starts real redis-server processes for tests:
// StartServer for a single instance and StartCluster for a Redis Cluster
// of N masters, each on free 127.0.0.1 ports, with no persistence, in a
// t.TempDir, stopped by t.Cleanup. It is an ordinary (non-test) package so
// that the tests of any package can import it.
//
// When redis-server is not on PATH the calling test is skipped, or fails
// when the CI environment variable is set, so CI never silently skips the
// Redis backend. The package starts one goroutine per server, which reaps
// the process and ends in the cleanup that kills it.
package redistest
