package ipvs

// The IPVS generic netlink wire format, encoded here rather than through cloudflare/ipvs so that
// many requests can share one sendmsg: the attributes are the ones cloudflare/ipvs v0.12.0 sends
// (client_linux.go packService and packDest), in the same order, and the tests compare the two.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	cipvs "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
)

// Cmd is an IPVS generic netlink command (include/uapi/linux/ip_vs.h).
type Cmd uint8

// The commands tunplan sends.
const (
	NewService Cmd = 1
	SetService Cmd = 2
	DelService Cmd = 3
	getService Cmd = 4
	NewDest    Cmd = 5
	SetDest    Cmd = 6
	DelDest    Cmd = 7
	getDest    Cmd = 8
)

func (c Cmd) isDest() bool { return c == NewDest || c == SetDest || c == DelDest || c == getDest }

const (
	genlVersion = 1

	cmdAttrService = 1
	cmdAttrDest    = 2

	svcAttrAf        = 1
	svcAttrProtocol  = 2
	svcAttrAddr      = 3
	svcAttrPort      = 4
	svcAttrFwmark    = 5
	svcAttrSchedName = 6
	svcAttrFlags     = 7
	svcAttrTimeout   = 8
	svcAttrNetmask   = 9

	destAttrAddr         = 1
	destAttrPort         = 2
	destAttrFwdMethod    = 3
	destAttrWeight       = 4
	destAttrUThresh      = 5
	destAttrLThresh      = 6
	destAttrActiveConns  = 7
	destAttrInactConns   = 8
	destAttrPersistConns = 9
	destAttrStats        = 10
	destAttrAddrFamily   = 11
	destAttrStats64      = 12
	destAttrTunType      = 13
	destAttrTunPort      = 14
	destAttrTunFlags     = 15

	// the totals nested in destAttrStats and destAttrStats64 (IPVS_STATS_ATTR_*)
	statsAttrConns    = 1
	statsAttrInpkts   = 2
	statsAttrOutpkts  = 3
	statsAttrInbytes  = 4
	statsAttrOutbytes = 5

	// netlink (include/uapi/linux/netlink.h, genetlink.h)
	nlmsgHdrLen   = 16
	genlHdrLen    = 4
	nlmsgError    = 2
	nlmsgDone     = 3
	flagRequest   = 0x1
	flagMulti     = 0x2
	flagAck       = 0x4
	flagDump      = 0x300
	genlIDCtrl    = 0x10
	ctrlCmdGetFam = 3
	ctrlAttrFamID = 1
	ctrlAttrName  = 2
)

func align4(n int) int { return (n + 3) &^ 3 }

// putAttr appends one attribute (header, data, padding).
func putAttr(b []byte, typ uint16, data ...byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(4+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for i := len(data); i < align4(len(data)); i++ {
		b = append(b, 0)
	}
	return b
}

func putU16(b []byte, typ, v uint16) []byte {
	return putAttr(b, typ, binary.NativeEndian.AppendUint16(nil, v)...)
}

func putU32(b []byte, typ uint16, v uint32) []byte {
	return putAttr(b, typ, binary.NativeEndian.AppendUint32(nil, v)...)
}

// putBE16 is a port: network byte order.
func putBE16(b []byte, typ, v uint16) []byte { return putAttr(b, typ, byte(v>>8), byte(v)) }

// nest appends an attribute whose data is what fill appends (cloudflare/ipvs uses
// AttributeEncoder.Do, which does not set NLA_F_NESTED; neither do we).
func nest(b []byte, typ uint16, fill func([]byte) []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b = fill(b)
	binary.NativeEndian.PutUint16(b[start:], uint16(len(b)-start))
	binary.NativeEndian.PutUint16(b[start+2:], typ)
	return b
}

// appendService appends the service attributes as cloudflare/ipvs's packService does.
func appendService(b []byte, svc cipvs.Service) []byte {
	b = putU16(b, svcAttrAf, uint16(svc.Family))
	b = putAttr(b, svcAttrSchedName, append([]byte(svc.Scheduler), 0)...)
	flags := binary.NativeEndian.AppendUint32(nil, uint32(svc.Flags))
	b = putAttr(b, svcAttrFlags, append(flags, 0xFF, 0xFF, 0xFF, 0xFF)...)
	b = putU32(b, svcAttrTimeout, svc.Timeout)
	switch {
	case svc.Netmask.Is4():
		b = putAttr(b, svcAttrNetmask, svc.Netmask.AsSlice()...)
	case svc.Netmask.Is6():
		if ones := svc.Netmask.Bits(); ones >= 0 {
			b = putU32(b, svcAttrNetmask, uint32(ones))
		}
	}
	if svc.FWMark != 0 {
		return putU32(b, svcAttrFwmark, svc.FWMark)
	}
	b = putU16(b, svcAttrProtocol, uint16(svc.Protocol))
	b = putAttr(b, svcAttrAddr, svc.Address.AsSlice()...)
	return putBE16(b, svcAttrPort, svc.Port)
}

// appendDest appends the destination attributes as cloudflare/ipvs's packDest does.
func appendDest(b []byte, d cipvs.Destination) []byte {
	b = putU16(b, destAttrAddrFamily, uint16(d.Family))
	b = putAttr(b, destAttrAddr, d.Address.AsSlice()...)
	b = putBE16(b, destAttrPort, d.Port)
	b = putU32(b, destAttrFwdMethod, uint32(d.FwdMethod))
	b = putU32(b, destAttrWeight, d.Weight)
	b = putU32(b, destAttrUThresh, d.UpperThreshold)
	b = putU32(b, destAttrLThresh, d.LowerThreshold)
	b = putAttr(b, destAttrTunType, uint8(d.TunnelType))
	b = putBE16(b, destAttrTunPort, d.TunnelPort)
	return putU16(b, destAttrTunFlags, uint16(d.TunnelFlags))
}

// appendMsg appends one netlink message: header, generic netlink header, attributes.
func appendMsg(b []byte, family, flags uint16, seq uint32, cmd uint8, attrs func([]byte) []byte) []byte {
	start := len(b)
	b = append(b, make([]byte, nlmsgHdrLen)...)
	b = append(b, cmd, genlVersion, 0, 0)
	if attrs != nil {
		b = attrs(b)
	}
	h := b[start:]
	binary.NativeEndian.PutUint32(h[0:], uint32(len(b)-start))
	binary.NativeEndian.PutUint16(h[4:], family)
	binary.NativeEndian.PutUint16(h[6:], flags)
	binary.NativeEndian.PutUint32(h[8:], seq)
	return b
}

// appendWrite appends the request for one write.
func appendWrite(b []byte, family, flags uint16, seq uint32, w Write) []byte {
	return appendMsg(b, family, flags, seq, uint8(w.Cmd), func(b []byte) []byte {
		b = nest(b, cmdAttrService, func(b []byte) []byte { return appendService(b, w.Service) })
		if w.Cmd.isDest() {
			b = nest(b, cmdAttrDest, func(b []byte) []byte { return appendDest(b, w.Dest) })
		}
		return b
	})
}

// message is one netlink message of a datagram.
type message struct {
	typ, flags uint16
	seq        uint32
	data       []byte // after the netlink header
}

func parseMessages(b []byte) ([]message, error) {
	var out []message
	for len(b) >= nlmsgHdrLen {
		l := int(binary.NativeEndian.Uint32(b))
		if l < nlmsgHdrLen || l > len(b) {
			return out, fmt.Errorf("ipvs: malformed netlink message (length %d of %d)", l, len(b))
		}
		out = append(out, message{
			typ: binary.NativeEndian.Uint16(b[4:]), flags: binary.NativeEndian.Uint16(b[6:]),
			seq: binary.NativeEndian.Uint32(b[8:]), data: b[nlmsgHdrLen:l],
		})
		if align4(l) >= len(b) {
			break
		}
		b = b[align4(l):]
	}
	return out, nil
}

// errorCode is the errno of an NLMSG_ERROR (0: an acknowledgement) and the sequence number of
// the request it answers.
func errorCode(m message) (syscall.Errno, uint32, error) {
	if len(m.data) < 4+nlmsgHdrLen {
		return 0, 0, errors.New("ipvs: short netlink error message")
	}
	code := int32(binary.NativeEndian.Uint32(m.data))
	return syscall.Errno(-code), binary.NativeEndian.Uint32(m.data[4+8:]), nil
}

// attrs walks the attributes of b.
func attrs(b []byte, fn func(typ uint16, data []byte)) error {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		if l < 4 || l > len(b) {
			return errors.New("ipvs: malformed netlink attribute")
		}
		fn(binary.NativeEndian.Uint16(b[2:])&0x3fff, b[4:l]) // without NLA_F_NESTED / NET_BYTEORDER
		if align4(l) >= len(b) {
			break
		}
		b = b[align4(l):]
	}
	return nil
}

func u16(b []byte) uint16 {
	if len(b) < 2 {
		return 0
	}
	return binary.NativeEndian.Uint16(b)
}

func u32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.NativeEndian.Uint32(b)
}

// counter is a statistic of IPVS_DEST_ATTR_STATS (a u32, or a u64 for bytes) or of _STATS64
// (a u64), read by its length.
func counter(b []byte) uint64 {
	if len(b) >= 8 {
		return binary.NativeEndian.Uint64(b)
	}
	return uint64(u32(b))
}

func be16(b []byte) uint16 {
	if len(b) < 2 {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func addrOf(b []byte, fam cipvs.AddressFamily) netip.Addr {
	if fam == cipvs.INET && len(b) >= 4 {
		b = b[:4]
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// nested is the data of the attribute typ that a dump answer carries its object in.
func nested(genl []byte, typ uint16, what string) ([]byte, error) {
	var inner []byte
	if err := attrs(genl, func(t uint16, d []byte) {
		if t == typ {
			inner = d
		}
	}); err != nil {
		return nil, err
	}
	if inner == nil {
		return nil, fmt.Errorf("ipvs: %s dump without a %s", what, what)
	}
	return inner, nil
}

// decodeService reads a service from the attributes of an IPVS_CMD_NEW_SERVICE answer, as
// cloudflare/ipvs's unpackService does (counters are not read). The kernel sends a firewall-mark
// service's family and mark, no protocol, address or port: its Address stays the zero Addr.
func decodeService(genl []byte) (cipvs.Service, error) {
	var s cipvs.Service
	var addr, mask []byte
	inner, err := nested(genl, cmdAttrService, "service")
	if err != nil {
		return s, err
	}
	err = attrs(inner, func(t uint16, d []byte) {
		switch t {
		case svcAttrAf:
			s.Family = cipvs.AddressFamily(u16(d))
		case svcAttrProtocol:
			s.Protocol = cipvs.Protocol(u16(d))
		case svcAttrAddr:
			addr = d
		case svcAttrPort:
			s.Port = be16(d)
		case svcAttrFwmark:
			s.FWMark = u32(d)
		case svcAttrSchedName:
			s.Scheduler = cstring(d)
		case svcAttrFlags:
			s.Flags = cipvs.Flags(u32(d))
		case svcAttrTimeout:
			s.Timeout = u32(d)
		case svcAttrNetmask:
			mask = d
		}
	})
	if s.FWMark == 0 {
		s.Address = addrOf(addr, s.Family)
	}
	if len(mask) > 0 {
		switch s.Family {
		case cipvs.INET:
			if m, ok := netmask.MaskFromSlice(mask); ok {
				s.Netmask = m
			}
		case cipvs.INET6:
			s.Netmask = netmask.MaskFrom(int(u32(mask)), 128)
		}
	}
	return s, err
}

// decodeDest reads a destination from the attributes of an IPVS_CMD_NEW_DEST answer; fam is the
// service's family, for kernels that do not send the destination's.
func decodeDest(genl []byte, fam cipvs.AddressFamily) (cipvs.Destination, error) {
	d := cipvs.Destination{Family: fam}
	var addr []byte
	inner, err := nested(genl, cmdAttrDest, "destination")
	if err != nil {
		return d, err
	}
	err = attrs(inner, func(t uint16, v []byte) {
		switch t {
		case destAttrAddr:
			addr = v
		case destAttrPort:
			d.Port = be16(v)
		case destAttrFwdMethod:
			d.FwdMethod = cipvs.ForwardType(u32(v))
		case destAttrWeight:
			d.Weight = u32(v)
		case destAttrUThresh:
			d.UpperThreshold = u32(v)
		case destAttrLThresh:
			d.LowerThreshold = u32(v)
		case destAttrAddrFamily:
			d.Family = cipvs.AddressFamily(u16(v))
		case destAttrTunType:
			if len(v) > 0 {
				d.TunnelType = cipvs.TunnelType(v[0])
			}
		case destAttrTunPort:
			d.TunnelPort = be16(v)
		case destAttrTunFlags:
			d.TunnelFlags = cipvs.TunnelFlags(u16(v))
		}
	})
	d.Address = addrOf(addr, d.Family)
	return d, err
}

// decodeDestExtended reads a destination and its counters from an IPVS_CMD_NEW_DEST answer, as
// cloudflare/ipvs's unpackDestination does, but for the rates. Only status reads the counters:
// decodeDest, which the apply path reads with, skips them.
func decodeDestExtended(genl []byte, fam cipvs.AddressFamily) (cipvs.DestinationExtended, error) {
	d, err := decodeDest(genl, fam)
	x := cipvs.DestinationExtended{Destination: d}
	if err != nil {
		return x, err
	}
	inner, _ := nested(genl, cmdAttrDest, "destination") // decodeDest found it

	var bad error // a malformed statistics attribute
	err = attrs(inner, func(t uint16, v []byte) {
		switch t {
		case destAttrActiveConns:
			x.ActiveConnections = u32(v)
		case destAttrInactConns:
			x.InactiveConnections = u32(v)
		case destAttrPersistConns:
			x.PersistentConnections = u32(v)
		case destAttrStats:
			bad = errors.Join(bad, decodeStats(v, &x.Stats))
		case destAttrStats64:
			bad = errors.Join(bad, decodeStats(v, &x.Stats64))
		}
	})
	return x, errors.Join(err, bad)
}

// decodeStats reads the totals of an IPVS_DEST_ATTR_STATS or _STATS64 attribute into s (not the
// rates, which status does not show). The kernel sends both (ip_vs_genl_fill_dest), _STATS64 since
// Linux 4.1: _STATS has the connection and packet counts as u32, which wrap, the byte counts as u64;
// _STATS64 has them all as u64.
func decodeStats(b []byte, s *cipvs.Stats) error {
	return attrs(b, func(t uint16, v []byte) {
		switch t {
		case statsAttrConns:
			s.Connections = counter(v)
		case statsAttrInpkts:
			s.IncomingPackets = counter(v)
		case statsAttrOutpkts:
			s.OutgoingPackets = counter(v)
		case statsAttrInbytes:
			s.IncomingBytes = counter(v)
		case statsAttrOutbytes:
			s.OutgoingBytes = counter(v)
		}
	})
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
