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

// Keys of the contacts domain, under the user's tag so that they share a
// slot with the event log (<p>{u:<user>}):
//
//	:c   HASH   contact ID -> contact JSON (tombstones included)
//	:cm  HASH   contact ID -> "L|<version>|<created>" live or "D|…" deleted
//	:cn  STRING live contacts
//	:i   HASH   interaction key -> interaction JSON
//	:it  ZSET   interaction key -> last interaction (ms), for eviction
//
// Apply reads the metadata of the contacts it touches, decides in Go
// (versions, tombstones, the JSON to store and the change events), then
// runs contactApply, which re-checks that metadata (compare-and-set),
// checks the limit, and writes the contacts, appends their events to the
// log exactly as eventAppend does (INCR, XADD with MAXLEN, trim of the ID
// index, PUBLISH) and updates the counter, all in one script. A CAS miss
// (a concurrent writer) makes Apply read again and retry.
const applyRetries = 16

func (k keys) contacts(user string) []string {
	tag := k.prefix + "{u:" + user + "}"
	return []string{tag + ":seq", tag + ":log", tag + ":ids", tag + ":c", tag + ":cm", tag + ":cn"}
}

func (k keys) interactions(user string) []string {
	tag := k.prefix + "{u:" + user + "}"
	return []string{tag + ":i", tag + ":it"}
}

// contacts implements store.Contacts.
type contacts struct{ s *Store }

// Contacts returns the address-book view.
func (s *Store) Contacts() store.Contacts { return contacts{s} }

// contactApply: KEYS = :seq, :log, :ids, :c, :cm, :cn. ARGV[1]=MaxEvents,
// ARGV[2]=wake channel, ARGV[3]=limit (0: none), ARGV[4]=live delta,
// ARGV[5]=op count, then per op 6 values: id, check ("1": compare :cm),
// expected :cm value ("" none), new :cm value, contact JSON (its "seq" is
// appended here), event JSON. Returns {seq…}, {-1} on a CAS miss, {-2}
// over the limit.
var contactApply = goredis.NewScript(`
local n = tonumber(ARGV[5])
for i = 0, n - 1 do
  local b = 6 + i * 6
  if ARGV[b + 1] == '1' then
    local cur = redis.call('HGET', KEYS[5], ARGV[b]) or ''
    if cur ~= ARGV[b + 2] then return {-1} end
  end
end
local live = tonumber(redis.call('GET', KEYS[6]) or '0')
local delta = tonumber(ARGV[4])
local limit = tonumber(ARGV[3])
if limit > 0 and delta > 0 and live + delta > limit then return {-2} end
local seqs = {}
local seq = 0
for i = 0, n - 1 do
  local b = 6 + i * 6
  seq = redis.call('INCR', KEYS[1])
  redis.call('XADD', KEYS[2], 'MAXLEN', '=', ARGV[1], '0-' .. seq, 'e', ARGV[b + 5])
  local json = ARGV[b + 4]
  redis.call('HSET', KEYS[4], ARGV[b], string.sub(json, 1, -2) .. ',"seq":' .. string.format('%d', seq) .. '}')
  redis.call('HSET', KEYS[5], ARGV[b], ARGV[b + 3])
  seqs[#seqs + 1] = seq
end
local cut = seq - tonumber(ARGV[1])
if cut > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', string.format('%d', cut)) end
redis.call('SET', KEYS[6], string.format('%d', live + delta))
if n > 0 then redis.call('PUBLISH', ARGV[2], seq) end
return seqs
`)

// contactList: KEYS = :seq, :c. Returns {seq, json…} read at one instant.
var contactList = goredis.NewScript(`
local out = {tonumber(redis.call('GET', KEYS[1]) or '0')}
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do out[#out + 1] = v end
return out
`)

// interactionPut: KEYS = :i, :it. ARGV[1]=key, ARGV[2]=expected JSON (""
// none), ARGV[3]=new JSON, ARGV[4]=last ms, ARGV[5]=max keys (0: no cap).
// Returns 1, or 0 on a CAS miss. Over the cap, the least recent other
// keys are dropped.
var interactionPut = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if cur ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
local max = tonumber(ARGV[5])
if max > 0 then
  local over = redis.call('ZCARD', KEYS[2]) - max
  if over > 0 then
    for _, k in ipairs(redis.call('ZRANGE', KEYS[2], 0, over)) do
      if over > 0 and k ~= ARGV[1] then
        redis.call('ZREM', KEYS[2], k)
        redis.call('HDEL', KEYS[1], k)
        over = over - 1
      end
    end
  end
end
return 1
`)

type contactMeta struct {
	live    bool
	version uint64
	created time.Time
	raw     string // as stored; "" when never written
}

func parseMeta(raw string) (contactMeta, error) {
	if raw == "" {
		return contactMeta{}, nil
	}
	parts := strings.SplitN(raw, "|", 3)
	if len(parts) != 3 {
		return contactMeta{}, fmt.Errorf("corrupt contact metadata %q", raw)
	}
	v, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		return contactMeta{}, fmt.Errorf("corrupt contact metadata %q", raw)
	}
	created, err := time.Parse(time.RFC3339Nano, parts[2])
	if err != nil {
		return contactMeta{}, fmt.Errorf("corrupt contact metadata %q", raw)
	}
	return contactMeta{live: parts[0] == "L", version: v, created: created, raw: raw}, nil
}

func (m contactMeta) format() string {
	state := "D"
	if m.live {
		state = "L"
	}
	return state + "|" + strconv.FormatUint(m.version, 10) + "|" + m.created.UTC().Format(time.RFC3339Nano)
}

func decodeContact(raw string) (store.Contact, error) {
	var c store.Contact
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return c, fmt.Errorf("decode contact: %w", err)
	}
	return c, nil
}

// Get returns one contact, tombstones included; store.ErrNotFound if never written.
func (v contacts) Get(ctx context.Context, user, id string) (store.Contact, error) {
	raw, err := v.s.rdb.HGet(ctx, v.s.keys.contacts(user)[3], id).Result()
	if err != nil {
		return store.Contact{}, fmt.Errorf("redis: get contact %s/%s: %w", user, id, translate(err))
	}
	c, err := decodeContact(raw)
	if err != nil {
		return c, fmt.Errorf("redis: get contact %s/%s: %w", user, id, err)
	}
	return c, nil
}

// GetMany returns the contacts of ids that exist, in the order of ids.
func (v contacts) GetMany(ctx context.Context, user string, ids []string) ([]store.Contact, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	vals, err := v.s.rdb.HMGet(ctx, v.s.keys.contacts(user)[3], ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: get contacts of %s: %w", user, translate(err))
	}
	out := make([]store.Contact, 0, len(vals))
	for _, val := range vals {
		raw, ok := val.(string)
		if !ok {
			continue
		}
		c, err := decodeContact(raw)
		if err != nil {
			return nil, fmt.Errorf("redis: get contacts of %s: %w", user, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// List returns the live contacts and the event-log sequence, read by one script.
func (v contacts) List(ctx context.Context, user string) ([]store.Contact, uint64, error) {
	k := v.s.keys.contacts(user)
	res, err := contactList.Run(ctx, v.s.rdb, []string{k[0], k[3]}).Slice()
	if err != nil {
		return nil, 0, fmt.Errorf("redis: list contacts of %s: %w", user, translate(err))
	}
	if len(res) == 0 {
		return nil, 0, fmt.Errorf("redis: list contacts of %s: empty script reply", user)
	}
	seq, _ := res[0].(int64)
	out := make([]store.Contact, 0, len(res)-1)
	for _, val := range res[1:] {
		raw, _ := val.(string)
		c, err := decodeContact(raw)
		if err != nil {
			return nil, 0, fmt.Errorf("redis: list contacts of %s: %w", user, err)
		}
		if !c.Deleted {
			out = append(out, c)
		}
	}
	return out, uint64(seq), nil
}

// Count returns the number of live contacts.
func (v contacts) Count(ctx context.Context, user string) (int, error) {
	n, err := v.s.rdb.Get(ctx, v.s.keys.contacts(user)[5]).Int()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redis: count contacts of %s: %w", user, translate(err))
	}
	return n, nil
}

// Apply performs ops atomically with their change events; see store.Contacts.
func (v contacts) Apply(ctx context.Context, user string, ops []store.ContactOp, limit int) ([]store.Contact, error) {
	if user == "" {
		return nil, fmt.Errorf("redis: apply contacts: %w: contacts need a user", store.ErrInvalid)
	}
	for _, op := range ops {
		if err := op.Contact.Validate(); err != nil {
			return nil, fmt.Errorf("redis: apply contacts of %s: %w", user, err)
		}
	}
	for range applyRetries {
		out, retry, err := v.tryApply(ctx, user, ops, limit)
		if err != nil {
			return nil, fmt.Errorf("redis: apply contacts of %s: %w", user, err)
		}
		if !retry {
			return out, nil
		}
	}
	return nil, fmt.Errorf("redis: apply contacts of %s: still contended after %d tries: %w", user, applyRetries, store.ErrConflict)
}

// tryApply is one optimistic round of Apply; retry reports a CAS miss.
func (v contacts) tryApply(ctx context.Context, user string, ops []store.ContactOp, limit int) (out []store.Contact, retry bool, err error) {
	k := v.s.keys.contacts(user)
	ids := make([]string, 0, len(ops))
	for _, op := range ops {
		ids = append(ids, op.Contact.ID)
	}
	metas := map[string]contactMeta{}
	if len(ids) > 0 {
		vals, err := v.s.rdb.HMGet(ctx, k[4], ids...).Result()
		if err != nil {
			return nil, false, translate(err)
		}
		for i, val := range vals {
			raw, _ := val.(string)
			if metas[ids[i]], err = parseMeta(raw); err != nil {
				return nil, false, err
			}
		}
	}
	now := time.Now().UTC()
	args := []any{v.s.cfg.MaxEvents, v.s.keys.wake(user), limit, 0, len(ops)}
	checked := map[string]bool{}
	delta := 0
	for _, op := range ops {
		id := op.Contact.ID
		cur := metas[id]
		var c store.Contact
		switch {
		case op.Delete && !cur.live:
			return nil, false, fmt.Errorf("contact %s: %w", id, store.ErrNotFound)
		case op.Delete && cur.version != op.Expect:
			return nil, false, fmt.Errorf("contact %s at version %d, not %d: %w", id, cur.version, op.Expect, store.ErrConflict)
		case op.Delete:
			c = store.Contact{ID: id, Version: cur.version + 1, Deleted: true, MergedInto: op.Contact.MergedInto,
				Created: cur.created, Updated: now}
			delta--
		case op.Expect == 0 && cur.live:
			return nil, false, fmt.Errorf("contact %s: %w", id, store.ErrExists)
		case op.Expect == 0:
			c = op.Contact
			c.Version, c.Created = cur.version+1, now // after a tombstone, versions go on
			delta++
		case !cur.live:
			return nil, false, fmt.Errorf("contact %s: %w", id, store.ErrNotFound)
		case cur.version != op.Expect:
			return nil, false, fmt.Errorf("contact %s at version %d, not %d: %w", id, cur.version, op.Expect, store.ErrConflict)
		default:
			c = op.Contact
			c.Version, c.Created = cur.version+1, cur.created
		}
		if !c.Deleted {
			c.Deleted, c.MergedInto = false, ""
			c.Updated = now
		}
		c.Seq = 0 // appended by the script
		contactJSON, err := json.Marshal(c)
		if err != nil {
			return nil, false, err
		}
		change, err := json.Marshal(store.ContactChange{ID: c.ID, Version: c.Version, MergedInto: c.MergedInto})
		if err != nil {
			return nil, false, err
		}
		typ := store.EventContactUpsert
		if c.Deleted {
			typ = store.EventContactDelete
		}
		eventJSON, err := json.Marshal(store.Event{Type: typ, Time: now, Data: change})
		if err != nil {
			return nil, false, err
		}
		next := contactMeta{live: !c.Deleted, version: c.Version, created: c.Created}
		check := "0"
		if !checked[id] {
			checked[id], check = true, "1"
		}
		args = append(args, id, check, cur.raw, next.format(), contactJSON, eventJSON)
		metas[id] = contactMeta{live: next.live, version: next.version, created: next.created, raw: next.format()}
		out = append(out, c)
	}
	args[3] = delta
	res, err := contactApply.Run(ctx, v.s.rdb, k, args...).Int64Slice()
	if err != nil {
		return nil, false, translate(err)
	}
	switch {
	case len(res) == 1 && res[0] == -1:
		return nil, true, nil
	case len(res) == 1 && res[0] == -2:
		return nil, false, store.ErrContactLimit
	case len(res) != len(ops):
		return nil, false, fmt.Errorf("unexpected script reply %v", res)
	}
	for i := range out {
		out[i].Seq = uint64(res[i])
	}
	return out, false, nil
}

// RecordInteraction adds n interactions; see store.Contacts.
func (v contacts) RecordInteraction(ctx context.Context, user, key string, at time.Time, n int, halfLife time.Duration, maxKeys int) (store.Interaction, error) {
	if user == "" || key == "" {
		return store.Interaction{}, fmt.Errorf("redis: record interaction: %w: interaction needs a user and a key", store.ErrInvalid)
	}
	if n < 1 {
		return store.Interaction{}, fmt.Errorf("redis: record interaction: %w: interaction count must be at least 1", store.ErrInvalid)
	}
	k := v.s.keys.interactions(user)
	for range applyRetries {
		old, err := v.s.rdb.HGet(ctx, k[0], key).Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return store.Interaction{}, fmt.Errorf("redis: record interaction of %s: %w", user, translate(err))
		}
		rec := store.Interaction{Key: key}
		if old != "" {
			if err := json.Unmarshal([]byte(old), &rec); err != nil {
				return store.Interaction{}, fmt.Errorf("redis: record interaction of %s: decode: %w", user, err)
			}
		}
		rec = store.NextInteraction(rec, at, n, halfLife)
		data, err := json.Marshal(rec)
		if err != nil {
			return store.Interaction{}, fmt.Errorf("redis: record interaction of %s: %w", user, err)
		}
		ok, err := interactionPut.Run(ctx, v.s.rdb, k, key, old, data, rec.Last.UnixMilli(), max(maxKeys, 0)).Int()
		if err != nil {
			return store.Interaction{}, fmt.Errorf("redis: record interaction of %s: %w", user, translate(err))
		}
		if ok == 1 {
			return rec, nil
		}
	}
	return store.Interaction{}, fmt.Errorf("redis: record interaction of %s: still contended after %d tries: %w", user, applyRetries, store.ErrConflict)
}

// Interactions returns every interaction record of user.
func (v contacts) Interactions(ctx context.Context, user string) ([]store.Interaction, error) {
	vals, err := v.s.rdb.HVals(ctx, v.s.keys.interactions(user)[0]).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: interactions of %s: %w", user, translate(err))
	}
	out := make([]store.Interaction, 0, len(vals))
	for _, raw := range vals {
		var r store.Interaction
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return nil, fmt.Errorf("redis: interactions of %s: decode: %w", user, err)
		}
		out = append(out, r)
	}
	return out, nil
}
