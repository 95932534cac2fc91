package artifact

import (
	"archive/zip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// zipTime is the Modified time of every entry ZipDir writes, so that the
// digest of a folder does not depend on when its files were touched.
var zipTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// ZipDir writes the content of dir as a zip to w, the form Put accepts.
// Entries are in lexical order with a fixed time, so the same folder always
// gives the same bytes and the same digest. Files keep their Unix permission
// bits (executables stay executable), names use forward slashes, and links
// inside dir are stored as links, not followed. Other special files are an
// error.
func ZipDir(dir string, w io.Writer) error { return zipDir(dir, w, nil) }

// zipDir is ZipDir leaving out what skip names (a slash-separated path
// relative to dir; a skipped folder is left out whole).
func zipDir(dir string, w io.Writer, skip func(rel string, isDir bool) bool) error {
	// A link given as dir is followed; links below it are not.
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("zip %s: %w", dir, err)
	}
	zw := zip.NewWriter(w)
	err = filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name == root {
			return nil
		}
		rel, err := filepath.Rel(root, name)
		if err != nil {
			return err
		}
		if skip != nil && skip(filepath.ToSlash(rel), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h := &zip.FileHeader{Name: filepath.ToSlash(rel), Modified: zipTime}
		mode := info.Mode()
		switch mode.Type() {
		case fs.ModeDir:
			h.Name += "/"
			h.SetMode(fs.ModeDir | 0o755)
			_, err := zw.CreateHeader(h)
			return err
		case fs.ModeSymlink:
			target, err := os.Readlink(name)
			if err != nil {
				return err
			}
			h.SetMode(fs.ModeSymlink | 0o777)
			fw, err := zw.CreateHeader(h)
			if err != nil {
				return err
			}
			_, err = io.WriteString(fw, filepath.ToSlash(target))
			return err
		case 0:
			h.Method = zip.Deflate
			h.SetMode(mode.Perm())
			fw, err := zw.CreateHeader(h)
			if err != nil {
				return err
			}
			f, err := os.Open(name)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(fw, f)
			return err
		default:
			return fmt.Errorf("%s is a special file (%v)", rel, mode.Type())
		}
	})
	if err != nil {
		return fmt.Errorf("zip %s: %w", dir, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("zip %s: %w", dir, err)
	}
	return nil
}
