# A larger LVS-TUN fleet: two directors in front of 100 realservers spread over four regions,
# carrying three virtual services. Hosts and realserver lists are generated from the table in
# locals with `dynamic` blocks, so adding a region or ten servers is a one-line change.
#
#   tunplan validate -f examples/large/tunplan.hcl
#   tunplan diff     -f examples/large/tunplan.hcl --hosts lvs01,shanghai-01

variable "ssh_key" {
  default = "~/.ssh/id_ed25519"
}

variable "known_hosts" {
  default = "~/.ssh/known_hosts"
}

variable "web_vip" {
  default = "198.18.48.180"
}

variable "dns_vip" {
  default = "198.18.48.190"
}

locals {
  # Per region: the data-plane subnet of its realservers, the management subnet SSH goes through,
  # how many realservers it has and the weight they get in the web service.
  regions = {
    shanghai  = { subnet = "198.18.1.0/24", mgmt = "198.19.1.0/24", count = 25, weight = 3 }
    beijing   = { subnet = "198.18.10.0/24", mgmt = "198.19.10.0/24", count = 25, weight = 3 }
    guangzhou = { subnet = "198.18.20.0/24", mgmt = "198.19.20.0/24", count = 30, weight = 2 }
    chengdu   = { subnet = "198.18.30.0/24", mgmt = "198.19.30.0/24", count = 20, weight = 1 }
  }

  # "shanghai-01" => { region = "shanghai", address = "198.18.1.11", ssh = "198.19.1.11" }, …
  realservers = merge([
    for region, r in local.regions : {
      for i in range(r.count) : format("%s-%02d", region, i + 1) => {
        region  = region
        address = cidrhost(r.subnet, 11 + i)
        ssh     = cidrhost(r.mgmt, 11 + i)
      }
    }
  ]...)

  # DNS is answered from the two big regions only.
  dns_servers = {
    for name, rs in local.realservers : name => rs if contains(["shanghai", "beijing"], rs.region)
  }

  directors = {
    lvs01 = { address = "198.18.48.181", ssh = "198.19.0.11" }
    lvs02 = { address = "198.18.48.182", ssh = "198.19.0.12" }
  }
}

ssh {
  user          = "root"
  identity_file = var.ssh_key
  known_hosts   = var.known_hosts
}

dynamic "host" {
  for_each = local.directors
  labels   = [host.key]
  content {
    role    = "director"
    address = host.value.address
    ssh {
      host = host.value.ssh
    }
  }
}

dynamic "host" {
  for_each = local.realservers
  labels   = [host.key]
  content {
    role    = "realserver"
    address = host.value.address
    ssh {
      host = host.value.ssh
    }
  }
}

# HTTP on every realserver, weighted by region.
virtual_service "web" {
  vip       = var.web_vip
  port      = 80
  scheduler = "wrr"
  directors = keys(local.directors)

  dynamic "realserver" {
    for_each = local.realservers
    labels   = [realserver.key]
    content {
      weight = local.regions[realserver.value.region].weight
    }
  }
}

# HTTPS on the same VIP: sticky for five minutes so TLS sessions are resumed.
virtual_service "web_tls" {
  vip         = var.web_vip
  port        = 443
  scheduler   = "wlc"
  persistence = 300
  directors   = keys(local.directors)

  dynamic "realserver" {
    for_each = local.realservers
    labels   = [realserver.key]
    content {
      weight = 1
    }
  }
}

# DNS over UDP, source-hashed, on its own VIP and only through lvs02.
virtual_service "dns" {
  vip       = var.dns_vip
  protocol  = "udp"
  port      = 53
  scheduler = "sh"
  directors = ["lvs02"]

  dynamic "realserver" {
    for_each = local.dns_servers
    labels   = [realserver.key]
    content {
      weight = 1
    }
  }
}
