package sockets

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Captured from a realserver (x86-64) whose nginx listens on its RIP only, with sshd on the
// management address, a connection to it, and nginx on [::]:8080.
const (
	tcp4 = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: B60A12C6:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20113 1 0000000000000000 100 0 0 10 0
   1: 160013C6:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 19874 1 0000000000000000 100 0 0 10 0
   2: 160013C6:0016 010013C6:A3C2 01 00000000:00000000 02:0009A6D2 00000000     0        0 20420 4 0000000000000000 20 4 29 10 -1
   3: 00000000:1F90 00000000:0000 06 00000000:00000000 03:00000E86 00000000     0        0 0 3 0000000000000000
`
	tcp6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20114 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF0000B43012C6:0051 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20115 1 0000000000000000 100 0 0 10 0
`
	udp4 = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: B43012C6:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 30001 2 0000000000000000 0
  101: B60A12C6:A001 FE0A12C6:0035 01 00000000:00000000 00:00000000 00000000     0        0 30002 2 0000000000000000 0
`
)

func littleEndian(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the captured tables are a little-endian host's")
	}
}

func TestParse(t *testing.T) {
	littleEndian(t)
	got, err := Parse(strings.NewReader(tcp4), tcpListen)
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(got); s != "[{198.18.10.182:80 false 20113} {198.19.0.22:22 false 19874}]" {
		t.Errorf("tcp: %s", s)
	}
	got, err = Parse(strings.NewReader(tcp6), tcpListen)
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(got); s != "[{[::]:8080 true 20114} {198.18.48.180:81 true 20115}]" {
		t.Errorf("tcp6: %s", s)
	}
	got, err = Parse(strings.NewReader(udp4), tcpClose)
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(got); s != "[{198.18.48.180:53 false 30001}]" {
		t.Errorf("udp: %s (a connected socket is no listener)", s)
	}
	if _, err := Parse(strings.NewReader("hdr\n 0: XYZ:0050 00000000:0000 0A 0 0 0 0 0 1\n"), tcpListen); err == nil {
		t.Error("a bad address parsed")
	}
}

// TestProcTree reads a directory laid out like /proc: the tables under net/, and the programs
// holding the sockets from <pid>/fd and <pid>/comm.
func TestProcTree(t *testing.T) {
	littleEndian(t)
	root := t.TempDir()
	write := func(name, data string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	write("net/tcp", tcp4)
	write("net/tcp6", tcp6)
	write("net/udp", udp4) // no udp6: a host without IPv6
	write("412/comm", "nginx\n")
	link("socket:[20113]", "412/fd/6")
	link("/dev/null", "412/fd/0")
	write("413/comm", "nginx\n") // a worker: the same socket
	link("socket:[20113]", "413/fd/6")
	write("77/comm", "sshd\n")
	link("socket:[19874]", "77/fd/3")
	write("self/comm", "x\n") // not a pid
	p := Proc{Root: root}
	tcp, err := p.Listening("tcp")
	if err != nil {
		t.Fatal(err)
	}
	if len(tcp) != 4 {
		t.Errorf("tcp listeners %v", tcp)
	}
	udp, err := p.Listening("udp")
	if err != nil || len(udp) != 1 {
		t.Errorf("udp listeners %v, %v", udp, err)
	}
	progs, err := p.Programs([]uint64{20113, 19874, 20114})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[uint64]string{20113: "nginx", 19874: "sshd"}; !reflect.DeepEqual(progs, want) {
		t.Errorf("programs %v, want %v", progs, want)
	}
	if _, err := p.Listening("sctp"); err == nil {
		t.Error("sctp accepted")
	}
}
