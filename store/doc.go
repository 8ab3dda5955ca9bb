// Package store declares what convergo persists, one small interface per
// domain (bindings, event logs, users, tokens), the value types they
// exchange and the sentinel errors every backend returns.
//
// It owns no goroutines and opens nothing itself. Two backends implement the
// interfaces: store/bolt (embedded bbolt file, the default) and store/redis
// (go-redis UniversalClient: single, Sentinel or Cluster). The conformance
// suite in store/storetest runs unchanged against both, so callers never
// depend on which one is configured. Backends translate their native errors
// into the sentinels of errors.go; callers never import bbolt or go-redis.
package store
