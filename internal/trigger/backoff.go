package trigger

import "time"

// minPoll is the first wait of an idle queue, as on Azure.
const minPoll = 100 * time.Millisecond

// backoff is the wait between polls of an idle queue: it starts at minPoll
// and doubles after each empty poll up to max (host.json
// maxPollingInterval); finding a message resets it, and the queue is polled
// again at once. The zero value waits minPoll each time.
type backoff struct {
	max  time.Duration
	wait time.Duration // the last wait; zero before the first
}

// next returns how long to wait after an empty poll.
func (b *backoff) next() time.Duration {
	switch {
	case b.wait == 0:
		b.wait = minPoll
	default:
		b.wait *= 2
	}
	if b.max > 0 && b.wait > b.max {
		b.wait = b.max
	}
	if b.max < minPoll && b.wait > minPoll {
		b.wait = minPoll
	}
	return b.wait
}

// reset follows a poll that found work.
func (b *backoff) reset() { b.wait = 0 }
