package p2p

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
)

// BenchmarkRendezvousQuery measures what one GET_PROVIDERS for the
// rendezvous costs the store under kad-dht: its query, with the store full
// (1,024 records), answering maxServedProviders of them. The store alone,
// in memory, as the node runs it; not kad-dht's handling around it.
//
//	go test -run '^$' -bench RendezvousQuery -benchtime 2000x ./internal/p2p
func BenchmarkRendezvousQuery(b *testing.B) {
	key := []byte("rendezvous-key")
	s := newRendezvousStore(key, 1024)
	for i := range 1024 {
		v := binary.AppendVarint(nil, time.Now().UnixNano())
		_ = s.Put(context.Background(), ds.NewKey(s.prefix+fmt.Sprintf("peer%04d", i)), append(v, make([]byte, 80)...))
	}
	q := dsq.Query{Prefix: s.prefix[:len(s.prefix)-1]}
	b.ReportAllocs()
	for b.Loop() {
		r, _ := s.Query(context.Background(), q)
		n := 0
		for range r.Next() {
			n++
		}
		_ = r.Close()
		if n != maxServedProviders {
			b.Fatal(n)
		}
	}
}
