//go:build linux

// Package netnstest runs a test's kernel checks in a network namespace of their own, so tests of
// rtnetlink code can change routes and devices of a real kernel without touching the machine's.
package netnstest

import (
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
)

// Run calls fn in a new network namespace with a veth pair d0 (198.18.10.182/24, up) and d1 (up).
// fn returns why the kernel cannot be tested (skip) or what failed. It needs root; the namespace is
// a locked thread's own, and the goroutine ends without unlocking it, so the thread and the
// namespace go away with it. Only the test's goroutine skips or stops.
func Run(t *testing.T, fn func(d0 netlink.Link) (skip string, err error)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	var skip string
	var failed error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
			skip = "no network namespace: " + err.Error()
			return
		}
		d0, s, err := veth()
		if s != "" || err != nil {
			skip, failed = s, err
			return
		}
		skip, failed = fn(d0)
	}()
	<-done
	switch {
	case skip != "":
		t.Skip(skip)
	case failed != nil:
		t.Fatal(failed)
	}
}

// veth makes the pair d0/d1, both up, with 198.18.10.182/24 on d0.
func veth() (netlink.Link, string, error) {
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "d0"}, PeerName: "d1"}); err != nil {
		return nil, "no veth device: " + err.Error(), nil
	}
	d0, err := netlink.LinkByName("d0")
	if err != nil {
		return nil, "", err
	}
	d1, err := netlink.LinkByName("d1")
	if err != nil {
		return nil, "", err
	}
	for _, step := range []func() error{
		func() error {
			return netlink.AddrAdd(d0, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(198, 18, 10, 182), Mask: net.CIDRMask(24, 32)}})
		},
		func() error { return netlink.LinkSetUp(d0) },
		func() error { return netlink.LinkSetUp(d1) },
	} {
		if err := step(); err != nil {
			return nil, "", err
		}
	}
	return d0, "", nil
}
