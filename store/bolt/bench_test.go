package bolt

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convergo/convergo/store"
)

func BenchmarkAppend(b *testing.B) {
	e := store.Event{Type: "message.in", Data: []byte(`{"from":"sip:bob@example.net","body":"hello"}`)}
	b.Run("serial", func(b *testing.B) {
		l := openTemp(b, Config{}).Events()
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := l.Append(b.Context(), "alice", e); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	})
	b.Run("parallel", func(b *testing.B) {
		l := openTemp(b, Config{}).Events()
		var users atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			user := fmt.Sprintf("user%d", users.Add(1)%4) // some contention per user
			for pb.Next() {
				if _, _, err := l.Append(b.Context(), user, e); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	})
}

func BenchmarkBindingPut(b *testing.B) {
	bs := openTemp(b, Config{}).Bindings()
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		aor := fmt.Sprintf("sip:user%d@example.net", i%1000)
		key := fmt.Sprintf("urn:uuid:%d", i%3)
		err := bs.Put(b.Context(), store.Binding{
			AOR: aor, Key: key, Contact: "sip:" + key + "@192.0.2.1:5060",
			Expires: now.Add(time.Hour + time.Duration(i)*time.Millisecond), Transport: "tcp",
		})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
}
