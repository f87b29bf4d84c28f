package store

import (
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// compactionScheduler grants the engine's compactions, one at a time (as
// many as the engine allows without permission, which is 1 with the
// store's options), with no timer of its own.
//
// Pebble's default scheduler also grants from a goroutine that wakes every
// 100 ms, in case the number the engine allows went up while no flush or
// compaction ended. With the store's options it never goes above 1, so
// those wake-ups grant nothing, and an idle store paid for them: 2.3 ms of
// CPU a second on the 2-core dev VM against 0.66 ms with this scheduler
// (BenchmarkIdleStore; its scheduler wake-ups are costly), most of what an
// idle node spends (docs/PERFORMANCE.md, "An idle node").
//
// Pebble's NewConcurrencyLimitSchedulerWithNoPeriodicGrantingForTest is
// not a substitute: without its goroutine, the grant that
// UpdateGetAllowedWithoutPermission asks for goes nowhere.
//
// The engine asks for a grant (TrySchedule) when it has a compaction to
// run; one it was refused waits, and is granted when a running compaction
// ends (Done) or the allowance rises after a flush
// (UpdateGetAllowedWithoutPermission, called under the engine's mutex:
// the grant runs on a goroutine of its own, since granting takes that
// mutex).
type compactionScheduler struct {
	db pebble.DBForCompaction // set by Register, before any other call

	mu         sync.Mutex
	running    int
	allowed    int  // the engine's allowance when last asked
	closed     bool // unregistered: grant nothing more
	granting   bool // a goroutine is granting (one at a time)
	grantDone  *sync.Cond
	grantAgain bool // asked to grant while granting: look again
}

var _ pebble.CompactionScheduler = (*compactionScheduler)(nil)

func newCompactionScheduler() *compactionScheduler {
	s := &compactionScheduler{}
	s.grantDone = sync.NewCond(&s.mu)
	return s
}

// Register is called once by the engine when it opens.
func (s *compactionScheduler) Register(_ int, db pebble.DBForCompaction) { s.db = db }

// Unregister is called once when the engine closes; after it returns, the
// scheduler calls the engine no more.
func (s *compactionScheduler) Unregister() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for s.granting {
		s.grantDone.Wait()
	}
}

// TrySchedule grants a compaction the engine wants to run now, if fewer
// than it allows are running.
func (s *compactionScheduler) TrySchedule() (bool, pebble.CompactionGrantHandle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, nil
	}
	s.allowed = s.db.GetAllowedWithoutPermission()
	if s.running >= s.allowed {
		return false, nil
	}
	s.running++
	return true, s
}

// UpdateGetAllowedWithoutPermission is called under the engine's mutex
// after a flush: if the allowance rose, a waiting compaction may be
// granted now, from another goroutine.
func (s *compactionScheduler) UpdateGetAllowedWithoutPermission() {
	allowed := s.db.GetAllowedWithoutPermission()
	s.mu.Lock()
	rose := allowed > s.allowed
	s.allowed = allowed
	s.mu.Unlock()
	if rose {
		go s.grant()
	}
}

// Started, MeasureCPU and CumulativeStats: the scheduler neither paces
// compactions nor accounts for their CPU.
func (s *compactionScheduler) Started()                                          {}
func (s *compactionScheduler) MeasureCPU(pebble.CompactionGoroutineKind)         {}
func (s *compactionScheduler) CumulativeStats(pebble.CompactionGrantHandleStats) {}

// Done is called, with no lock held, when a granted compaction ends: its
// place goes to a waiting one, if any.
func (s *compactionScheduler) Done() {
	s.mu.Lock()
	s.running--
	s.mu.Unlock()
	s.grant()
}

// grant gives the engine's waiting compactions the places its allowance
// leaves, one goroutine at a time; a call while another grants makes that
// one look again.
func (s *compactionScheduler) grant() {
	s.mu.Lock()
	if s.granting {
		s.grantAgain = true
		s.mu.Unlock()
		return
	}
	s.granting = true
	defer func() {
		s.granting = false
		s.grantDone.Broadcast()
		s.mu.Unlock()
	}()
	for again := true; again && !s.closed; {
		s.grantAgain = false
		s.allowed = s.db.GetAllowedWithoutPermission()
		for s.running < s.allowed && !s.closed {
			s.mu.Unlock()
			waiting, _ := s.db.GetWaitingCompaction()
			accepted := waiting && s.db.Schedule(s)
			s.mu.Lock()
			if !accepted {
				break
			}
			s.running++
		}
		again = s.grantAgain
	}
}
