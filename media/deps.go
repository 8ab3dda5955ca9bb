package media

// The relay depends on nothing of convergo's: the b2bua consumes it
// through its own Anchor interface (sip/b2bua/deps.go), which *Relay
// satisfies (checked in relay.go and relay_test.go), and it reports idle
// calls through the function given to OnInactive.

// IdleFunc is called with the call id of an answered call that carried no
// RTP either way for the inactivity period.
type IdleFunc = func(callID string)
