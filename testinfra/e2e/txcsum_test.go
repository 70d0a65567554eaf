package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tunplan/tunplan/testinfra/lab"
)

// txCsumEnv, set to "DEV=on" or "DEV=off", makes this test binary turn the transmit checksum
// offload of device DEV on or off (ethtool -K DEV tx on|off, which the lab does not have) and exit.
//
// Why the lab needs it: the lab's hosts are joined by veth pairs, which never compute a checksum
// left to offload, where a real NIC (or the kernel, for a NIC that cannot) computes it as the packet
// leaves. IPVS leaves the outer UDP checksum of GUE (udp_set_csum) and the GRE checksum
// (gre_build_header) to offload, and sums the payload as if a client's TCP checksum still left to
// offload were filled in. With the director's offload off, its kernel computes them as a NIC would,
// so what the router captures is what a real wire carries.
const txCsumEnv = "E2E_TX_CSUM"

func init() {
	if v := os.Getenv(txCsumEnv); v != "" {
		dev, state, _ := strings.Cut(v, "=")
		if err := setTxChecksum(dev, state == "on"); err != nil {
			fmt.Fprintln(os.Stderr, "tx checksum:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// setTxChecksum sets DEV's transmit checksum offload with the SIOCETHTOOL ioctl (ETHTOOL_STXCSUM)
// and reads it back (ETHTOOL_GTXCSUM).
func setTxChecksum(dev string, on bool) error {
	const ethtoolGTxCsum, ethtoolSTxCsum = 0x16, 0x17
	type ethtoolValue struct{ cmd, data uint32 }
	type ifreq struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ioctl := func(cmd, data uint32) (uint32, error) {
		v := ethtoolValue{cmd, data}
		var r ifreq
		copy(r.name[:], dev)
		r.data = unsafe.Pointer(&v)
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&r))); e != 0 {
			return 0, fmt.Errorf("%s: SIOCETHTOOL %#x: %w", dev, cmd, e)
		}
		return v.data, nil
	}
	want := uint32(0)
	if on {
		want = 1
	}
	if _, err := ioctl(ethtoolSTxCsum, want); err != nil {
		return err
	}
	got, err := ioctl(ethtoolGTxCsum, 0)
	if err == nil && got != want {
		err = fmt.Errorf("%s: tx checksum offload is %d after setting it to %d", dev, got, want)
	}
	return err
}

// directorComputesChecksums makes the director's kernel compute the checksums its packets leave
// to offload (its eth0's transmit checksum offload off), as a real NIC does, until the test ends.
func directorComputesChecksums(t *testing.T) {
	t.Helper()
	bin := udpEchoBin(t) // this test binary, where the lab's hosts see it
	sh(t, "director", txCsumEnv+"=eth0=off "+bin)
	t.Cleanup(func() {
		if out, err := lab.Sh("director", txCsumEnv+"=eth0=on "+bin); err != nil {
			t.Errorf("director: tx checksum offload back on: %v\n%s", err, out)
		}
	})
}
