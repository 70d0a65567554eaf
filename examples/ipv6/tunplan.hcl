# The two-region set-up, dual-stack: the web service on an IPv4 VIP as in examples/two-region, and
# the same service on an IPv6 VIP (2001:2::/48 is the IPv6 benchmarking range, like 198.18.0.0/15).
#
# - Each host lists its data-plane address of each family: address = ["<IPv4>", "<IPv6>"]. An
#   IPv6 service tunnels to the realservers' IPv6 addresses.
# - The director takes the IPv6 VIP on ip6tnl0 (the ip6_tunnel module's fallback device) and
#   sends each request to a realserver wrapped in IPv6 (IPv6 in IPv6, next header 41); it needs no
#   IPv6 forwarding. Linux answers neighbour solicitations only for the addresses of the device
#   they arrive on, so the VIP is not on the LAN's link: route it to the director (here the
#   router routes 2001:2:0:ff::/64 to 2001:2:0:48::181), or set vip_device to the director's LAN
#   device.
# - Each realserver receives it on ip6tnl0, which carries the VIP/128 with no duplicate address
#   detection, and answers the client directly. IPv6 has no ARP and no rp_filter: a Linux host
#   answers neighbour solicitations only for the addresses of the device they arrive on, so the
#   VIP on ip6tnl0 stays hidden, and nothing like hide_vip or rp_filter = 0 is needed.
#
# An IPv4 VIP tunnels only to IPv4 addresses and an IPv6 VIP only to IPv6 ones: validate refuses a
# realserver without an address of the VIP's family. GUE and GRE are IPv4-only in tunplan so far.
#
#   tunplan validate -f examples/ipv6/tunplan.hcl
#   tunplan apply    -f examples/ipv6/tunplan.hcl --var ssh_key=/path/to/key


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
  address = ["198.18.48.181", "2001:2:0:48::181"]
  ssh { host = "198.19.0.11" }
}

host "shanghai" {
  role    = "realserver"
  address = ["198.18.1.183", "2001:2:0:1::183"]
  ssh { host = "198.19.0.21" }
}

host "beijing" {
  role    = "realserver"
  address = ["198.18.10.182", "2001:2:0:10::182"]
  ssh { host = "198.19.0.22" }
}

virtual_service "web" {
  vip       = "198.18.48.180"
  port      = 80
  scheduler = "rr"
  directors = ["lvs01"]
  realserver "shanghai" {}
  realserver "beijing" {}
}

# ipvsadm -A -t [2001:2:0:ff::180]:80 -s rr; ipvsadm -a -t [2001:2:0:ff::180]:80 -r [RIP6]:80 -i;
# on each realserver: modprobe ip6_tunnel; ip -6 addr add 2001:2:0:ff::180/128 dev ip6tnl0 nodad;
# ip link set ip6tnl0 up.
virtual_service "web6" {
  vip       = "2001:2:0:ff::180"
  port      = 80
  scheduler = "rr"
  directors = ["lvs01"]
  realserver "shanghai" {}
  realserver "beijing" {}
}
