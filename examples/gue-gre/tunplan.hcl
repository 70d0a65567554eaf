# The two-region set-up with the same web service reached three ways: IPIP (the default), GUE and
# GRE. A network that filters IP protocol 4 may let GRE (protocol 47) or UDP through; GUE also gives
# each flow its own UDP source port, which ECMP routers and the realservers' RSS spread over paths
# and queues.
#
# - GUE: the director (Linux 5.2 or later) sends each request in UDP to port 6080 of the
#   realserver, in a GUE header; the realserver's fou listener on that port (ip fou add port 6080
#   gue) hands the inner packet to IPIP, so tunl0 receives it and carries the VIP, as for IPIP.
# - GRE: the director (Linux 5.3 or later) wraps the request in GRE; the realserver's ip_gre module
#   receives it on its gre0 device, which carries the VIP.
#
# The realservers answer clients directly in every case.
#
#   tunplan validate -f examples/gue-gre/tunplan.hcl
#   tunplan apply    -f examples/gue-gre/tunplan.hcl --var ssh_key=/path/to/key

variable "ssh_key" {
  description = "Private key tunplan logs in with (the ssh-agent is used too)."
  default     = "~/.ssh/id_ed25519"
}

variable "known_hosts" {
  description = "known_hosts file the hosts' keys are checked against."
  default     = "~/.ssh/known_hosts"
}

ssh {
  user          = "root"
  identity_file = var.ssh_key
  known_hosts   = var.known_hosts
}

host "lvs01" {
  role    = "director"
  address = "198.18.48.181"
  ssh { host = "198.19.0.11" }
}

host "shanghai" {
  role    = "realserver"
  address = "198.18.1.183"
  ssh { host = "198.19.0.21" }
}

host "beijing" {
  role    = "realserver"
  address = "198.18.10.182"
  ssh { host = "198.19.0.22" }
}

# IPIP, as in examples/two-region: ipvsadm -a -t 198.18.48.180:80 -r RIP:80 -i
virtual_service "web" {
  vip       = "198.18.48.180"
  port      = 80
  scheduler = "rr"
  directors = ["lvs01"]
  realserver "shanghai" {}
  realserver "beijing" {}
}

# GUE: ipvsadm -a -t 198.18.48.185:80 -r RIP:80 -i --tun-type gue --tun-port 6080; on each
# realserver, ip fou add port 6080 gue and the VIP on tunl0.
virtual_service "web-gue" {
  vip       = "198.18.48.185"
  port      = 80
  scheduler = "rr"
  tunnel    = "gue"
  directors = ["lvs01"]
  realserver "shanghai" {}
  realserver "beijing" {}

  gue {
    port            = 6080  # the UDP port of the realservers' fou listener
    checksum        = false # true: UDP checksums on the outer header (Linux 5.3)
    remote_checksum = false # true: remote checksum offload (Linux 5.3)
  }
}

# GRE: ipvsadm -a -t 198.18.48.186:80 -r RIP:80 -i --tun-type gre; on each realserver, ip_gre
# loaded and the VIP on gre0.
virtual_service "web-gre" {
  vip       = "198.18.48.186"
  port      = 80
  scheduler = "rr"
  tunnel    = "gre"
  directors = ["lvs01"]
  realserver "shanghai" {}
  realserver "beijing" {}

  gre {
    checksum = false # true is refused: gre0 drops checksummed GRE
  }
}
