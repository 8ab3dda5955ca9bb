// Package problem writes HTTP error responses as RFC 9457 problem details
// (application/problem+json). Every domain package's routes use it so that
// clients see one error format; it owns no state and no goroutines.
package problem
