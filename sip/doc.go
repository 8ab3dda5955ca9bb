// Package sip is convergo's SIP access layer. It owns the listeners (UDP,
// TCP, TLS, WS, WSS) built on sipgo's transport and transaction layers, the
// request guard every handler runs behind (RFC 3261 §8.2 mandatory-header
// checks, Max-Forwards, body cap, panic recovery, an in-flight cap that
// answers 503 with Retry-After) and the OPTIONS responder (RFC 3261 §11).
//
// Call control, the registrar and messaging register their handlers on the
// Server before Run; they never open sockets themselves. The Server owns the
// goroutine of each listener; Run returns after every listener has stopped
// and the user agent is closed. On ctx cancel it stops admitting new
// requests (503), waits for in-flight handlers up to Config.DrainTimeout,
// then closes the listeners.
//
// Inside this package sipgo's message package is imported as sip; code
// outside it that needs both aliases ours.
package sip
