// Package plans loads tunplan's plan language: an HCL file that says which hosts are LVS directors
// and realservers, how to reach them over SSH, and which virtual services (VIP, port, protocol,
// scheduler) the directors tunnel to which realservers. It validates the whole plan at once and
// turns it into the desired state of every host (protocol.State): kernel modules, sysctls, the tunnel
// device with its VIPs, and IPVS services.
//
// # Language
//
//	variable "vip" { default = "198.18.48.180" }   # --var vip=… overrides; value converted to the default's type
//	locals { web_port = 80 }                        # local.web_port; locals may use var.*, functions, other locals
//
//	ssh {                                           # defaults for every host
//	  user          = "root"                        # default root
//	  port          = 22                            # default 22
//	  identity_file = "~/.ssh/id_ed25519"           # string or list; the ssh-agent is used too
//	  known_hosts   = "~/.ssh/known_hosts"          # default ~/.ssh/known_hosts
//	  sudo          = false                         # run the helper with sudo -n
//	  jump          = "ops@198.19.0.1:22"           # optional bastion, as OpenSSH's ProxyJump
//	}
//
//	host "lvs01" {
//	  role       = "director"                       # "director", "realserver" or a list of both (required)
//	  address    = "198.18.48.181"                  # data-plane address, or [IPv4, IPv6]; a realserver's RIP (required)
//	  vip_device = "tunl0"                          # director only: device that carries the VIPs
//	  ip_forward = true                             # director only: false leaves net.ipv4.ip_forward alone
//	  metrics_file = "/var/lib/prometheus/node-exporter/tunplan.prom" # director only: the watcher's Prometheus text file ("" none)
//	  hide_vip   = true                             # realserver only: false leaves arp_ignore and arp_announce alone
//	  tunnel_mss = 1440                             # realserver only: advmss of its default routes (536..65495)
//	  ssh { host = "198.19.0.11" }                  # same attributes as the top-level ssh block, plus host
//	}                                               # (the SSH address; default: address)
//
//	virtual_service "web" {
//	  vip         = var.vip                         # IPv4 or IPv6 (required, unless fwmark)
//	  protocol    = "tcp"                           # tcp | udp (default tcp)
//	  port        = local.web_port                  # 1..65535 (required)
//	  scheduler   = "rr"                            # rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf (default wlc)
//	  persistence = 0                               # seconds (ipvsadm -p); 0 = none
//	  directors   = ["lvs01"]                       # director hosts that carry the service (required)
//	  tunnel      = "ipip"                          # ipip | gue | gre (default ipip)
//	  realserver "shanghai" { weight = 1 }          # weight 0..65535 (default 1; 0 drains); port, if
//	}                                               # given, must equal the service port
//
//	virtual_service "web-gue" {                     # tunnel = "gue", …
//	  gue {                                         # with tunnel = "gue" only (required then)
//	    port            = 6080                      # 1..65535: the realservers' fou port (required)
//	    checksum        = false                     # UDP checksum (Linux 5.3)
//	    remote_checksum = false                     # remote checksum offload; not with checksum
//	  }
//	}
//
//	virtual_service "web-gre" {                     # tunnel = "gre", …
//	  gre { checksum = false }                      # with tunnel = "gre" only; true is refused (gre0)
//	}
//
//	virtual_service "web-sticky" {                  # a firewall-mark service (ipvsadm -A -f 1), …
//	  fwmark = 1                                    # 1..4294967295, instead of vip and port
//	  vips   = ["198.18.48.190"]                    # the VIPs its mark rules cover, one family (required)
//	  ports  = [80, 443]                            # the ports they cover (required)
//	}
//
//	virtual_service "web-checked" {                 # …
//	  health_check {                                # once
//	    type          = "http"                      # tcp | http | https | udp | none (default tcp, udp for a UDP service; none: no check)
//	    path          = "/healthz"                  # http, https: starts with / (default "/")
//	    host          = "www.example.com"           # http, https: Host header, TLS name (default: the VIP)
//	    expect_status = 200                         # http, https: 100..599 (default 200)
//	    expect_body   = "ok"                        # http, https: a substring of the body (default none)
//	    interval      = "2s"                        # 100ms..1h (default 2s)
//	    timeout       = "1s"                        # 10ms or more, shorter than interval (default 1s)
//	    fall          = 3                           # 1..100 failures in a row: weight 0 (default 3)
//	    rise          = 2                           # 1..100 successes in a row: plan weight (default 2)
//	    on_failure    = "quiesce"                   # quiesce (weight 0) | remove (out of the service; not with mh)
//	  }
//	}
//
//	virtual_service "dns" {                         # protocol = "udp", …
//	  probe {                                       # UDP only: what tunplan verify (Plan.Probes) and a udp check send
//	    send_hex = "7470 0100 0001 …"               # or send = "text": 1..1400 bytes (required)
//	    expect   = "…"                              # or expect_hex: the reply's first bytes (default: any)
//	  }
//	  health_check { type = "udp" }                 # UDP: sends the probe block, checks the start of the reply
//	}
//
// Any block may be generated with a dynamic block (hashicorp/hcl ext/dynblock: for_each, iterator,
// labels, content), and expressions may use for-expressions and the functions listed in README.md
// (format, range, concat, merge, cidrhost, cidrsubnet, …).
//
// # Desired state
//
// A realserver of any VIP gets the ipip module, tunl0 carrying every VIP it serves as /32,
// rp_filter=0 on all and tunl0, arp_ignore=1 and arp_announce=2 (unless hide_vip = false), and
// with tunnel_mss that advmss on its IPv4 default routes (State.Routes). A director gets ip_vs and
// ip_vs_<scheduler> for each scheduler it uses (and ipip when the VIPs go on tunl0),
// net.ipv4.ip_forward=1 unless ip_forward = false, its vip_device carrying its VIPs as /32, and one
// IPVS service per virtual_service it carries, whose destinations are the realservers' addresses on
// the service port with forward method "tunnel" and the service's tunnel (type, GUE port, checksum
// flags). A realserver of a GUE service also gets the fou module and a fou listener on the GUE port
// (GUE decapsulates to IPIP, on tunl0); one of a GRE service gets ip_gre and its VIPs on gre0, with
// rp_filter=0 there, instead of tunl0's. A director of a service with a health_check also gets
// the check (State.Checks), one probe service per destination (an rr firewall-mark service on a
// mark from protocol.ProbeMarkBase with that one destination on the checked port, and the
// service's tunnel; ip_vs_rr), and for an IPv4 service net.ipv4.conf.all.accept_local=1 and
// rp_filter=2, so that the answers its checks get from the VIP are taken in (IPv6 takes them in as
// they are); with a persistent service, net.ipv4.vs.expire_quiescent_template=1; and the file its
// watcher writes metrics to (State.Metrics). Every list is sorted.
//
// # Diagnostics
//
// Every problem is an hcl.Diagnostic with a source range and a Detail that says how to fix it; all
// of them are returned together. Print them with
// hcl.NewDiagnosticTextWriter(w, files, width, color).WriteDiagnostics(diags), files being the map
// Load and LoadFile return.
package plans
