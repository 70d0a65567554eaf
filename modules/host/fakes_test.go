package host

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"sort"
	"syscall"

	cipvs "github.com/cloudflare/ipvs"
	"github.com/vishvananda/netlink"

	"github.com/tunplan/tunplan/modules/ipvs"
)

// fakeKernel is an in-memory host: modules, /proc/sys, links with addresses, and an IPVS table that
// enforces what the kernel enforces (no duplicate services or destinations, no destination without
// its service). failOn makes one operation fail, to test restore.
type fakeKernel struct {
	modules map[string]bool
	sysctls map[string]string
	links   map[string]*fakeLink
	svcs    map[string]*fakeSvc
	fou     map[int]netlink.Fou // fou listeners by port (IPv4, unbound)
	failOn  string
	calls   int    // netlink/IPVS/sysctl writes
	ipvsErr error  // the first failed IPVS write since the last Flush
	exact   []bool // the tunnels argument of every Destinations read
}

type fakeLink struct {
	up    bool
	addrs []string
}

type fakeSvc struct {
	svc   cipvs.Service
	dests map[string]cipvs.Destination
}

func newFake() *fakeKernel {
	return &fakeKernel{
		modules: map[string]bool{},
		sysctls: map[string]string{
			"net.ipv4.ip_forward": "0", "net.ipv4.conf.all.rp_filter": "1", "net.ipv4.conf.default.rp_filter": "1",
			"net.ipv4.conf.all.arp_ignore": "0", "net.ipv4.conf.all.arp_announce": "0",
		},
		links: map[string]*fakeLink{},
		svcs:  map[string]*fakeSvc{},
		fou:   map[int]netlink.Fou{},
	}
}

// fail counts a write and refuses it once if it is the one to fail (a transient fault: the restore
// that follows may do the same operation).
func (f *fakeKernel) fail(op string) error {
	f.calls++
	if f.failOn != "" && f.failOn == op {
		f.failOn = ""
		return fmt.Errorf("fake: %s refused", op)
	}
	return nil
}

// kmod
func (f *fakeKernel) Loaded(name string) bool { return f.modules[name] }
func (f *fakeKernel) Load(name string) error {
	if err := f.fail("load " + name); err != nil {
		return err
	}
	f.modules[name] = true
	for mod, dev := range map[string]string{"ipip": "tunl0", "ip_gre": "gre0"} {
		if name == mod && f.links[dev] == nil {
			f.links[dev] = &fakeLink{}
			f.sysctls["net.ipv4.conf."+dev+".rp_filter"] = f.sysctls["net.ipv4.conf.default.rp_filter"]
		}
	}
	return nil
}

// fou: the generic netlink family exists while the module is loaded; one listener per port.
func (f *fakeKernel) FouList(int) ([]netlink.Fou, error) {
	if !f.modules["fou"] {
		return nil, errors.New("no such file or directory (generic netlink family fou)")
	}
	var out []netlink.Fou
	for _, x := range f.fou {
		out = append(out, x)
	}
	return out, nil
}

func (f *fakeKernel) FouAdd(x netlink.Fou) error {
	if !f.modules["fou"] {
		return errors.New("no such file or directory (generic netlink family fou)")
	}
	if _, ok := f.fou[x.Port]; ok {
		return syscall.EALREADY
	}
	if err := f.fail(fmt.Sprintf("fou add %d", x.Port)); err != nil {
		return err
	}
	f.fou[x.Port] = x
	return nil
}

func (f *fakeKernel) FouDel(x netlink.Fou) error {
	if _, ok := f.fou[x.Port]; !ok {
		return syscall.ENOENT
	}
	delete(f.fou, x.Port)
	return f.fail(fmt.Sprintf("fou del %d", x.Port))
}

// sysctl
type fakeSysctl struct{ *fakeKernel }

func (f fakeSysctl) Read(key string) (string, error) {
	v, ok := f.sysctls[key]
	if !ok {
		return "", fs.ErrNotExist
	}
	return v, nil
}

func (f fakeSysctl) Write(key, value string) error {
	if _, ok := f.sysctls[key]; !ok {
		return fs.ErrNotExist
	}
	if err := f.fail("sysctl " + key); err != nil {
		return err
	}
	f.sysctls[key] = value
	return nil
}

// tunnel
func (f *fakeKernel) LinkByName(name string) (netlink.Link, error) {
	l, ok := f.links[name]
	if !ok {
		return nil, netlink.LinkNotFoundError{}
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	if l.up {
		attrs.Flags = net.FlagUp
	}
	return &netlink.Dummy{LinkAttrs: attrs}, nil
}

// LinkList lists the devices by name ("lo" is the loopback), as LinkByName makes them.
func (f *fakeKernel) LinkList() ([]netlink.Link, error) {
	names := make([]string, 0, len(f.links))
	for n := range f.links {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []netlink.Link
	for _, n := range names {
		l, _ := f.LinkByName(n)
		if n == "lo" {
			l.Attrs().Flags |= net.FlagLoopback
		}
		out = append(out, l)
	}
	return out, nil
}

func (f *fakeKernel) LinkSetUp(l netlink.Link) error {
	if err := f.fail("up " + l.Attrs().Name); err != nil {
		return err
	}
	f.links[l.Attrs().Name].up = true
	return nil
}

func (f *fakeKernel) LinkSetDown(l netlink.Link) error {
	f.links[l.Attrs().Name].up = false
	return f.fail("down " + l.Attrs().Name)
}

func (f *fakeKernel) AddrList(l netlink.Link, _ int) ([]netlink.Addr, error) {
	var out []netlink.Addr
	for _, a := range f.links[l.Attrs().Name].addrs {
		ip, n, _ := net.ParseCIDR(a)
		out = append(out, netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: n.Mask}})
	}
	return out, nil
}

func (f *fakeKernel) AddrAdd(l netlink.Link, a *netlink.Addr) error {
	if err := f.fail("addr add " + a.IPNet.String()); err != nil {
		return err
	}
	fl := f.links[l.Attrs().Name]
	for _, x := range fl.addrs {
		if x == a.IPNet.String() {
			return errors.New("file exists")
		}
	}
	fl.addrs = append(fl.addrs, a.IPNet.String())
	return nil
}

func (f *fakeKernel) AddrDel(l netlink.Link, a *netlink.Addr) error {
	fl := f.links[l.Attrs().Name]
	for i, x := range fl.addrs {
		if x == a.IPNet.String() {
			fl.addrs = append(fl.addrs[:i], fl.addrs[i+1:]...)
			return f.fail("addr del " + a.IPNet.String())
		}
	}
	return errors.New("cannot assign requested address")
}

// IPVS
func svcKey(s cipvs.Service) string     { return fmt.Sprintf("%d/%s:%d", s.Protocol, s.Address, s.Port) }
func dstKey(d cipvs.Destination) string { return fmt.Sprintf("%s:%d", d.Address, d.Port) }

func (f *fakeKernel) Services() ([]cipvs.Service, error) {
	keys := make([]string, 0, len(f.svcs))
	for k := range f.svcs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []cipvs.Service
	for _, k := range keys {
		svc := f.svcs[k].svc
		svc.Flags |= cipvs.ServiceHashed // as the kernel reports it
		out = append(out, svc)
	}
	return out, nil
}

// Destinations reads what the kernel holds; without tunnels, as /proc/net/ip_vs gives it for a large
// table: every tunnel reads as IPIP.
func (f *fakeKernel) Destinations(svcs []cipvs.Service, tunnels bool) ([][]cipvs.Destination, error) {
	f.exact = append(f.exact, tunnels)
	out := make([][]cipvs.Destination, len(svcs))
	for i, s := range svcs {
		fs, ok := f.svcs[svcKey(s)]
		if !ok {
			return nil, errors.New("no such service")
		}
		for _, d := range fs.dests {
			if !tunnels {
				d.TunnelType, d.TunnelPort, d.TunnelFlags = cipvs.IPIP, 0, 0
			}
			out[i] = append(out[i], d)
		}
	}
	return out, nil
}

// Counters reads what the kernel holds, every counter 0.
func (f *fakeKernel) Counters(svcs []cipvs.Service) ([][]cipvs.DestinationExtended, error) {
	out := make([][]cipvs.DestinationExtended, len(svcs))
	for i, s := range svcs {
		fs, ok := f.svcs[svcKey(s)]
		if !ok {
			return nil, errors.New("no such service")
		}
		for _, d := range fs.dests {
			out[i] = append(out[i], cipvs.DestinationExtended{Destination: d})
		}
	}
	return out, nil
}

// Queue applies an IPVS write at once; its failure is reported by Flush, as the batching client does.
func (f *fakeKernel) Queue(w ipvs.Write) error {
	var err error
	switch w.Cmd {
	case ipvs.NewService:
		err = f.CreateService(w.Service)
	case ipvs.SetService:
		err = f.UpdateService(w.Service)
	case ipvs.DelService:
		err = f.RemoveService(w.Service)
	case ipvs.NewDest:
		err = f.CreateDestination(w.Service, w.Dest)
	case ipvs.SetDest:
		err = f.UpdateDestination(w.Service, w.Dest)
	case ipvs.DelDest:
		err = f.RemoveDestination(w.Service, w.Dest)
	default:
		err = fmt.Errorf("unknown command %d", w.Cmd)
	}
	if err != nil && f.ipvsErr == nil {
		f.ipvsErr = fmt.Errorf("ipvs: %s: %w", w.Name, err)
	}
	return nil
}

func (f *fakeKernel) Flush() error {
	err := f.ipvsErr
	f.ipvsErr = nil
	return err
}

func (f *fakeKernel) CreateService(s cipvs.Service) error {
	if _, ok := f.svcs[svcKey(s)]; ok {
		return errors.New("file exists")
	}
	if err := f.fail("create service"); err != nil {
		return err
	}
	f.svcs[svcKey(s)] = &fakeSvc{svc: s, dests: map[string]cipvs.Destination{}}
	return nil
}

func (f *fakeKernel) UpdateService(s cipvs.Service) error {
	fs, ok := f.svcs[svcKey(s)]
	if !ok {
		return errors.New("no such service")
	}
	if err := f.fail("update service"); err != nil {
		return err
	}
	fs.svc = s
	return nil
}

func (f *fakeKernel) RemoveService(s cipvs.Service) error {
	if _, ok := f.svcs[svcKey(s)]; !ok {
		return errors.New("no such service")
	}
	delete(f.svcs, svcKey(s))
	return f.fail("remove service")
}

func (f *fakeKernel) CreateDestination(s cipvs.Service, d cipvs.Destination) error {
	fs, ok := f.svcs[svcKey(s)]
	if !ok {
		return errors.New("no such service")
	}
	if _, ok := fs.dests[dstKey(d)]; ok {
		return errors.New("file exists")
	}
	if err := f.fail("create destination " + dstKey(d)); err != nil {
		return err
	}
	fs.dests[dstKey(d)] = d
	return nil
}

func (f *fakeKernel) UpdateDestination(s cipvs.Service, d cipvs.Destination) error {
	fs, ok := f.svcs[svcKey(s)]
	if !ok || fs.dests[dstKey(d)] == (cipvs.Destination{}) {
		return errors.New("no such destination")
	}
	if err := f.fail("update destination " + dstKey(d)); err != nil {
		return err
	}
	fs.dests[dstKey(d)] = d
	return nil
}

func (f *fakeKernel) RemoveDestination(s cipvs.Service, d cipvs.Destination) error {
	fs, ok := f.svcs[svcKey(s)]
	if !ok {
		return errors.New("no such service")
	}
	delete(fs.dests, dstKey(d))
	return f.fail("remove destination " + dstKey(d))
}
