# examples/two-region with a health check: the director checks each realserver of the web service
# with an HTTP GET of / every second, and takes one that fails twice in a row out of the rotation
# (weight 0: no new connections, established ones finish) until it passes twice in a row.
#
# - Each check goes through the service's own tunnel, as a client's request does: the director
#   gets one probe service per realserver, an IPVS firewall-mark service with that one destination
#   (ipvsadm -A -f 1953497088 -s rr; ipvsadm -a -f 1953497088 -r RIP:80 -i), on marks from
#   0x74700000 (1953497088) up, a range kept for them. The checker's socket carries the mark, so no nftables rule is
#   needed. The realserver answers from the VIP, which the director holds too: the director gets
#   net.ipv4.conf.all.accept_local=1 and net.ipv4.conf.all.rp_filter=2 to take the answer in.
# - The helper's watcher on the director runs the checks (State.Checks) and sets the weights: a
#   realserver that fails gets weight 0, one that recovers its weight in the plan. Nothing changes
#   on the realservers.
#
#   tunplan validate -f examples/health-check/tunplan.hcl
#   tunplan apply    -f examples/health-check/tunplan.hcl --var ssh_key=/path/to/key

variable "vip" {
  description = "The virtual address clients connect to."
  default     = "198.18.48.180"
}

variable "ssh_key" {
  description = "Private key tunplan logs in with (the ssh-agent is used too)."
  default     = "~/.ssh/id_ed25519"
}

variable "known_hosts" {
  description = "known_hosts file the hosts' keys are checked against."
  default     = "~/.ssh/known_hosts"
}

# SSH defaults for every host; each host's own ssh block may override them.
ssh {
  user          = "root"
  port          = 22
  identity_file = var.ssh_key
  known_hosts   = var.known_hosts
}

# The director: IPVS runs here and the VIP sits on its tunl0, as in the manual.
host "lvs01" {
  role    = "director"
  address = "198.18.48.181" # data-plane address, the source of the IPIP packets
  ssh { host = "198.19.0.11" }
}

# Realserver in the Shanghai region (lab host rs1).
host "shanghai" {
  role    = "realserver"
  address = "198.18.1.183" # the RIP the director tunnels to
  ssh { host = "198.19.0.21" }
}

# Realserver in the Beijing region (lab host rs2).
host "beijing" {
  role    = "realserver"
  address = "198.18.10.182"
  ssh { host = "198.19.0.22" }
}

# ipvsadm -A -t VIP:80 -s rr; ipvsadm -a -t VIP:80 -r RIP:80 -i (for both realservers)
virtual_service "web" {
  vip       = var.vip
  protocol  = "tcp"
  port      = 80
  scheduler = "rr"
  directors = ["lvs01"]

  realserver "shanghai" {
    weight = 1
  }
  realserver "beijing" {
    weight = 1
  }

  health_check {
    type     = "http" # GET path through the tunnel; "tcp" (the default) only connects
    path     = "/"    # the answer must be expect_status (default 200)
    interval = "1s"   # a check per realserver every second
    timeout  = "500ms"
    fall     = 2 # failures in a row that take a realserver out (weight 0)
    rise     = 2 # successes in a row that give it its weight back
  }
}
