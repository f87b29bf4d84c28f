package store

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkIdleStore reports what an open store with nothing to do costs
// the process, in CPU milliseconds a second (getrusage, user and system, over
// b.N seconds of sleep; the store's own timers and Pebble's). PERFORMANCE.md
// ("An idle node"):
//
//	go test -run '^$' -bench IdleStore -benchtime 10x ./internal/store
func BenchmarkIdleStore(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "chain"), testParams())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	time.Sleep(time.Second) // past the opening's own work
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ResetTimer()
	c0 := cpu()
	for range b.N {
		time.Sleep(time.Second)
	}
	b.ReportMetric(float64(cpu()-c0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/s")
}
