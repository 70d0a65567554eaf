package imports

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/inventory/target"
)

// The SSH settings that are not the defaults go into the plan's ssh block, and the plan reaches
// every host as Target does.
func TestSSH(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip(err)
	}
	jump := &target.Target{Address: "bastion", Port: 2200, User: "ops"}
	cases := []struct {
		name  string
		ssh   SSH
		jump  *target.Target
		block string // "": none
	}{
		{"defaults", defaultSSH, nil, ""},
		{"the default known_hosts, expanded", SSH{User: DefaultUser, Port: DefaultPort, KnownHosts: filepath.Join(home, ".ssh/known_hosts")}, nil, ""},
		{"one key under ~", SSH{User: DefaultUser, Port: DefaultPort, IdentityFiles: []string{"~/.ssh/lab"}, KnownHosts: DefaultKnownHosts}, nil,
			"ssh {\n  identity_file = \"~/.ssh/lab\"\n}\n"},
		{"all", SSH{User: "deploy", Port: 2222, IdentityFiles: []string{"/keys/a", "/keys/b"}, KnownHosts: "/lab/known_hosts", Sudo: true, Jump: "ops@bastion:2200"}, jump,
			"ssh {\n  user          = \"deploy\"\n  port          = 2222\n  identity_file = [\"/keys/a\", \"/keys/b\"]\n  known_hosts   = \"/lab/known_hosts\"\n  sudo          = true\n  jump          = \"ops@bastion:2200\"\n}\n"},
		{"a jump without a user", SSH{User: "deploy", Port: DefaultPort, KnownHosts: DefaultKnownHosts, Jump: "bastion"}, &target.Target{Address: "bastion", Port: 22},
			"ssh {\n  user = \"deploy\"\n  jump = \"bastion\"\n}\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hosts := twoDirectors()
			p, loaded, _ := load(t, hosts, c.ssh)
			src := string(p.HCL())
			if c.block != "" && !strings.Contains(src, "\n\n"+c.block+"\n") || c.block == "" && strings.Contains(src, "\nssh {") {
				t.Errorf("plan, want ssh block %q:\n%s", c.block, src)
			}
			for _, h := range loaded.Hosts {
				addr := h.Address.String()
				if i := slices.IndexFunc(hosts, func(g Host) bool { return g.Name == h.Name }); i >= 0 {
					addr = hosts[i].SSHAddress
				}
				if got := c.ssh.Target(h.Name, addr, c.jump); !reflect.DeepEqual(got, h.Target()) {
					t.Errorf("%s: Target %+v (jump %+v)\nthe plan's %+v (jump %+v)", h.Name, got, got.Jump, h.Target(), h.Target().Jump)
				}
			}
		})
	}
}
