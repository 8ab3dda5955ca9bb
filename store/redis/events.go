package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/convergo/convergo/store"
)

// eventLog implements store.EventLog; see doc.go for the keys and scripts.
type eventLog struct{ s *Store }

func checkEvent(user string, e store.Event) error {
	switch {
	case user == "":
		return fmt.Errorf("%w: event needs a user", store.ErrInvalid)
	case e.Type == "":
		return fmt.Errorf("%w: event needs a type", store.ErrInvalid)
	}
	return nil
}

// Append adds e to user's log in one script; see store.EventLog.
func (v eventLog) Append(ctx context.Context, user string, e store.Event) (uint64, bool, error) {
	if err := checkEvent(user, e); err != nil {
		return 0, false, fmt.Errorf("redis: append %s: %w", user, err)
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Seq = 0 // the stream ID carries it
	data, err := json.Marshal(e)
	if err != nil {
		return 0, false, fmt.Errorf("redis: append %s: %w", user, err)
	}
	res, err := eventAppend.Run(ctx, v.s.rdb, v.s.keys.events(user),
		e.ID, data, v.s.cfg.MaxEvents, v.s.keys.wake(user)).Int64Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("unexpected script reply %v", res)
	}
	if err != nil {
		return 0, false, fmt.Errorf("redis: append %s: %w", user, translate(err))
	}
	return uint64(res[0]), res[1] == 1, nil
}

// Read returns up to limit entries after the cursor (all retained ones when
// limit <= 0); store.ErrCursorExpired if some of them were trimmed.
func (v eventLog) Read(ctx context.Context, user string, after uint64, limit int) ([]store.Event, error) {
	k := v.s.keys.events(user)
	res, err := eventRead.Run(ctx, v.s.rdb, k[:2], strconv.FormatUint(after, 10), max(limit, 0)).Slice()
	if err != nil {
		return nil, fmt.Errorf("redis: read %s after %d: %w", user, after, translate(err))
	}
	out, err := decodeEvents(res)
	if err != nil {
		return nil, fmt.Errorf("redis: read %s after %d: %w", user, after, err)
	}
	return out, nil
}

func decodeEvents(res []any) ([]store.Event, error) {
	if len(res) == 0 {
		return nil, errors.New("empty script reply")
	}
	if status, _ := res[0].(int64); status == 1 {
		return nil, store.ErrCursorExpired
	}
	var out []store.Event
	for i := 1; i+1 < len(res); i += 2 {
		id, _ := res[i].(string)
		data, _ := res[i+1].(string)
		seqText, ok := strings.CutPrefix(id, "0-")
		seq, err := strconv.ParseUint(seqText, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("unexpected stream ID %q", id)
		}
		var e store.Event
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return nil, fmt.Errorf("decode event %d: %w", seq, err)
		}
		e.Seq = seq
		out = append(out, e)
	}
	return out, nil
}

// Last returns the highest sequence of user's log, 0 when empty.
func (v eventLog) Last(ctx context.Context, user string) (uint64, error) {
	last, err := v.s.rdb.Get(ctx, v.s.keys.events(user)[0]).Uint64()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redis: last %s: %w", user, translate(err))
	}
	return last, nil
}

// Wait blocks until user's log goes past after, ctx ends (ctx.Err()) or the
// store is closed (store.ErrClosed). It wakes on the Pub/Sub hint
// dispatched by the Store's goroutine and, since hints can be lost, re-checks
// Last every poll interval anyway.
func (v eventLog) Wait(ctx context.Context, user string, after uint64) (uint64, error) {
	if v.s.wait.Join(user) {
		v.s.resubscribe()
	}
	defer func() {
		if v.s.wait.Leave(user) {
			v.s.resubscribe()
		}
	}()
	poll := time.NewTimer(v.s.poll)
	defer poll.Stop()
	for {
		wake := v.s.wait.Wake(user)
		last, slow, err := v.lastWithin(ctx, user)
		switch {
		case ctx.Err() != nil:
			return last, ctx.Err()
		case slow:
			// Redis is slow: look again after the next wake-up or poll.
		case err != nil || last > after:
			return last, err
		}
		poll.Reset(v.s.poll)
		select {
		case <-wake:
		case <-poll.C:
		case <-ctx.Done():
			return last, ctx.Err()
		case <-v.s.done:
			return last, store.ErrClosed
		}
	}
}

// lastWithin is Last bounded by checkTimeout, so that a slow Redis cannot
// hold Wait past its ctx: go-redis honours deadlines, not cancellation, on
// a blocked read. slow reports that this bound, not ctx, cut the call.
func (v eventLog) lastWithin(ctx context.Context, user string) (last uint64, slow bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	last, err = v.Last(cctx, user)
	return last, err != nil && cctx.Err() != nil && ctx.Err() == nil, err
}
