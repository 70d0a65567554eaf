package fou

import (
	"bytes"
	"testing"

	"github.com/vishvananda/netlink"
)

// The add request is `ip fou add port 6080 gue`'s: port (big-endian), type, family, and no IP
// protocol for GUE (a kernel with "fou: forbid 0 for FOU_ATTR_IPPROTO" refuses 0 with ERANGE); a
// direct listener carries its protocol.
func TestAddMessage(t *testing.T) {
	gue := addMessage(netlink.Fou{Family: netlink.FAMILY_V4, Port: 6080, EncapType: netlink.FOU_ENCAP_GUE})
	want := []byte{
		1, 1, 0, 0, // FOU_CMD_ADD, version 1
		6, 0, 1, 0, 0x17, 0xc0, 0, 0, // FOU_ATTR_PORT 6080, big-endian, padded
		5, 0, 4, 0, 2, 0, 0, 0, // FOU_ATTR_TYPE GUE
		5, 0, 2, 0, 2, 0, 0, 0, // FOU_ATTR_AF AF_INET
	}
	if !bytes.Equal(gue, want) {
		t.Errorf("GUE add\n got %v\nwant %v", gue, want)
	}
	direct := addMessage(netlink.Fou{Family: netlink.FAMILY_V4, Port: 5555, EncapType: netlink.FOU_ENCAP_DIRECT, Protocol: 4})
	if tail := []byte{5, 0, 3, 0, 4, 0, 0, 0}; !bytes.HasSuffix(direct, tail) || len(direct) != len(want)+8 {
		t.Errorf("direct add %v lacks FOU_ATTR_IPPROTO 4", direct)
	}
}
