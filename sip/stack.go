package sip

// handlerStack is the stack a request handler is given before it starts.
// sipgo runs each request on a goroutine of its own, which starts with the
// runtime's small initial stack; the handler chain (trust, registrar, B2BUA
// routing down to the socket write) needs ~10 KiB, so the runtime grew and
// copied the stack two or three times per request, deep in the chain where
// every copy has many frames to adjust (~6% of the CPU at 3,000 calls/s in
// make bench-sip). Growing it once, at the top, copies a shallow stack.
const handlerStack = 8 << 10

// growStack makes the calling goroutine's stack at least handlerStack
// deep in one step: its frame needs that much, and the runtime sizes the
// new stack to fit it. The frame is popped on return; the stack stays.
//
//go:noinline
func growStack() {
	var frame [handlerStack]byte
	touch(frame[:])
}

// touch keeps frame on growStack's stack (it does not escape) and alive.
//
//go:noinline
func touch([]byte) {}
