package trigger

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/queueerror"

	"github.com/hotswap/hotswap/internal/azstorage"
	"github.com/hotswap/hotswap/internal/funcapp"
)

// Queue triggers follow the Azure Functions host (Storage Queues extension):
//
//   - A poll fetches up to batchSize messages and hides them for
//     the lease (10 minutes); their invocations run concurrently. The next batch is
//     fetched at once while at most newBatchThreshold invocations run, so
//     at most batchSize+newBatchThreshold run at a time.
//   - An empty poll waits 100ms, doubling after each further empty poll up
//     to maxPollingInterval (backoff); a poll that finds work resets it.
//   - A message is deleted only after its invocation succeeded and its
//     outputs were written. A failed one is made visible again after
//     visibilityTimeout; when it has been dequeued maxDequeueCount times
//     it is copied to <queue>-poison and deleted instead. A message that
//     arrives having been dequeued more often than that (a crash in the
//     middle of its last try) moves there without a try.
//   - A message fetched while its listener stops, or cut off by the
//     server's shutdown, is made visible again at once: it is not lost,
//     and it does not count as a failure.

// DefaultLease is how long a fetched message stays hidden while its
// invocation runs (invoke.DefaultTimeout is 5 minutes), as on Azure: a
// message whose try a crash cut off is visible again after it.
const DefaultLease = 10 * time.Minute

// storageTimeout bounds one call to the queue service.
const storageTimeout = 30 * time.Second

// errNotRun is returned by a handle func that did not try the message (its
// process set is retiring): the message is made visible again at once.
var errNotRun = errors.New("not run: the process set is retiring")

// message is one dequeued queue message.
type message struct {
	ID, PopReceipt string
	Raw            string // the text as stored, encoded per messageEncoding
	Text           []byte // the decoded text; nil when DecodeErr is set
	DecodeErr      error
	DequeueCount   int64
	Inserted       time.Time
	Expires        time.Time
	NextVisible    time.Time
}

// poller pulls one queue for one function.
type poller struct {
	fn     string // function name, for messages
	queue  string
	q      *azqueue.QueueClient
	poison *azqueue.QueueClient // <queue>-poison
	opts   funcapp.QueueOptions
	lease  time.Duration // zero: DefaultLease
	handle func(ctx context.Context, m *message) error
	log    func(line string) // the slot's host log
	stats  *Stats
	// ready tells how long to wait before fetching: zero while the set's
	// handler is up (readyWait); nil is always ready.
	ready func() time.Duration
	// notRun is shared by every poller of the Manager: a message released
	// untried by a retiring set's poller is taken by the next set's.
	notRun *notRunCounts
}

// run polls until pull ends, dispatching each message to its own goroutine
// counted in wg. Invocations run under work, which ends only at the
// server's shutdown, so stopping the pull never cuts one off.
func (p *poller) run(pull, work context.Context, wg *sync.WaitGroup) {
	var running atomic.Int64
	done := make(chan struct{}, 1)
	b := backoff{max: p.opts.MaxPollingInterval}
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-pull.Done():
			return false
		case <-t.C:
			return true
		}
	}
	threshold := int64(p.opts.NewBatchThreshold)
	for pull.Err() == nil {
		for running.Load() > threshold {
			select {
			case <-pull.Done():
				return
			case <-done:
			}
		}
		for p.ready != nil {
			d := p.ready()
			if d == 0 {
				break
			}
			if !wait(d) {
				return
			}
		}
		p.measure(work)
		msgs, err := p.fetch(work)
		if err != nil {
			if work.Err() != nil {
				return
			}
			if p.stats.failPoll(err) {
				p.log(fmt.Sprintf("queue function %s is failing: %v (retrying, backing off up to %s)", p.fn, err, p.opts.MaxPollingInterval))
			}
			if !wait(b.next()) {
				return
			}
			continue
		}
		if p.stats.polled(len(msgs)) {
			p.log(fmt.Sprintf("queue function %s polls queue %s again", p.fn, p.queue))
		}
		if len(msgs) == 0 {
			if !wait(b.next()) {
				return
			}
			continue
		}
		b.reset()
		for _, m := range msgs {
			if pull.Err() != nil {
				// Fetched across the flip: not run by this set.
				wg.Add(1)
				go func() {
					defer wg.Done()
					p.releaseNotRun(work, m, 0)
				}()
				continue
			}
			running.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					running.Add(-1)
					select {
					case done <- struct{}{}:
					default:
					}
				}()
				p.process(work, m)
			}()
		}
	}
}

// fetch dequeues up to a batch. A queue that does not exist yet is empty.
// The call is not tied to the pull: a fetch that returns after the
// listener stopped still hands its messages on (they are released at once).
func (p *poller) fetch(work context.Context) ([]*message, error) {
	lease := p.leaseTime()
	ctx, cancel := context.WithTimeout(work, storageTimeout)
	defer cancel()
	resp, err := p.q.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{
		NumberOfMessages:  ptr(int32(p.opts.BatchSize)),
		VisibilityTimeout: ptr(int32(lease / time.Second)),
	})
	if queueerror.HasCode(err, queueerror.QueueNotFound) {
		p.stats.setNote(fmt.Sprintf("queue %s does not exist yet", p.queue))
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("poll queue %s: %w", p.queue, azstorage.Redact(err))
	}
	p.stats.setNote("")
	msgs := make([]*message, 0, len(resp.Messages))
	for _, dm := range resp.Messages {
		m := &message{
			ID: deref(dm.MessageID), PopReceipt: deref(dm.PopReceipt), Raw: deref(dm.MessageText),
			DequeueCount: deref(dm.DequeueCount), Inserted: deref(dm.InsertionTime),
			Expires: deref(dm.ExpirationTime), NextVisible: deref(dm.TimeNextVisible),
		}
		if p.opts.Base64 {
			m.Text, m.DecodeErr = base64.StdEncoding.DecodeString(m.Raw)
			if m.DecodeErr != nil {
				m.Text, m.DecodeErr = nil, fmt.Errorf("message %s is not base64 text (host.json extensions.queues.messageEncoding is base64; set it to none for plain text)", m.ID)
			}
		} else {
			m.Text = []byte(m.Raw)
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// process runs one message and settles it: deleted, made visible again or
// moved to the poison queue.
func (p *poller) process(work context.Context, m *message) {
	max := int64(p.opts.MaxDequeueCount)
	tries := p.notRun.tries(m.ID, m.DequeueCount) // dequeues that ran, this one included
	if tries > max {
		p.notRun.forget(m.ID)
		p.log(fmt.Sprintf("queue function %s: message %s was tried %d times (maxDequeueCount %d); moving it to %s-poison", p.fn, m.ID, tries-1, max, p.queue))
		p.moveToPoison(work, m)
		return
	}
	err := m.DecodeErr
	if err == nil {
		err = p.handleLeased(work, m)
	}
	switch {
	case err == nil:
		p.stats.succeeded()
		p.notRun.forget(m.ID)
		p.settle(work, "delete", func(ctx context.Context) error {
			_, err := p.q.DeleteMessage(ctx, m.ID, m.PopReceipt, nil)
			return err
		})
	case errors.Is(err, errNotRun):
		if nr := (*notRunError)(nil); errors.As(err, &nr) && nr.cut {
			p.log(fmt.Sprintf("queue function %s: message %s %s; visible again at once, not counted as a try", p.fn, m.ID, nr.why))
		}
		p.releaseNotRun(work, m, retryDelay(err)) // not tried
	case work.Err() != nil:
		p.log(fmt.Sprintf("queue function %s: message %s cut off by the shutdown, visible again at once: %v", p.fn, m.ID, err))
		p.releaseNotRun(work, m, 0)
	default:
		p.stats.failed(err)
		if tries >= max {
			p.notRun.forget(m.ID)
			p.log(fmt.Sprintf("queue function %s failed on message %s (try %d of %d), moving it to %s-poison: %v", p.fn, m.ID, tries, max, p.queue, err))
			p.moveToPoison(work, m)
			return
		}
		p.log(fmt.Sprintf("queue function %s failed on message %s (try %d of %d), it is tried again in %s: %v", p.fn, m.ID, tries, max, p.opts.VisibilityTimeout, err))
		p.release(work, m, p.opts.VisibilityTimeout)
	}
}

// handleLeased runs the function on m while keeping m hidden: every third
// of a lease its visibility is extended by a lease (the Azure host renews
// at half; a third leaves room for a slow storage call), so a long
// invocation is not run a second time by another listener. m's pop
// receipt is updated once the function returned.
func (p *poller) handleLeased(work context.Context, m *message) error {
	lease := p.leaseTime()
	receipt := m.PopReceipt
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			select {
			case <-stop: // both were ready: the function has returned
				return
			default:
			}
			// A renewal under way is not cancelled when the function
			// returns: one the service applied but whose answer was
			// dropped would leave a stale receipt, and the message's
			// delete or release would then fail, hiding it for a lease.
			c, cancel := context.WithTimeout(context.WithoutCancel(work), storageTimeout)
			resp, err := p.q.UpdateMessage(c, m.ID, receipt, m.Raw, &azqueue.UpdateMessageOptions{VisibilityTimeout: ptr(int32(lease / time.Second))})
			cancel()
			if err == nil && resp.PopReceipt != nil {
				receipt = *resp.PopReceipt
			} else if err != nil {
				p.log(fmt.Sprintf("queue function %s: extend the lease of message %s: %v", p.fn, m.ID, azstorage.Redact(err)))
			}
		}
	}()
	err := p.handle(work, m)
	close(stop)
	<-renewed
	m.PopReceipt = receipt
	return err
}

// leaseTime is how long a fetched message stays hidden.
func (p *poller) leaseTime() time.Duration {
	if p.lease < time.Second {
		return DefaultLease
	}
	return p.lease
}

// releaseNotRun makes m, which was not tried, visible again after d; its
// dequeue does not count towards maxDequeueCount.
func (p *poller) releaseNotRun(work context.Context, m *message, d time.Duration) {
	p.notRun.add(m.ID)
	p.release(work, m, d)
}

// release makes m visible again after d, keeping its content.
func (p *poller) release(work context.Context, m *message, d time.Duration) {
	p.settle(work, "release", func(ctx context.Context) error {
		_, err := p.q.UpdateMessage(ctx, m.ID, m.PopReceipt, m.Raw, &azqueue.UpdateMessageOptions{VisibilityTimeout: ptr(int32(d / time.Second))})
		return err
	})
}

// moveToPoison copies m to <queue>-poison (created when missing), then
// deletes it: at worst a crash between the two leaves a copy in both.
func (p *poller) moveToPoison(work context.Context, m *message) {
	p.stats.poisoned()
	ok := p.settle(work, "copy to the poison queue", func(ctx context.Context) error {
		_, err := p.poison.EnqueueMessage(ctx, m.Raw, nil)
		if queueerror.HasCode(err, queueerror.QueueNotFound) {
			if _, err := p.poison.Create(ctx, nil); err != nil && !queueerror.HasCode(err, queueerror.QueueAlreadyExists) {
				return err
			}
			_, err = p.poison.EnqueueMessage(ctx, m.Raw, nil)
		}
		return err
	})
	if !ok {
		return
	}
	p.settle(work, "delete", func(ctx context.Context) error {
		_, err := p.q.DeleteMessage(ctx, m.ID, m.PopReceipt, nil)
		return err
	})
}

// settle runs a storage call that must finish even during the shutdown,
// within storageTimeout, and logs its failure. The message then reappears
// after its lease: processed again, never lost.
func (p *poller) settle(work context.Context, what string, call func(ctx context.Context) error) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(work), storageTimeout)
	defer cancel()
	if err := azstorage.Redact(call(ctx)); err != nil {
		p.stats.failPoll(fmt.Errorf("%s a message of queue %s: %w", what, p.queue, err))
		p.log(fmt.Sprintf("queue function %s: %s a message of queue %s failed: %v", p.fn, what, p.queue, err))
		return false
	}
	return true
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
