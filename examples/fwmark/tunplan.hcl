# A firewall-mark service: one IPVS service for a web site's HTTP and HTTPS ports, so that with
# persistence a client's connections to port 80 and port 443 land on the same realserver (ipvsadm's
# "persistent firewall mark" service).
#
# - On the director, tunplan owns the nftables table inet tunplan. Its prerouting chain marks the
#   packets to each VIP and port: nft add rule inet tunplan prerouting ip daddr 198.18.48.190
#   tcp dport 443 meta mark set 0x1. IPVS's service for mark 1 (ipvsadm -A -f 1 -s rr -p 300)
#   then takes them, whatever their port, and tunnels them to its realservers
#   (ipvsadm -a -f 1 -r RIP -i).
# - The realservers carry every VIP of the service on tunl0, as for any IPIP service, and answer
#   on the port the client asked for.
#
# The table is tunplan's: diff reports a rule deleted or changed by hand, apply puts it back,
# rollback and destroy remove it. Other tables are never touched.
#
#   tunplan validate -f examples/fwmark/tunplan.hcl
#   tunplan apply    -f examples/fwmark/tunplan.hcl --var ssh_key=/path/to/key


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

virtual_service "web-sticky" {
  fwmark      = 1                 # the mark the director's rules set and IPVS's service takes
  vips        = ["198.18.48.190"] # the VIPs the rules cover, all of one family
  ports       = [80, 443]         # the ports the rules cover
  protocol    = "tcp"
  scheduler   = "rr"
  persistence = 300 # seconds a client stays with its realserver, on every port of the mark
  directors   = ["lvs01"]
  realserver "shanghai" {}
  realserver "beijing" {}
}
