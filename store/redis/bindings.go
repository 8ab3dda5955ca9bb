package redis

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/convergo/convergo/store"
)

// bindings implements store.Bindings; see doc.go for the keys and scripts.
type bindings struct{ s *Store }

// args returns the ARGV prefix every binding script expects.
func (v bindings) args(now time.Time, more ...any) []any {
	return append([]any{now.UnixMilli(), v.s.grace.Milliseconds(), graveCap}, more...)
}

// index lowers the AOR's sweep index entry to due (ZADD LT). The index is
// only a hint of where Sweep should look, so it is written outside the
// script; an entry that is too early only costs Sweep a visit.
func (v bindings) index(ctx context.Context, aor string, due int64) error {
	if due <= 0 {
		return nil
	}
	return v.s.rdb.ZAddLT(ctx, v.s.keys.bindingIndexOf(aor), goredis.Z{Score: float64(due), Member: aor}).Err()
}

// decodeBinding parses the stored form "<created>\n<JSON>". Created lives
// outside the JSON so that the Put script can keep it on refresh without
// decoding JSON.
func decodeBinding(v string) (store.Binding, error) {
	var b store.Binding
	created, data, ok := strings.Cut(v, "\n")
	if !ok {
		return b, fmt.Errorf("malformed binding value")
	}
	if err := json.Unmarshal([]byte(data), &b); err != nil {
		return b, fmt.Errorf("decode binding: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, created)
	if err != nil {
		return b, fmt.Errorf("decode binding created: %w", err)
	}
	b.Created = t
	return b, nil
}

func decodeBindings(vals []any) ([]store.Binding, error) {
	out := make([]store.Binding, 0, len(vals))
	for _, x := range vals {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("unexpected binding value %T", x)
		}
		b, err := decodeBinding(s)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// Put inserts or refreshes b; see store.Bindings.
func (v bindings) Put(ctx context.Context, b store.Binding) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("redis: put binding: %w", err)
	}
	now := time.Now()
	created := b.Created
	if created.IsZero() {
		created = now
	}
	b.Created = time.Time{} // stored beside the JSON
	data, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("redis: put binding %s: %w", b.AOR, err)
	}
	due, err := bindingPut.Run(ctx, v.s.rdb, v.s.keys.binding(b.AOR),
		v.args(now, b.Key, b.Expires.UnixMilli(), created.Format(time.RFC3339Nano), data)...).Int64()
	if err == nil {
		err = v.index(ctx, b.AOR, due)
	}
	if err != nil {
		return fmt.Errorf("redis: put binding %s: %w", b.AOR, translate(err))
	}
	return nil
}

// List returns the live bindings of aor, oldest first.
func (v bindings) List(ctx context.Context, aor string) ([]store.Binding, error) {
	res, err := bindingList.Run(ctx, v.s.rdb, v.s.keys.binding(aor), v.args(time.Now())...).Slice()
	if err != nil {
		return nil, fmt.Errorf("redis: list bindings %s: %w", aor, translate(err))
	}
	due, vals, err := dueAndValues(res)
	if err == nil {
		err = v.index(ctx, aor, due)
	}
	var out []store.Binding
	if err == nil {
		out, err = decodeBindings(vals)
	}
	if err != nil {
		return nil, fmt.Errorf("redis: list bindings %s: %w", aor, err)
	}
	slices.SortFunc(out, func(a, b store.Binding) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Key, b.Key))
	})
	return out, nil
}

func dueAndValues(res []any) (int64, []any, error) {
	if len(res) != 2 {
		return 0, nil, fmt.Errorf("unexpected script reply of %d elements", len(res))
	}
	due, ok1 := res[0].(int64)
	vals, ok2 := res[1].([]any)
	if !ok1 || !ok2 {
		return 0, nil, fmt.Errorf("unexpected script reply %T, %T", res[0], res[1])
	}
	return due, vals, nil
}

// countAndDue runs a script that returns {count, due} and updates the index.
func (v bindings) countAndDue(ctx context.Context, script *goredis.Script, aor string, args []any) (int64, error) {
	res, err := script.Run(ctx, v.s.rdb, v.s.keys.binding(aor), args...).Int64Slice()
	if err != nil {
		return 0, translate(err)
	}
	if len(res) != 2 {
		return 0, fmt.Errorf("unexpected script reply %v", res)
	}
	return res[0], v.index(ctx, aor, res[1])
}

// Delete removes one live binding; store.ErrNotFound if absent or expired.
func (v bindings) Delete(ctx context.Context, aor, key string) error {
	n, err := v.countAndDue(ctx, bindingDelete, aor, v.args(time.Now(), key))
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("redis: delete binding %s: %w", aor, err)
	}
	return nil
}

// DeleteAll removes every binding of aor and returns how many were live.
func (v bindings) DeleteAll(ctx context.Context, aor string) (int, error) {
	n, err := v.countAndDue(ctx, bindingDeleteAll, aor, v.args(time.Now()))
	if err != nil {
		return 0, fmt.Errorf("redis: delete bindings %s: %w", aor, err)
	}
	return int(n), nil
}

// Sweep removes and returns every binding that expired at or before now;
// each is returned by exactly one Sweep, whichever node runs it.
func (v bindings) Sweep(ctx context.Context, now time.Time) ([]store.Binding, error) {
	var out []store.Binding
	for shard := range uint32(indexShards) {
		swept, err := v.sweepShard(ctx, v.s.keys.bindingIndex(shard), now)
		out = append(out, swept...)
		if err != nil {
			return out, fmt.Errorf("redis: sweep bindings: %w", err)
		}
	}
	return out, nil
}

func (v bindings) sweepShard(ctx context.Context, index string, now time.Time) ([]store.Binding, error) {
	var out []store.Binding
	visited := make(map[string]bool)
	for {
		due, err := v.s.rdb.ZRangeByScoreWithScores(ctx, index, &goredis.ZRangeBy{
			Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10), Count: sweepBatch,
		}).Result()
		if err != nil {
			return out, translate(err)
		}
		fresh := 0
		for _, z := range due {
			aor, _ := z.Member.(string)
			if visited[aor] {
				continue // still due after its sweep: a writer raced us; next Sweep
			}
			visited[aor] = true
			fresh++
			swept, err := v.sweepAOR(ctx, index, aor, now)
			out = append(out, swept...)
			if err != nil {
				return out, err
			}
		}
		if fresh == 0 || len(due) < sweepBatch {
			return out, nil
		}
	}
}

// sweepAOR runs the sweep script on one AOR, then rewrites its index entry
// and re-checks it: a writer that lowered the entry between our script and
// our write would otherwise be overwritten by a later due time.
func (v bindings) sweepAOR(ctx context.Context, index, aor string, now time.Time) ([]store.Binding, error) {
	keys := v.s.keys.binding(aor)
	res, err := bindingSweep.Run(ctx, v.s.rdb, keys, v.args(now)...).Slice()
	if err != nil {
		return nil, translate(err)
	}
	due, vals, err := dueAndValues(res)
	if err != nil {
		return nil, err
	}
	swept, err := decodeBindings(vals)
	if err != nil {
		return nil, err
	}
	if due == 0 {
		err = v.s.rdb.ZRem(ctx, index, aor).Err()
	} else {
		err = v.s.rdb.ZAdd(ctx, index, goredis.Z{Score: float64(due), Member: aor}).Err()
	}
	if err != nil {
		return swept, translate(err)
	}
	again, err := bindingDue.Run(ctx, v.s.rdb, keys, v.args(now)...).Int64()
	if err == nil && again > 0 && (due == 0 || again < due) {
		err = v.index(ctx, aor, again)
	}
	return swept, translate(err)
}
