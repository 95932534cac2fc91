package router

import (
	"errors"
	"io"
	"testing"
)

// firstRead records the room it is given on its first read, then ends.
type firstRead struct{ room int }

func (f *firstRead) Read(p []byte) (int, error) {
	f.room = len(p)
	return 0, io.ErrUnexpectedEOF
}

// TestReadBodyGrows: a declared size alone allocates nothing; the buffer
// grows with what arrives, up to the declared size.
func TestReadBodyGrows(t *testing.T) {
	f := &firstRead{}
	if _, err := readBody(f, 8<<20, 8<<20); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want %v", err, io.ErrUnexpectedEOF)
	}
	if f.room > 32<<10 {
		t.Errorf("a declared 8 MiB body was read into a %d-byte buffer before any of it arrived, want at most 32 KiB", f.room)
	}
	// A short declared body is read into a buffer of its size.
	body, err := readBody(io.LimitReader(zeros{}, 100), 100, 8<<20)
	if err != nil || len(body) != 100 || cap(body) != 100 {
		t.Errorf("100 declared bytes: len %d cap %d err %v, want 100, 100, nil", len(body), cap(body), err)
	}
	// A body that ends before its declared size is an error.
	if _, err := readBody(io.LimitReader(zeros{}, 100<<10), 200<<10, 8<<20); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("100 KiB of a declared 200 KiB: err = %v, want %v", err, io.ErrUnexpectedEOF)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
