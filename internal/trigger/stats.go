package trigger

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotswap/hotswap/internal/azstorage"
)

// Trigger states, as GET /admin/functions and the portal show them.
const (
	StateListening   = "listening"    // the last poll found work
	StateIdle        = "idle"         // the last poll found none
	StateFailing     = "failing"      // the last poll failed; Error says why
	StateDisabled    = "disabled"     // AzureWebJobs.<name>.Disabled in the slot
	StateNotRunnable = "not runnable" // e.g. its connection setting is missing; Error says why
)

// State is what a trigger of one function in one slot is doing.
type State struct {
	Function    string `json:"function"`
	Trigger     string `json:"trigger"`         // funcapp.TriggerQueue or funcapp.TriggerBlob
	Queue       string `json:"queue,omitempty"` // queue triggers
	Path        string `json:"path,omitempty"`  // blob triggers: the path pattern
	State       string `json:"state"`
	Error       string `json:"error,omitempty"` // why it is failing or not runnable; the last failure otherwise
	Note        string `json:"note,omitempty"`  // e.g. "queue work does not exist yet"
	Invocations int64  `json:"invocations"`     // succeeded or failed, since the listener started
	Failures    int64  `json:"failures"`
	Poisoned    int64  `json:"poisoned"` // messages moved to the poison queue, or blobs reported to webjobs-blobtrigger-poison
	// QueueLength and OldestMessageAge are the queue's approximate length
	// and the age of its oldest visible message, as last measured (queue
	// triggers; nil before the first measure).
	QueueLength      *int64  `json:"queueLength,omitempty"`
	OldestMessageAge *string `json:"oldestMessageAge,omitempty"`
	// SharedWith are the app's other slots whose listeners take work from
	// the same queue (or container and path): staging competing with
	// production for its messages, when the connection setting is not a
	// slot setting.
	SharedWith []string `json:"sharedWith,omitempty"`
}

// Stats counts one queue function's work; safe for concurrent use.
type Stats struct {
	invocations, failures, poison atomic.Int64

	mu       sync.Mutex
	tried    time.Time // when the queue's measure was last tried
	measured time.Time // when the queue was last measured; zero: never
	length   int64     // messages in the queue, approximately
	oldest   time.Time // insertion time of the oldest visible message; zero: none
	idle     bool
	pollErr  string // the last poll's error; "" when it worked
	lastFail string
	note     string
}

// polled records a poll that worked; recovered is true when the one
// before it failed.
func (s *Stats) polled(n int) (recovered bool) {
	s.mu.Lock()
	recovered = s.pollErr != ""
	s.idle, s.pollErr = n == 0, ""
	s.mu.Unlock()
	return recovered
}

// failPoll records a failed poll; first is true when the one before it
// worked.
func (s *Stats) failPoll(err error) (first bool) {
	s.mu.Lock()
	first = s.pollErr == ""
	s.pollErr = azstorage.Redact(err).Error()
	s.mu.Unlock()
	return first
}

func (s *Stats) setNote(n string) {
	s.mu.Lock()
	s.note = n
	s.mu.Unlock()
}

func (s *Stats) succeeded() { s.invocations.Add(1) }

func (s *Stats) failed(err error) {
	s.invocations.Add(1)
	s.failures.Add(1)
	s.mu.Lock()
	s.lastFail = azstorage.Redact(err).Error()
	s.mu.Unlock()
}

func (s *Stats) poisoned() { s.poison.Add(1) }

// state fills st from the counters.
func (s *Stats) state(st *State) {
	st.Invocations, st.Failures, st.Poisoned = s.invocations.Load(), s.failures.Load(), s.poison.Load()
	if n, age, ok := s.queue(); ok {
		st.QueueLength = &n
		if age > 0 {
			a := age.Round(time.Second).String()
			st.OldestMessageAge = &a
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Note, st.Error = s.note, s.lastFail
	switch {
	case s.pollErr != "":
		st.State, st.Error = StateFailing, s.pollErr
	case s.idle:
		st.State = StateIdle
	default:
		st.State = StateListening
	}
}

// measureDue reports whether the queue should be measured again, and if so
// marks it tried now.
func (s *Stats) measureDue(now time.Time, every time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.tried.IsZero() && now.Sub(s.tried) < every {
		return false
	}
	s.tried = now
	return true
}

func (s *Stats) setQueue(n int64, oldest time.Time) {
	s.mu.Lock()
	s.length, s.oldest, s.measured = n, oldest, time.Now()
	s.mu.Unlock()
}

// queue returns the last measured length and age of the oldest message;
// ok is false before the first measure.
func (s *Stats) queue() (n int64, age time.Duration, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.measured.IsZero() {
		return 0, 0, false
	}
	if !s.oldest.IsZero() {
		age = time.Since(s.oldest)
	}
	return s.length, age, true
}
