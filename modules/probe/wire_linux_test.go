package probe

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunplan/tunplan/modules/protocol"
)

const netnsEnv = "TUNPLAN_PROBE_TEST_NETNS"

// Probe on this machine's kernel, in a network namespace of its own (the test runs itself again
// under `unshare --net`; it needs root and is skipped without): the director holds the VIP on lo
// and reaches the realservers through a tun device, behind which this test plays the realservers.
// It checks what a unit test cannot: that the kernel sends the raw IPIP socket's payload unchanged
// behind an outer header of protocol 4, that the capture sees answers from the VIP that IP drops
// as martians, that the filter attaches, and that routes give the source and path MTU. What it
// cannot check (this kernel may lack ipip) is a realserver's kernel unwrapping and answering: the
// lab does.
func TestKernelWire(t *testing.T) {
	if os.Getenv(netnsEnv) == "" {
		if os.Geteuid() != 0 {
			t.Skip("needs root: a network namespace and a tun device")
		}
		if _, err := os.Stat("/dev/net/tun"); err != nil {
			t.Skip("no /dev/net/tun")
		}
		if err := exec.Command("unshare", "--net", "true").Run(); err != nil {
			t.Skipf("cannot make a network namespace: %v", err)
		}
		args := []string{"--net", os.Args[0], "-test.run=^TestKernelWire$", "-test.count=1"}
		if testing.Verbose() {
			args = append(args, "-test.v")
		}
		cmd := exec.Command("unshare", args...)
		cmd.Env = append(os.Environ(), netnsEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("in a network namespace: %v\n%s", err, out)
		}
		t.Logf("in a network namespace:\n%s", out)
		return
	}

	dipK := netip.MustParseAddr("10.9.0.1")
	ok, refusing, silentRIP, noIPIPRIP := netip.MustParseAddr("10.9.0.2"), netip.MustParseAddr("10.9.0.3"),
		netip.MustParseAddr("10.9.0.4"), netip.MustParseAddr("10.9.0.5")
	fromRIPK := netip.MustParseAddr("10.9.0.6")
	big := make([]byte, 1000) // a reply the capture must keep far more of than a TCP answer
	for i := range big {
		big[i] = byte(i)
	}
	tun := openTun(t, "tp0", dipK, 1400)
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}

	// The realservers: read what the director sends into the tunnel, answer from the VIP straight to
	// the director (through the tun device, so the director's kernel receives it).
	var mu sync.Mutex
	var got []sentPkt
	var gotUDP []sentDgram
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2000)
		for {
			_ = tun.SetReadDeadline(time.Now().Add(3 * time.Second))
			n, err := tun.Read(buf)
			if err != nil {
				return
			}
			pkt := append([]byte{}, buf[:n]...)
			if n < 20 || pkt[0]>>4 != 4 || pkt[9] != protoIPIP {
				continue // the namespace's own chatter
			}
			rip := netip.AddrFrom4([4]byte(pkt[16:20]))
			inner := pkt[int(pkt[0]&0x0f)*4:]
			if len(inner) >= 20 && inner[9] == protoUDP {
				if Checksum(pkt[:20]) != 0 || Checksum(inner[:20]) != 0 || rfc1071(udpChecksumInput(inner)) != 0 {
					t.Errorf("bad checksum in %x", pkt)
				}
				d, err := ParseUDP(inner)
				if err != nil {
					t.Errorf("to %s: %v", rip, err)
					continue
				}
				mu.Lock()
				gotUDP = append(gotUDP, sentDgram{rip, d})
				mu.Unlock()
				to := netip.AddrPortFrom(d.Src, d.SrcPort)
				var answer []byte
				switch rip {
				case ok:
					answer = UDPDatagram(netip.AddrPortFrom(d.Dst, d.DstPort), to, 0, d.Payload).Marshal()
				case fromRIPK:
					answer = UDPDatagram(netip.AddrPortFrom(rip, d.DstPort), to, 0, d.Payload).Marshal()
				case refusing: // as Linux answers: from the address the datagram was for, quoting it
					m := append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, inner[:min(len(inner), 548)]...)
					put16(m[2:], Checksum(m))
					h := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, protoICMP, 0, 0}
					put16(h[2:], uint16(20+len(m)))
					h = append(append(h, d.Dst.AsSlice()...), d.Src.AsSlice()...)
					put16(h[10:], Checksum(h))
					answer = append(h, m...)
				default:
					continue
				}
				if _, err := tun.Write(answer); err != nil {
					t.Errorf("writing the answer: %v", err)
				}
				continue
			}
			if Checksum(pkt[:20]) != 0 || Checksum(inner[:20]) != 0 || Checksum(tcpChecksumInput(inner)) != 0 {
				t.Errorf("bad checksum in %x", pkt)
			}
			s, err := ParseTCP(inner)
			if err != nil {
				t.Errorf("to %s: %v", rip, err)
				continue
			}
			mu.Lock()
			got = append(got, sentPkt{rip, s})
			mu.Unlock()
			if s.Flags != SYN {
				continue
			}
			a := Segment{Src: s.Dst, Dst: s.Src, SrcPort: s.DstPort, DstPort: s.SrcPort, Ack: s.Seq + 1, Window: 65160}
			var answer []byte
			switch rip {
			case ok:
				a.Seq, a.Flags, a.MSS = 77, SYN|ACK, 1360
				answer = a.Marshal()
			case refusing:
				a.Flags = RST | ACK
				answer = a.Marshal()
			case noIPIPRIP:
				m := append([]byte{3, 2, 0, 0, 0, 0, 0, 0}, pkt[:28]...)
				put16(m[2:], Checksum(m))
				h := []byte{0x45, 0, 0, byte(20 + len(m)), 0, 0, 0, 0, 64, protoICMP, 0, 0}
				h = append(append(h, rip.AsSlice()...), pkt[12:16]...)
				put16(h[10:], Checksum(h))
				answer = append(h, m...)
			default:
				continue
			}
			if _, err := tun.Write(answer); err != nil {
				t.Errorf("writing the answer: %v", err)
			}
		}
	}()

	probes := []protocol.Probe{
		{Protocol: "tcp", VIP: vip, Port: 80, RIP: ok, Source: dipK},
		{Protocol: "tcp", VIP: vip, Port: 81, RIP: refusing}, // the source from the route
		{Protocol: "tcp", VIP: vip, Port: 80, RIP: silentRIP, Source: dipK},
		{Protocol: "tcp", VIP: vip, Port: 80, RIP: noIPIPRIP, Source: dipK},
		{Protocol: "udp", VIP: vip, Port: 53, RIP: ok, Source: dipK},
		{Protocol: "udp", VIP: vip, Port: 5353, RIP: ok, Payload: protocol.Payload{Send: protocol.Bytes(big), Expect: protocol.Bytes(big)}},
		{Protocol: "udp", VIP: vip, Port: 5353, RIP: refusing, Source: dipK, Payload: protocol.Payload{Send: "q"}},
		{Protocol: "udp", VIP: vip, Port: 5353, RIP: silentRIP, Source: dipK, Payload: protocol.Payload{Send: "q"}},
		{Protocol: "udp", VIP: vip, Port: 5353, RIP: fromRIPK, Source: dipK, Payload: protocol.Payload{Send: "q", Expect: "q"}},
	}
	start := time.Now()
	res, err := Probe(probes, 500*time.Millisecond)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("took %v: %+v", took, res)
	if took < 500*time.Millisecond || took > 2*time.Second {
		t.Errorf("took %v: the timeout is 500ms", took)
	}
	want := []protocol.ProbeOutcome{protocol.ProbeOK, protocol.ProbeRefused, protocol.ProbeNoAnswer, protocol.ProbeNoAnswer, protocol.ProbeNotProbed,
		protocol.ProbeOK, protocol.ProbeRefused, protocol.ProbeNoAnswer, protocol.ProbeWrongReply}
	for i, r := range res {
		if r.Outcome != want[i] || r.PathMTU != 1400 || r.Source != dipK {
			t.Errorf("probe %d: %+v, want %s with path MTU 1400 from %s", i+1, r, want[i], dipK)
		}
	}
	if res[0].MSS != 1360 || res[0].RTTMicros <= 0 || res[1].RTTMicros <= 0 {
		t.Errorf("ok and refused: %+v %+v", res[0], res[1])
	}
	if res[3].Detail != "ICMP protocol unreachable from 10.9.0.5: the realserver does not take IPIP (is the ipip module loaded?)" {
		t.Errorf("ICMP: %q", res[3].Detail)
	}
	if res[5].RTTMicros <= 0 || res[6].Detail != "ICMP port unreachable from "+vip.String() || !strings.HasPrefix(res[8].Detail, "the reply came from 10.9.0.6:5353, not from the VIP") {
		t.Errorf("UDP: %+v", res[5:])
	}
	_ = tun.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	<-done
	mu.Lock()
	defer mu.Unlock()
	var rsts []sentPkt
	for _, s := range got {
		if s.seg.Flags == RST {
			rsts = append(rsts, s)
		}
	}
	if len(got) != 6 || len(rsts) != 2 || rsts[0].rip != ok || rsts[0].seg.Seq != got[0].seg.Seq+1 || rsts[1].rip != silentRIP {
		t.Errorf("the tunnel carried %+v; want 4 SYNs, a RST to %s after its SYN-ACK and one to %s at the end", got, ok, silentRIP)
	}
	if len(gotUDP) != 4 || gotUDP[0].rip != ok || !bytes.Equal(gotUDP[0].d.Payload, big) || gotUDP[0].d.Src != dipK || gotUDP[0].d.DstPort != 5353 {
		t.Errorf("the tunnel carried the datagrams %+v; want 4, the first with the 1000-byte payload from %s", gotUDP, dipK)
	}
	if len(got) > 0 && !bytes.Equal(got[0].seg.Marshal(), SYNSegment(netip.AddrPortFrom(dipK, got[0].seg.SrcPort), netip.AddrPortFrom(vip, 80), got[0].seg.ID, got[0].seg.Seq).Marshal()) {
		t.Errorf("the kernel changed the SYN: %+v", got[0].seg)
	}
}

// openTun makes a tun device with addr/24, the given MTU, up, and returns it for reading and
// writing IPv4 packets.
func openTun(t *testing.T, name string, addr netip.Addr, mtu int) *os.File {
	t.Helper()
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), name)
	t.Cleanup(func() { f.Close() })
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	err = errors.Join(
		netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(24, 32)}}),
		netlink.LinkSetMTU(l, mtu),
		netlink.LinkSetUp(l))
	if err != nil {
		t.Fatal(err)
	}
	return f
}
