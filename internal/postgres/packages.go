package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/hotswap/hotswap"
	"github.com/jackc/pgx/v5"
)

// chunkSize is the size of the pieces package content is stored in: small
// enough to hold one in memory, large enough that a package is few rows.
const chunkSize = 1 << 20

// PutPackage stores the content read from r as the package named digest,
// the hex sha256 of the content, once for the whole cluster. Content whose
// sha256 is not digest is Invalid and nothing of it is kept: the content
// is written in chunks in one transaction, which commits only after the
// whole of r is read and its sum checked.
//
// If the package is already stored, PutPackage returns nil without reading
// r. Of concurrent puts of one digest, the first writes it; the others wait
// for it to commit and then return nil without reading r (or write it
// themselves if it failed).
func (db *DB) PutPackage(ctx context.Context, digest string, r io.Reader) error {
	if !validPackageDigest(digest) {
		return hotswap.Errorf(hotswap.Invalid, "package digest %q is not a hex sha256", digest)
	}
	if ok, err := db.HasPackage(ctx, digest); err != nil || ok {
		return err
	}
	tx, err := db.Pool().Begin(ctx)
	if err != nil {
		return fmt.Errorf("put package %s: %w", digest, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// The row is the lock: a concurrent put of the same digest waits here
	// for this transaction to end.
	tag, err := tx.Exec(ctx, `INSERT INTO packages (digest, size, complete) VALUES ($1, 0, false)
		ON CONFLICT (digest) DO NOTHING`, digest)
	if err != nil {
		return storageFull(fmt.Errorf("put package %s: %w", digest, err))
	}
	if tag.RowsAffected() == 0 {
		return nil // another put committed it meanwhile
	}
	h := sha256.New()
	buf := make([]byte, chunkSize)
	var size int64
	for seq := 0; ; seq++ {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			h.Write(buf[:n])
			size += int64(n)
			if _, err := tx.Exec(ctx, "INSERT INTO package_chunks (digest, seq, data) VALUES ($1, $2, $3)",
				digest, seq, buf[:n]); err != nil {
				return storageFull(fmt.Errorf("put package %s: write chunk %d: %w", digest, seq, err))
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("put package %s: read: %w", digest, rerr)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return hotswap.Errorf(hotswap.Invalid, "package content has sha256 %s, not its digest %s (%d bytes)", got, digest, size)
	}
	if _, err := tx.Exec(ctx, "UPDATE packages SET size = $2, complete = true WHERE digest = $1", digest, size); err != nil {
		return storageFull(fmt.Errorf("put package %s: %w", digest, err))
	}
	if err := tx.Commit(ctx); err != nil {
		return storageFull(fmt.Errorf("put package %s: commit: %w", digest, err))
	}
	return nil
}

// HasPackage reports whether the package digest is stored.
func (db *DB) HasPackage(ctx context.Context, digest string) (bool, error) {
	ok, err := exists(ctx, db.Pool(), "SELECT 1 FROM packages WHERE digest = $1 AND complete", digest)
	if err != nil {
		return false, fmt.Errorf("look for package %s: %w", digest, err)
	}
	return ok, nil
}

// GetPackage writes the content of package digest to w, one chunk at a
// time (one query each), so a package is never wholly in memory. It checks
// the content's size and sha256 as it goes and returns an error after the
// last byte if they are not as stored, so a caller that keeps what it
// wrote must wait for GetPackage's result. A package not stored is
// NotFound.
func (db *DB) GetPackage(ctx context.Context, digest string, w io.Writer) error {
	var size int64
	err := db.Pool().QueryRow(ctx, "SELECT size FROM packages WHERE digest = $1 AND complete", digest).Scan(&size)
	if errors.Is(err, pgx.ErrNoRows) {
		return hotswap.Errorf(hotswap.NotFound, "package %s not found", digest)
	}
	if err != nil {
		return fmt.Errorf("get package %s: %w", digest, err)
	}
	h := sha256.New()
	var data []byte
	var n int64
	for seq := 0; n < size; seq++ {
		err := db.Pool().QueryRow(ctx, "SELECT data FROM package_chunks WHERE digest = $1 AND seq = $2", digest, seq).Scan(&data)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("get package %s: chunk %d is missing (%d of %d bytes read)", digest, seq, n, size)
		}
		if err != nil {
			return fmt.Errorf("get package %s: chunk %d: %w", digest, seq, err)
		}
		if len(data) == 0 {
			return fmt.Errorf("get package %s: chunk %d is empty (%d of %d bytes read)", digest, seq, n, size)
		}
		n += int64(len(data))
		h.Write(data)
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("get package %s: write: %w", digest, err)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != size || got != digest {
		return fmt.Errorf("get package %s: the stored content is corrupt (%d bytes, sha256 %s; want %d bytes)", digest, n, got, size)
	}
	return nil
}

// validPackageDigest reports whether s is a hex sha256 in lower case.
func validPackageDigest(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// DeletePackage removes the package digest and its content from the
// cluster. A package not stored is no error, so nodes pruning at the same
// time may delete one package twice. A GetPackage of it under way fails
// with a missing chunk; a PutPackage of it under way is waited for and then
// deleted, so the caller deletes only packages nothing refers to.
func (db *DB) DeletePackage(ctx context.Context, digest string) error {
	if !validPackageDigest(digest) {
		return hotswap.Errorf(hotswap.Invalid, "package digest %q is not a hex sha256", digest)
	}
	// The chunks go with the row (ON DELETE CASCADE).
	if _, err := db.Pool().Exec(ctx, "DELETE FROM packages WHERE digest = $1", digest); err != nil {
		return fmt.Errorf("delete package %s: %w", digest, err)
	}
	return nil
}
