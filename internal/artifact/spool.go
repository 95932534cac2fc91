package artifact

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/hotswap/hotswap"
)

// MaxPackageBytes returns the largest zip the store accepts.
func (s *Store) MaxPackageBytes() int64 { return s.limits.MaxCompressed }

// Spool copies the zip read from r into a new file in the store's tmp
// directory, for a caller that accepts a package now and Puts it later (an
// asynchronous deploy). The tmp directory is under the store's own directory,
// 0700 and emptied by Open, so a spooled upload never lands in the system's
// temporary directory and a crash leaves nothing behind for long.
//
// Spool reads at most MaxPackageBytes bytes: a larger package is an error of
// kind TooLarge. On error nothing is left on disk. Otherwise the file is
// positioned at its start, and the caller closes and removes it.
func (s *Store) Spool(ctx context.Context, r io.Reader) (*os.File, error) {
	f, err := os.CreateTemp(s.tmp, "spool-*.zip")
	if err != nil {
		return nil, fmt.Errorf("spool package: %w", err)
	}
	fail := func(err error) (*os.File, error) {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	n, err := io.Copy(f, io.LimitReader(ctxReader{ctx, r}, s.limits.MaxCompressed+1))
	switch {
	case err != nil && ctx.Err() != nil:
		return fail(ctx.Err())
	case err != nil:
		return fail(&hotswap.Error{Kind: hotswap.Invalid, Msg: fmt.Sprintf("reading the package failed: %v", err), Err: err})
	case n > s.limits.MaxCompressed:
		return fail(hotswap.Errorf(hotswap.TooLarge, "package is larger than the limit of %d bytes", s.limits.MaxCompressed))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(fmt.Errorf("spool package: %w", err))
	}
	return f, nil
}
