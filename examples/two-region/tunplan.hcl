# The original two-region LVS-TUN set-up: one director (lvs01) in front of two realservers in two
# regions (shanghai and beijing), round robin on port 80. The director receives the client's packet
# for the VIP, wraps it in IPIP and sends it to a realserver; the realserver unwraps it on tunl0
# (which also carries the VIP) and answers the client directly.
#
#   tunplan validate -f examples/two-region/tunplan.hcl
#   tunplan apply    -f examples/two-region/tunplan.hcl --var ssh_key=/path/to/key

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
}
