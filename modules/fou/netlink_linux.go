package fou

import (
	"encoding/binary"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Netlink is the host's fou family. Listing and removing are vishvananda/netlink's; adding is its
// own, since netlink.FouAdd always sends FOU_ATTR_IPPROTO, 0 for GUE, which kernels with the fix
// "fou: forbid 0 for FOU_ATTR_IPPROTO" (its policy is NLA_POLICY_MIN(NLA_U8, 1), in stable kernels
// since 2026, Debian's 6.1.0-56 among them) refuse with ERANGE. Like `ip fou add port P gue`, it
// sends the IP protocol only for a direct listener.
type Netlink struct{}

func (Netlink) FouList(family int) ([]netlink.Fou, error) { return netlink.FouList(family) }
func (Netlink) FouDel(f netlink.Fou) error                { return netlink.FouDel(f) }

func (Netlink) FouAdd(f netlink.Fou) error {
	id, err := netlink.FouFamilyId()
	if err != nil {
		return err
	}
	req := nl.NewNetlinkRequest(id, unix.NLM_F_ACK)
	req.AddRawData(addMessage(f))
	_, err = req.Execute(unix.NETLINK_GENERIC, 0)
	return err
}

// addMessage is FOU_CMD_ADD's generic netlink header and attributes: the port (big-endian), the
// type, the family and, for a direct listener only, the IP protocol.
func addMessage(f netlink.Fou) []byte {
	port := binary.BigEndian.AppendUint16(nil, uint16(f.Port))
	attrs := []*nl.RtAttr{
		nl.NewRtAttr(netlink.FOU_ATTR_PORT, port),
		nl.NewRtAttr(netlink.FOU_ATTR_TYPE, []byte{uint8(f.EncapType)}),
		nl.NewRtAttr(netlink.FOU_ATTR_AF, []byte{uint8(f.Family)}),
	}
	if f.EncapType != netlink.FOU_ENCAP_GUE {
		attrs = append(attrs, nl.NewRtAttr(netlink.FOU_ATTR_IPPROTO, []byte{uint8(f.Protocol)}))
	}
	raw := []byte{netlink.FOU_CMD_ADD, 1, 0, 0} // command, version 1
	for _, a := range attrs {
		raw = append(raw, a.Serialize()...)
	}
	return raw
}
