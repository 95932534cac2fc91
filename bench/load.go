package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// request is one prepared HTTP/1.1 request and what a good answer looks like.
type request struct {
	name    string // for the report, e.g. "GET /api/small"
	raw     []byte // the request, headers and body, sent as is
	wantLen int    // expected response body length; -1 = any
}

// newRequest builds the bytes of a keep-alive request once, so the load loop
// only writes them.
func newRequest(method, path, host string, body []byte, wantLen int) request {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: hotswap-bench\r\n", method, path, host)
	if body != nil {
		fmt.Fprintf(&b, "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return request{name: method + " " + path, raw: b.Bytes(), wantLen: wantLen}
}

// client is one keep-alive connection speaking just enough HTTP/1.1 to read
// status, Content-Length or chunked bodies. It costs far less CPU than
// net/http's Transport, which matters when client and servers share 2 cores.
type client struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
	// tag, when set, is a response header name whose value each round
	// trip copies into tagVal (empty when the answer has none).
	tag    []byte
	tagVal []byte
}

var errStatus = errors.New("non-2xx status")

// do sends req and reads the whole answer. Any failure closes the connection;
// the next call dials again.
func (cl *client) do(req request) error {
	if cl.c == nil {
		c, err := net.DialTimeout("tcp", cl.addr, 5*time.Second)
		if err != nil {
			return err
		}
		c.(*net.TCPConn).SetNoDelay(true)
		cl.c = c
		if cl.br == nil {
			cl.br = bufio.NewReaderSize(c, 32<<10)
		} else {
			cl.br.Reset(c)
		}
	}
	err := cl.roundTrip(req)
	if err != nil {
		cl.close()
	}
	return err
}

func (cl *client) close() {
	if cl.c != nil {
		cl.c.Close()
		cl.c = nil
	}
}

func (cl *client) roundTrip(req request) error {
	cl.c.SetDeadline(time.Now().Add(10 * time.Second))
	cl.tagVal = cl.tagVal[:0]
	if _, err := cl.c.Write(req.raw); err != nil {
		return err
	}
	line, err := cl.br.ReadSlice('\n')
	if err != nil {
		return err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return fmt.Errorf("bad status line %q", line)
	}
	status := line[9:12]
	ok := status[0] == '2'
	noBody := bytes.Equal(status, []byte("204")) || bytes.Equal(status, []byte("304"))
	length, chunked, closeConn := -1, false, false
	for {
		line, err := cl.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		k, v, found := bytes.Cut(line, []byte(":"))
		if !found {
			return fmt.Errorf("bad header line %q", line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil {
				return fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			closeConn = bytes.EqualFold(v, []byte("close"))
		case cl.tag != nil && bytes.EqualFold(k, cl.tag):
			cl.tagVal = append(cl.tagVal[:0], v...)
		}
	}
	var n int
	switch {
	case noBody:
	case chunked:
		if n, err = cl.discardChunked(); err != nil {
			return err
		}
	case length >= 0:
		if n, err = cl.br.Discard(length); err != nil {
			return err
		}
	default:
		m, err := io.Copy(io.Discard, cl.br)
		if err != nil {
			return err
		}
		n, closeConn = int(m), true
	}
	if closeConn {
		cl.close()
	}
	if !ok {
		return fmt.Errorf("%w %s", errStatus, status)
	}
	if req.wantLen >= 0 && n != req.wantLen {
		return fmt.Errorf("body of %d bytes, want %d", n, req.wantLen)
	}
	return nil
}

func (cl *client) discardChunked() (int, error) {
	total := 0
	for {
		line, err := cl.br.ReadSlice('\n')
		if err != nil {
			return total, err
		}
		hex, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		size, err := strconv.ParseInt(string(hex), 16, 32)
		if err != nil {
			return total, fmt.Errorf("bad chunk size %q", line)
		}
		if size == 0 {
			for { // trailers, then the empty line
				line, err := cl.br.ReadSlice('\n')
				if err != nil {
					return total, err
				}
				if len(line) <= 2 {
					return total, nil
				}
			}
		}
		if _, err := cl.br.Discard(int(size) + 2); err != nil {
			return total, err
		}
		total += int(size)
	}
}

// load describes one measurement: conns keep-alive connections to addr
// sending req, first for warmup (not measured), then for dur.
type load struct {
	addr   string
	req    request
	conns  int
	warmup time.Duration
	dur    time.Duration
	// rate is the open-loop arrival rate in requests/s; 0 means closed loop
	// (each connection sends its next request as soon as the answer is in).
	rate float64
	// reqs, when set, replaces req: request i of the run sends
	// reqs[i%len(reqs)] (requests spread over many host names).
	reqs []request
}

// loadResult is what one measurement saw.
type loadResult struct {
	ok       int64           // good answers in the measured window
	failed   int64           // non-2xx, wrong length or connection errors, warm-up included
	firstErr error           // the first failure, for the log
	rps      float64         // ok / dur
	lat      []time.Duration // open loop: latency from the scheduled send time, sorted
	lag      []time.Duration // open loop: actual send time minus scheduled time, sorted
}

// percentile returns the q-quantile (0..1) of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// overrun bounds how long an open-loop run may keep draining its backlog
// after the window ends when the target cannot keep up; requests not sent by
// then count as failed.
const overrun = 5 * time.Second

// run drives the load until the window ends or ctx is done. A panic in a
// worker is re-raised here, on the caller's goroutine, so deferred cleanup runs.
func (l load) run(ctx context.Context) (loadResult, error) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		res      loadResult
		next     atomic.Int64 // open loop: next request index to claim
		panicVal any
	)
	start := time.Now().Add(50 * time.Millisecond) // let every worker get ready
	from := start.Add(l.warmup)
	end := from.Add(l.dur)
	total := int64(0)
	var interval time.Duration
	if l.rate > 0 {
		interval = time.Duration(float64(time.Second) / l.rate)
		total = int64((l.warmup + l.dur) / interval)
	}
	for range l.conns {
		wg.Go(func() {
			var (
				ok, failed int64
				firstErr   error
				lat, lag   []time.Duration
			)
			defer func() {
				if p := recover(); p != nil {
					mu.Lock()
					panicVal = p
					mu.Unlock()
				}
			}()
			cl := &client{addr: l.addr}
			defer cl.close()
			fail := func(err error) {
				failed++
				if firstErr == nil {
					firstErr = err
				}
			}
			time.Sleep(time.Until(start))
			if l.rate == 0 {
				for ctx.Err() == nil {
					req := l.req
					if len(l.reqs) > 0 {
						req = l.reqs[(next.Add(1)-1)%int64(len(l.reqs))]
					}
					err := cl.do(req)
					now := time.Now()
					if now.After(end) {
						break
					}
					switch {
					case err != nil:
						fail(err)
					case !now.Before(from):
						ok++
					}
				}
			} else {
				for ctx.Err() == nil {
					i := next.Add(1) - 1
					if i >= total {
						break
					}
					sched := start.Add(time.Duration(i) * interval)
					if d := time.Until(sched); d > 0 {
						time.Sleep(d)
					}
					sent := time.Now()
					if sent.After(end.Add(overrun)) {
						// Give up on this request and every one not yet claimed.
						fail(fmt.Errorf("open loop: target fell behind; requests still unsent %v after the window", overrun))
						if rest := next.Swap(total); rest < total {
							failed += total - rest
						}
						break
					}
					req := l.req
					if len(l.reqs) > 0 {
						req = l.reqs[i%int64(len(l.reqs))]
					}
					err := cl.do(req)
					done := time.Now()
					switch {
					case err != nil:
						fail(err)
					case !sched.Before(from):
						ok++
						lat = append(lat, done.Sub(sched))
						lag = append(lag, sent.Sub(sched))
					}
				}
			}
			mu.Lock()
			res.ok += ok
			res.failed += failed
			if res.firstErr == nil {
				res.firstErr = firstErr
			}
			res.lat = append(res.lat, lat...)
			res.lag = append(res.lag, lag...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if panicVal != nil {
		panic(panicVal)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	slices.Sort(res.lat)
	slices.Sort(res.lag)
	res.rps = float64(res.ok) / l.dur.Seconds()
	return res, nil
}
