package probe

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"

	"github.com/tunplan/tunplan/modules/protocol"
)

// SnapLen is how much of a TCP or ICMP packet the capture keeps: IPv4 and TCP headers with options
// (120 bytes at most), or an ICMP error quoting an IPIP packet's two IPv4 headers and a TCP or UDP
// header.
const SnapLen = 256

// UDPSnapLen is how much of a UDP reply the capture keeps: IPv4 header with options, UDP header,
// and as many bytes as a probe may expect.
const UDPSnapLen = 60 + udpLen + protocol.MaxProbePayload

// maxFilteredSources is how many addresses the filter compares a TCP (or UDP) packet's source with;
// with more it only checks the destination port (a conditional jump reaches 255 instructions at
// most).
const maxFilteredSources = 64

// Filter is the classic BPF program of a capture: for an AF_PACKET SOCK_DGRAM socket, whose
// packets start at the IPv4 header. It keeps
//
//   - when vips is not empty, SnapLen bytes of IPv4 TCP, not a later fragment, from one of vips
//     (unless there are more than 64), to a port in [lo, hi]: the answers to TCP probes sent from
//     those ports;
//   - when udpSrcs is not empty, UDPSnapLen bytes of IPv4 UDP, not a later fragment, from one of
//     udpSrcs (unless there are more than 64), to a port in [lo, hi]: the replies to UDP probes,
//     from their VIP (or, wrongly, their RIP);
//   - SnapLen bytes of IPv4 ICMP destination unreachable or time exceeded that quotes an IPIP (4)
//     packet, a TCP (6) one when vips is not empty, or a UDP (17) one when udpSrcs is not empty:
//     why a probe's packet went unanswered;
//
// and drops everything else. In tcpdump's words: ip and not ip[6:2] & 0x1fff != 0 and
// ((tcp and src host (VIP or …) and dst portrange lo-hi) or (udp and src host (VIP or RIP or …) and
// dst portrange lo-hi) or (icmp and (icmp[0] = 3 or icmp[0] = 11) and (icmp[17] = 4 or icmp[17] = 6
// or icmp[17] = 17))).
func Filter(vips, udpSrcs []netip.Addr, lo, hi uint16) ([]bpf.RawInstruction, error) {
	tcpSrcs, err := sources(vips)
	if err != nil {
		return nil, err
	}
	uSrcs, err := sources(udpSrcs)
	if err != nil {
		return nil, err
	}
	tcp, udp := len(vips) > 0, len(udpSrcs) > 0
	var a asm
	a.add(bpf.LoadAbsolute{Off: 0, Size: 1}) // version and header length
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
	a.jump(bpf.JumpNotEqual, 0x40, "drop", "")
	a.add(bpf.LoadAbsolute{Off: 6, Size: 2}) // flags and fragment offset
	a.jump(bpf.JumpBitsSet, 0x1fff, "drop", "")
	a.add(bpf.LoadMemShift{Off: 0}) // X = header length in bytes
	a.add(bpf.LoadAbsolute{Off: 9, Size: 1})
	if tcp {
		a.jump(bpf.JumpNotEqual, protoTCP, "udp", "")
		a.replyFrom(tcpSrcs, lo, hi, "keep")
	}
	a.label("udp")
	if udp {
		a.jump(bpf.JumpNotEqual, protoUDP, "icmp", "")
		a.replyFrom(uSrcs, lo, hi, "keepudp")
	}
	a.label("icmp")
	a.jump(bpf.JumpNotEqual, protoICMP, "drop", "")
	a.add(bpf.LoadIndirect{Off: 0, Size: 1}) // ICMP type
	a.jump(bpf.JumpEqual, icmpUnreachable, "quoted", "")
	a.jump(bpf.JumpNotEqual, icmpTimeExceeded, "drop", "")
	a.label("quoted")
	a.add(bpf.LoadIndirect{Off: 8 + 9, Size: 1}) // the quoted header's protocol
	a.jump(bpf.JumpEqual, protoIPIP, "keep", "")
	if tcp {
		a.jump(bpf.JumpEqual, protoTCP, "keep", "")
	}
	if udp {
		a.jump(bpf.JumpEqual, protoUDP, "keep", "")
	}
	a.label("drop")
	a.add(bpf.RetConstant{Val: 0})
	a.label("keep")
	a.add(bpf.RetConstant{Val: SnapLen})
	if udp {
		a.label("keepudp")
		a.add(bpf.RetConstant{Val: UDPSnapLen})
	}
	prog, err := a.resolve()
	if err != nil {
		return nil, err
	}
	return bpf.Assemble(prog)
}

// sources is the distinct IPv4 addresses as the filter compares them; none (any source) when there
// are more than maxFilteredSources.
func sources(addrs []netip.Addr) ([]uint32, error) {
	var srcs []uint32
	seen := map[uint32]bool{}
	for _, v := range addrs {
		if !v.Is4() {
			return nil, fmt.Errorf("filter: %s is not an IPv4 address", v)
		}
		a := v.As4()
		if n := binary.BigEndian.Uint32(a[:]); !seen[n] {
			seen[n] = true
			srcs = append(srcs, n)
		}
	}
	if len(srcs) > maxFilteredSources {
		return nil, nil
	}
	return srcs, nil
}

// replyFrom continues a program whose X holds the IPv4 header length, on a TCP or UDP packet: it
// jumps to keep when the destination port is in [lo, hi] and the source is one of srcs (any, when
// srcs is empty), else to "drop".
func (a *asm) replyFrom(srcs []uint32, lo, hi uint16, keep string) {
	a.add(bpf.LoadIndirect{Off: 2, Size: 2}) // destination port
	a.jump(bpf.JumpLessThan, uint32(lo), "drop", "")
	a.jump(bpf.JumpGreaterThan, uint32(hi), "drop", "")
	if len(srcs) == 0 {
		a.jumpTo(keep)
		return
	}
	a.add(bpf.LoadAbsolute{Off: 12, Size: 4}) // source address
	for _, s := range srcs {
		a.jump(bpf.JumpEqual, s, keep, "")
	}
	a.jumpTo("drop")
}

// DropAll is a program that keeps nothing: for the raw IPIP socket, which sends and must not queue
// the host's IPIP traffic it would otherwise receive.
func DropAll() []bpf.RawInstruction {
	raw, _ := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	return raw
}

// asm assembles a program with named jump targets.
type asm struct {
	prog   []bpf.Instruction
	labels map[string]int
	fixups []fixup
}

type fixup struct {
	at          int
	true, false string // "": the next instruction
}

func (a *asm) add(i bpf.Instruction) { a.prog = append(a.prog, i) }

func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.prog)
}

func (a *asm) jump(cond bpf.JumpTest, val uint32, ifTrue, ifFalse string) {
	a.fixups = append(a.fixups, fixup{len(a.prog), ifTrue, ifFalse})
	a.add(bpf.JumpIf{Cond: cond, Val: val})
}

func (a *asm) jumpTo(name string) {
	a.fixups = append(a.fixups, fixup{at: len(a.prog), true: name})
	a.add(bpf.Jump{})
}

func (a *asm) resolve() ([]bpf.Instruction, error) {
	skip := func(from int, name string) (uint32, error) {
		if name == "" {
			return 0, nil
		}
		to, ok := a.labels[name]
		if !ok || to <= from {
			return 0, fmt.Errorf("filter: no label %q after instruction %d", name, from)
		}
		return uint32(to - from - 1), nil
	}
	for _, f := range a.fixups {
		t, err := skip(f.at, f.true)
		if err != nil {
			return nil, err
		}
		fl, err := skip(f.at, f.false)
		if err != nil {
			return nil, err
		}
		switch i := a.prog[f.at].(type) {
		case bpf.JumpIf:
			if t > 255 || fl > 255 {
				return nil, fmt.Errorf("filter: jump from instruction %d too far", f.at)
			}
			i.SkipTrue, i.SkipFalse = uint8(t), uint8(fl)
			a.prog[f.at] = i
		case bpf.Jump:
			i.Skip = t
			a.prog[f.at] = i
		}
	}
	return a.prog, nil
}
