// Package files owns whole files on a host: the unit that rebuilds tunplan's state at boot, the link
// that enables it, and the list of kernel modules to load at boot. A file is a regular file with its
// content, a symlink, or absent; only the paths tunplan names are ever read.
package files

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// FS is the file boundary.
type FS interface {
	// Read returns the file at path, Missing when there is none.
	Read(path string) (protocol.File, error)
	// Write makes the file at path what f says: its content (replaced atomically, mode 0644) or a
	// symlink, creating parent directories; Missing removes it.
	Write(f protocol.File) error
}

// Root is the host's file system under a directory: "/" on a host, a temporary one in tests.
type Root string

func (r Root) real(path string) string { return filepath.Join(string(r), path) }

func (r Root) Read(path string) (protocol.File, error) {
	p := r.real(path)
	st, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return protocol.File{Path: path, Missing: true}, nil
	case err != nil:
		return protocol.File{}, err
	case st.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		return protocol.File{Path: path, Link: target}, err
	}
	b, err := os.ReadFile(p)
	return protocol.File{Path: path, Content: string(b)}, err
}

func (r Root) Write(f protocol.File) error {
	p := r.real(f.Path)
	if f.Missing {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if f.Link == "" {
		return Replace(p, []byte(f.Content), 0o644)
	}
	tmp := p + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(f.Link, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		return err
	}
	return syncDir(filepath.Dir(p))
}

// Replace writes b to path atomically: a reader (or a crash) sees the old file or the new one,
// never half of one. The data is synced before the rename, and the directory after it, so that
// once Replace returns the new file survives a crash: without the directory's sync the rename may
// still be only in memory, and a power cut may leave the old file, or none.
func Replace(path string, b []byte, mode fs.FileMode) error {
	tmp := path + ".tmp"
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err = fh.Write(b); err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir flushes a directory's entries (a rename into it) to the disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// Facts reads the files at paths, sorted by path.
func Facts(k FS, paths []string) ([]protocol.File, error) {
	sorted := append([]string(nil), paths...)
	sort.Strings(sorted)
	var out []protocol.File
	for _, p := range sorted {
		f, err := k.Read(p)
		if err != nil {
			return nil, fmt.Errorf("file %s: %w", p, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// Diff returns the steps that make the current files (read for every path of want and of what is
// owned) what want says. A current file that want does not name is removed: only owned paths are
// read.
func Diff(k FS, want, current []protocol.File) []change.Step {
	wanted := map[string]protocol.File{}
	for _, f := range want {
		wanted[f.Path] = f
	}
	var steps []change.Step
	for _, cur := range current {
		w, ok := wanted[cur.Path]
		if !ok {
			w = protocol.File{Path: cur.Path, Missing: true}
		}
		if w == cur {
			continue
		}
		act := change.Update
		switch {
		case w.Missing:
			act = change.Delete
		case cur.Missing:
			act = change.Create
		}
		steps = append(steps, change.Step{
			Change: change.Change{Module: "file", Address: "file " + cur.Path, Action: act, Before: describe(cur), After: describe(w)},
			Do:     func() error { return k.Write(w) },
		})
	}
	return steps
}

// describe is a file as a change shows it: "-> target", or its size and hash.
func describe(f protocol.File) string {
	switch {
	case f.Missing:
		return ""
	case f.Link != "":
		return "-> " + f.Link
	}
	return fmt.Sprintf("%d bytes sha256:%.12x", len(f.Content), sha256.Sum256([]byte(f.Content)))
}
