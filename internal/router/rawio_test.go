package router

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-acc
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestRawIOMovesBytesBothWays: a write far larger than the socket buffers
// waits on the poller (EAGAIN) while the peer reads slowly, and arrives
// whole and in order; reads see every byte, then EOF when the peer closes.
func TestRawIOMovesBytesBothWays(t *testing.T) {
	a, b := tcpPair(t)
	var r rawIO
	r.init(a)
	if r.rc == nil {
		t.Fatal("a TCP connection has no RawConn: the raw path is not taken")
	}
	want := make([]byte, 8<<20)
	for i := range want {
		want[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		var buf bytes.Buffer
		chunk := make([]byte, 64<<10)
		for buf.Len() < len(want) {
			n, err := b.Read(chunk)
			buf.Write(chunk[:n])
			if err != nil {
				break
			}
			if buf.Len() < 1<<20 {
				time.Sleep(time.Millisecond) // slow at first: the writer's buffer fills
			}
		}
		got <- buf.Bytes()
	}()
	if n, err := r.Write(want); n != len(want) || err != nil {
		t.Fatalf("Write = %d, %v, want %d, nil", n, err, len(want))
	}
	if g := <-got; !bytes.Equal(g, want) {
		t.Fatalf("peer got %d bytes, not the %d written in order", len(g), len(want))
	}

	go func() {
		b.Write([]byte("hello"))
		time.Sleep(20 * time.Millisecond) // the reader parks on the poller meanwhile
		b.Write([]byte(" world"))
		b.Close()
	}()
	all, err := io.ReadAll(&r)
	if err != nil || string(all) != "hello world" {
		t.Fatalf("ReadAll = %q, %v, want \"hello world\", nil", all, err)
	}
}

// TestRawIODeadlineAndClose: a read past its deadline fails with
// os.ErrDeadlineExceeded, as net.Conn's does, and a read parked on the
// poller ends with an error when the connection is closed under it
// (the descriptor is held by RawConn, so it is never reused meanwhile).
func TestRawIODeadlineAndClose(t *testing.T) {
	a, _ := tcpPair(t)
	var r rawIO
	r.init(a)
	a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the deadline ended the read after %v", d)
	}
	a.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 10))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	a.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read on a closed connection: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake a parked read")
	}
	if _, err := r.Write([]byte("x")); err == nil {
		t.Error("Write on a closed connection succeeded")
	}
}

// TestRawIOWithoutDescriptor: a connection with no descriptor (a pipe)
// is read and written through its own methods.
func TestRawIOWithoutDescriptor(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var r rawIO
	r.init(a)
	if r.rc != nil {
		t.Fatal("a pipe has a RawConn?")
	}
	go b.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(&r, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	go io.ReadFull(b, buf)
	if n, err := r.Write([]byte("pong")); n != 4 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
}

// nopRearmer lets every timed-out wait go on.
type nopRearmer struct{}

func (nopRearmer) rearm(bool) error { return nil }

// TestSpliceN: a body larger than the buffers goes socket to pipe to
// socket, whole and in order, while the receiver reads slowly (the pipe
// waits on a full socket) and the sender writes in bursts (the splice in
// waits on an empty one); a sender that stops short ends it with
// io.ErrUnexpectedEOF.
func TestSpliceN(t *testing.T) {
	srcPeer, src := tcpPair(t)
	dst, dstPeer := tcpPair(t)
	var in, out rawIO
	in.init(src)
	out.init(dst)
	want := make([]byte, 5<<20+123)
	for i := range want {
		want[i] = byte(i * 13)
	}
	go func() {
		for b := want; len(b) > 0; {
			k := min(len(b), 700<<10)
			srcPeer.Write(b[:k])
			b = b[k:]
			time.Sleep(5 * time.Millisecond)
		}
	}()
	got := make(chan []byte, 1)
	go func() {
		var buf bytes.Buffer
		chunk := make([]byte, 32<<10)
		for buf.Len() < len(want) {
			n, err := dstPeer.Read(chunk)
			buf.Write(chunk[:n])
			if err != nil {
				break
			}
			if buf.Len() < 1<<20 {
				time.Sleep(time.Millisecond)
			}
		}
		got <- buf.Bytes()
	}()
	br := bufio.NewReaderSize(&in, 16<<10)
	bw := bufio.NewWriterSize(&out, 16<<10)
	if err := spliceN(bw, &out, br, &in, int64(len(want)), nopRearmer{}); err != nil {
		t.Fatalf("spliceN: %v", err)
	}
	if g := <-got; !bytes.Equal(g, want) {
		t.Fatalf("received %d bytes, not the %d sent in order", len(g), len(want))
	}

	go func() {
		srcPeer.Write(make([]byte, 100<<10))
		srcPeer.Close()
	}()
	go io.Copy(io.Discard, dstPeer)
	if err := spliceN(bw, &out, br, &in, 1<<20, nopRearmer{}); err != io.ErrUnexpectedEOF {
		t.Fatalf("spliceN of a body cut short: %v, want io.ErrUnexpectedEOF", err)
	}
}

// TestRawIOWriteAwaitsReply: with awaitReply set, Write returns once the
// reply is there to read, which the next Read then takes; when the read
// deadline passes first, Write waits for it and still reports the request
// written; a peer that closes on the request wakes it at once.
func TestRawIOWriteAwaitsReply(t *testing.T) {
	a, b := tcpPair(t)
	var r rawIO
	r.init(a)
	r.awaitReply = true
	go func() {
		buf := make([]byte, 4)
		io.ReadFull(b, buf)
		time.Sleep(100 * time.Millisecond)
		b.Write([]byte("pong"))
		io.ReadFull(b, buf) // the second request gets no reply
		io.ReadFull(b, buf)
		b.Close() // the third is answered by a close
	}()
	a.SetReadDeadline(time.Now().Add(10 * time.Second)) // a lost wake-up fails, not hangs
	start := time.Now()
	if n, err := r.Write([]byte("ping")); n != 4 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if d := time.Since(start); d < 90*time.Millisecond || d > 5*time.Second {
		t.Errorf("Write returned after %v, want when the reply came (100ms)", d)
	}
	buf := make([]byte, 4)
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("Read = %q, %v, want the reply", buf[:n], err)
	}

	a.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	start = time.Now()
	if n, err := r.Write([]byte("ping")); n != 4 || err != nil {
		t.Fatalf("Write with no reply before the deadline = %d, %v, want 4, nil", n, err)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("Write returned after %v, before the deadline (100ms)", d)
	}
	if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read after the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	// With the deadline already passed nothing is written inside the
	// wait; the write goes the usual way and still succeeds.
	if n, err := r.Write([]byte("ping")); n != 4 || err != nil {
		t.Fatalf("Write past the deadline = %d, %v, want 4, nil", n, err)
	}

	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	start = time.Now()
	if n, err := r.Write([]byte("ping")); n != 4 || err != nil {
		t.Fatalf("Write answered by a close = %d, %v, want 4, nil", n, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a close woke the wait after %v", d)
	}
	// EOF, or a reset when the close met this request unread.
	if n, err := r.Read(buf); err == nil {
		t.Fatalf("Read after the peer closed: %q, want EOF or a reset", buf[:n])
	}
}
