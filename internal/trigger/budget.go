package trigger

import (
	"context"
	"sync"
)

// Trigger payloads are held in memory whole: a blob trigger's blob (read,
// then copied into the JSON request, then sent), a function's blob inputs.
// Every function of every slot shares one byte budget, so many large blobs
// at once wait for each other instead of exhausting the server's memory.
const (
	// DefaultMaxPayload is the largest blob a blob trigger passes and
	// each blob input reads when Config.MaxPayload is zero: the router's
	// default payload-mode body limit.
	DefaultMaxPayload = 8 << 20
	// DefaultMemoryBudget is Config.MemoryBudget's default.
	DefaultMemoryBudget = 256 << 20
	// payloadCopies is how many copies of a blob trigger's blob an
	// invocation holds at its peak (the bytes read, the JSON request, the
	// request body in flight).
	payloadCopies = 3
)

// budget is a weighted semaphore of bytes. A nil budget never waits.
type budget struct {
	mu    sync.Mutex
	total int64
	used  int64
	freed chan struct{} // closed, and replaced, whenever bytes are released
}

func newBudget(total int64) *budget {
	return &budget{total: total, freed: make(chan struct{})}
}

// acquire takes n bytes (at most the whole budget, so one payload larger
// than it runs alone), waiting until they are free or ctx ends. It returns
// what it took, to hand to release.
func (b *budget) acquire(ctx context.Context, n int64) (int64, error) {
	if b == nil || n <= 0 {
		return 0, nil
	}
	n = min(n, b.total)
	for {
		b.mu.Lock()
		if b.used+n <= b.total {
			b.used += n
			b.mu.Unlock()
			return n, nil
		}
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-freed:
		}
	}
}

func (b *budget) release(n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}
