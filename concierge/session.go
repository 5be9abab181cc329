package concierge

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// sessions hold what a conversation carries from turn to turn: the
// previous question (its terms help a short follow-up such as "and
// walnut?") and the options of a pending clarification. They live in
// memory, bounded in number, and expire after an idle time. The gateway
// counts turns and tokens; this only remembers context. A lost session
// (another instance, a restart, expiry) is not an error: a clarification
// answer is then read as a refinement of the question.
type sessions struct {
	mu   sync.Mutex
	m    map[string]*session
	max  int
	idle time.Duration
	now  func() time.Time
	// lastSweep is when evict last walked the whole map for expired
	// sessions; under a flood of new sessions it only samples in between.
	lastSweep time.Time
}

type session struct {
	lastUsed time.Time
	// query is the question of the last turn; terms its index terms.
	query string
	terms []string
	// options and targets are a pending clarification's choices and the
	// sections they stand for.
	options []string
	targets []target
}

// target names one section of one page, by path and section number, so
// that it survives an index rebuild as long as the page does.
type target struct {
	path    string
	section int32
	heading string
}

func newSessions(max int, idle time.Duration, now func() time.Time) *sessions {
	return &sessions{m: make(map[string]*session), max: max, idle: idle, now: now}
}

// get returns a copy of the session's state, or ok false.
func (s *sessions) get(id string) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[id]
	if !ok {
		return session{}, false
	}
	if s.now().Sub(st.lastUsed) > s.idle {
		delete(s.m, id)
		return session{}, false
	}
	return *st, true
}

// put stores the session's state after a turn.
func (s *sessions) put(id string, st session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	st.lastUsed = now
	if cur, ok := s.m[id]; ok {
		*cur = st
		return
	}
	if len(s.m) >= s.max {
		s.evict(now)
	}
	s.m[id] = &st
}

// evict makes room: every expired session goes (at most once per tenth
// of the idle time: the walk is O(sessions)); if that freed nothing, the
// least recently used of a sample of 32 (map order is random enough to
// sample).
func (s *sessions) evict(now time.Time) {
	if now.Sub(s.lastSweep) > s.idle/10 {
		s.lastSweep = now
		for id, st := range s.m {
			if now.Sub(st.lastUsed) > s.idle {
				delete(s.m, id)
			}
		}
		if len(s.m) < s.max {
			return
		}
	}
	var oldest string
	var oldestAt time.Time
	n := 0
	for id, st := range s.m {
		if oldest == "" || st.lastUsed.Before(oldestAt) {
			oldest, oldestAt = id, st.lastUsed
		}
		if n++; n == 32 {
			break
		}
	}
	delete(s.m, oldest)
}

func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// newSessionID returns 128 random bits in hex.
func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail (Go 1.24+)
	return hex.EncodeToString(b[:])
}
