package ipvs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	cipvs "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nlenc"
	"github.com/tunplan/tunplan/modules/protocol"
)

// cloudflarePackService and cloudflarePackDest are cloudflare/ipvs v0.12.0's packService and packDest
// (client_linux.go), copied verbatim but for the constants' names: the reference for what
// CreateService & co. send. The message is a genetlink header and
// ae.Do(CmdAttrService, packService(svc)) [+ ae.Do(CmdAttrDest, packDest(dest))].
func cloudflarePackService(svc cipvs.Service) func() ([]byte, error) {
	return func() ([]byte, error) {
		flags := make([]byte, 4)
		binary.NativeEndian.PutUint32(flags, uint32(svc.Flags))
		flags = append(flags, []byte{0xFF, 0xFF, 0xFF, 0xFF}...)

		ae := netlink.NewAttributeEncoder()
		ae.Uint16(svcAttrAf, uint16(svc.Family))
		ae.String(svcAttrSchedName, svc.Scheduler)
		ae.Bytes(svcAttrFlags, flags)
		ae.Uint32(svcAttrTimeout, svc.Timeout)
		switch {
		case svc.Netmask.Is4():
			ae.Bytes(svcAttrNetmask, svc.Netmask.AsSlice())
		case svc.Netmask.Is6():
			if ones := svc.Netmask.Bits(); ones >= 0 {
				b := make([]byte, 4)
				nlenc.PutUint32(b, uint32(ones))
				ae.Bytes(svcAttrNetmask, b)
			}
		}

		if svc.FWMark != 0 {
			ae.Uint32(svcAttrFwmark, svc.FWMark)
		} else {
			ae.Uint16(svcAttrProtocol, uint16(svc.Protocol))
			ae.Bytes(svcAttrAddr, svc.Address.AsSlice())
			ae.Do(svcAttrPort, cloudflarePackPort(svc.Port))
		}

		return ae.Encode()
	}
}

func cloudflarePackDest(dest cipvs.Destination) func() ([]byte, error) {
	return func() ([]byte, error) {
		ae := netlink.NewAttributeEncoder()
		ae.Uint16(destAttrAddrFamily, uint16(dest.Family))
		ae.Bytes(destAttrAddr, dest.Address.AsSlice())
		ae.Do(destAttrPort, cloudflarePackPort(dest.Port))
		ae.Uint32(destAttrFwdMethod, uint32(dest.FwdMethod))
		ae.Uint32(destAttrWeight, dest.Weight)
		ae.Uint32(destAttrUThresh, dest.UpperThreshold)
		ae.Uint32(destAttrLThresh, dest.LowerThreshold)
		ae.Uint8(destAttrTunType, uint8(dest.TunnelType))
		ae.Do(destAttrTunPort, cloudflarePackPort(dest.TunnelPort))
		ae.Uint16(destAttrTunFlags, uint16(dest.TunnelFlags))

		return ae.Encode()
	}
}

func cloudflarePackPort(port uint16) func() ([]byte, error) {
	return func() ([]byte, error) {
		out := make([]byte, 2)
		binary.BigEndian.PutUint16(out, port)
		return out, nil
	}
}

// cloudflareMessage is the generic netlink message cloudflare/ipvs sends for w (header and attributes).
func cloudflareMessage(t *testing.T, w Write) []byte {
	ae := netlink.NewAttributeEncoder()
	ae.Do(cmdAttrService, cloudflarePackService(w.Service))
	if w.Cmd.isDest() {
		ae.Do(cmdAttrDest, cloudflarePackDest(w.Dest))
	}
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{byte(w.Cmd), genlVersion, 0, 0}, b...)
}

var (
	vip  = netip.MustParseAddr("198.18.48.180")
	rip  = netip.MustParseAddr("198.18.1.183")
	svc  = toKernel(protocol.Service{Protocol: "tcp", Address: vip, Port: 80, Scheduler: "rr"})
	dest = destToKernel(protocol.Destination{Address: rip, Port: 80, Weight: 1, Forward: "tunnel"})
)

func TestEncodeAsCloudflare(t *testing.T) {
	persistent := toKernel(protocol.Service{Protocol: "udp", Address: vip, Port: 53, Scheduler: "wlc", Persistence: 300})
	v6 := cipvs.Service{Address: netip.MustParseAddr("2001:db8::1"), Port: 443, Protocol: cipvs.TCP, Family: cipvs.INET6, Scheduler: "sh", Netmask: netmask.MaskFrom(128, 128)}
	fwmark := cipvs.Service{FWMark: 7, Family: cipvs.INET, Scheduler: "rr", Netmask: netmask.MaskFrom(32, 32)}
	gue := cipvs.Destination{Address: rip, Port: 8080, Weight: 65535, Family: cipvs.INET, FwdMethod: cipvs.Tunnel, TunnelType: cipvs.GUE, TunnelPort: 5555, TunnelFlags: cipvs.TunnelEncapRemoteChecksum, UpperThreshold: 10, LowerThreshold: 2}
	drain := dest
	drain.Weight = 0
	route := destToKernel(protocol.Destination{Address: rip, Port: 80, Weight: 3, Forward: "route"})
	for _, w := range []Write{
		{Cmd: NewService, Service: svc},
		{Cmd: NewService, Service: persistent},
		{Cmd: SetService, Service: persistent},
		{Cmd: DelService, Service: svc},
		{Cmd: NewService, Service: v6},
		{Cmd: NewService, Service: fwmark},
		{Cmd: NewDest, Service: svc, Dest: dest},
		{Cmd: SetDest, Service: svc, Dest: drain},
		{Cmd: DelDest, Service: svc, Dest: dest},
		{Cmd: NewDest, Service: svc, Dest: route},
		{Cmd: NewDest, Service: svc, Dest: gue},
	} {
		t.Run(fmt.Sprintf("%d %s %d", w.Cmd, svcName(w.Service), w.Dest.Port), func(t *testing.T) {
			msg := appendWrite(nil, 0x24, flagRequest, 9, w)
			ms, err := parseMessages(msg)
			if err != nil || len(ms) != 1 || ms[0].typ != 0x24 || ms[0].seq != 9 || ms[0].flags != flagRequest {
				t.Fatalf("header: %+v %v", ms, err)
			}
			got, want := ms[0].data, cloudflareMessage(t, w)
			if !bytes.Equal(got, want) {
				t.Errorf("encoding differs from cloudflare/ipvs's\n got %x\nwant %x", got, want)
			}
			// Decoding what we send gives back what we meant (the kernel answers dumps with the
			// same attributes, plus counters).
			s, err := decodeService(got[genlHdrLen:])
			if err != nil || s != w.Service {
				t.Errorf("decoded service %+v, %v; want %+v", s, err, w.Service)
			}
			if w.Cmd.isDest() {
				d, err := decodeDest(got[genlHdrLen:], cipvs.INET)
				if err != nil || d != w.Dest {
					t.Errorf("decoded destination %+v, %v; want %+v", d, err, w.Dest)
				}
			}
		})
	}
}

func TestParseMessages(t *testing.T) {
	var b []byte
	for seq := uint32(1); seq <= 3; seq++ {
		b = appendWrite(b, 0x24, flagRequest, seq, Write{Cmd: NewDest, Service: svc, Dest: dest})
	}
	ms, err := parseMessages(b)
	if err != nil || len(ms) != 3 || ms[2].seq != 3 {
		t.Fatalf("%+v %v", ms, err)
	}
	if _, err := parseMessages(b[:len(b)-1]); err == nil {
		t.Error("a truncated message parsed")
	}
}
