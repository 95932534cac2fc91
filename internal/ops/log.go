package ops

import (
	"sync"
	"time"
)

// LogLine is one line of a slot's log.
type LogLine struct {
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"` // stdout, stderr, host, or a function name for handler Logs
	Text   string    `json:"text"`
}

// ring keeps the last lines of a slot's log in memory.
type ring struct {
	mu    sync.Mutex
	lines []LogLine
	next  int
	full  bool
}

const ringSize = 1000

func newRing() *ring { return &ring{lines: make([]LogLine, ringSize)} }

func (r *ring) add(stream, text string) {
	if len(text) > 8<<10 {
		text = text[:8<<10] + "…"
	}
	r.mu.Lock()
	r.lines[r.next] = LogLine{Time: time.Now().UTC(), Stream: stream, Text: text}
	r.next = (r.next + 1) % len(r.lines)
	if r.next == 0 {
		r.full = true
	}
	r.mu.Unlock()
}

// tail returns the last n lines, oldest first.
func (r *ring) tail(n int) []LogLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	size := r.next
	if r.full {
		size = len(r.lines)
	}
	if n > size {
		n = size
	}
	out := make([]LogLine, 0, n)
	for i := size - n; i < size; i++ {
		idx := i
		if r.full {
			idx = (r.next + i) % len(r.lines)
		}
		out = append(out, r.lines[idx])
	}
	return out
}
