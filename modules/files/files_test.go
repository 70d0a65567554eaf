package files

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

func TestRootReadsAndWritesFilesLinksAndAbsence(t *testing.T) {
	r := Root(t.TempDir())
	want := []protocol.File{
		{Path: "/etc/a.conf", Content: "x\n"},
		{Path: "/etc/wants/a.service", Link: "/etc/a.service"},
		{Path: "/etc/none", Missing: true},
	}
	for _, f := range want {
		if err := r.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Facts(r, []string{"/etc/wants/a.service", "/etc/none", "/etc/a.conf"})
	if err != nil || len(got) != 3 || got[0] != want[0] || got[1] != want[2] || got[2] != want[1] {
		t.Fatalf("facts %+v %v", got, err)
	}
	if st, _ := os.Stat(filepath.Join(string(r), "/etc/a.conf")); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
	if err := r.Write(protocol.File{Path: "/etc/a.conf", Missing: true}); err != nil {
		t.Fatal(err)
	}
	if f, _ := r.Read("/etc/a.conf"); !f.Missing {
		t.Errorf("removed file reads %+v", f)
	}
	entries, _ := os.ReadDir(filepath.Join(string(r), "etc"))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("left a temporary file %s", e.Name())
		}
	}
}

func TestDiff(t *testing.T) {
	r := Root(t.TempDir())
	cur := []protocol.File{
		{Path: "/a", Content: "old"},
		{Path: "/b", Missing: true},
		{Path: "/c", Link: "/x"},
		{Path: "/d", Content: "same"},
	}
	want := []protocol.File{{Path: "/a", Content: "new"}, {Path: "/b", Content: "b"}, {Path: "/d", Content: "same"}} // /c: owned, not wanted
	steps := Diff(r, want, cur)
	var got []string
	for _, s := range steps {
		got = append(got, string(rune(s.Action))+" "+s.Address+" "+s.Change.Shown())
	}
	wantSteps := []string{
		"~ file /a 3 bytes sha256:" + sum("old") + " => 3 bytes sha256:" + sum("new"),
		"+ file /b 1 bytes sha256:" + sum("b"),
		"- file /c -> /x",
	}
	if strings.Join(got, "\n") != strings.Join(wantSteps, "\n") {
		t.Fatalf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantSteps, "\n"))
	}
	for _, s := range steps {
		if err := s.Do(); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := Facts(r, []string{"/a", "/b", "/c"})
	if after[0].Content != "new" || after[1].Content != "b" || !after[2].Missing || steps[2].Action != change.Delete {
		t.Errorf("after: %+v", after)
	}
}

func sum(s string) string { return fmt.Sprintf("%.12x", sha256.Sum256([]byte(s))) }

// Replace replaces a file whole, over the temporary file a crash may have left, and leaves no
// temporary file; the rename is synced to its directory, which must exist.
func TestReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "000001.json")
	if err := os.WriteFile(path, []byte(`{"n":1,"old":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".tmp", []byte(`{"n":`), 0o600); err != nil { // a crash's leftover
		t.Fatal(err)
	}
	if err := Replace(path, []byte(`{"n":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != `{"n":1}` {
		t.Errorf("after Replace: %q %v", b, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode after Replace: %v %v", st.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %v, want the file alone", entries)
	}
	missing := filepath.Join(dir, "gone", "x")
	if err := Replace(missing, []byte("x"), 0o600); err == nil {
		t.Errorf("Replace into a missing directory succeeded")
	}
	if err := syncDir(filepath.Dir(missing)); err == nil || !strings.Contains(err.Error(), filepath.Dir(missing)) {
		t.Errorf("syncDir of a missing directory: %v", err)
	}
}
