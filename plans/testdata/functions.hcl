# Variables overridden from the test (--var), locals built from each other, for-expressions,
# functions and dynamic blocks, including a dynamic block nested in a dynamic block.
variable "vip" {
  default = "198.18.48.1"
}

variable "count" {
  default = 2
}

variable "ports" {
  default = [80]
}

locals {
  # declared before what it uses: locals are evaluated in dependency order
  names = [for i in range(var.count) : format("rs%d", i + 1)]
  base  = "198.18.20.0/24"
  all   = concat(["lvs"], local.names)
}

host "lvs" {
  role    = "director"
  address = cidrhost(local.base, -2)
}

dynamic "host" {
  for_each = local.names
  labels   = [host.value]
  content {
    role    = "realserver"
    address = cidrhost(local.base, 10 + host.key)
    dynamic "ssh" {
      for_each = [cidrhost(cidrsubnet("198.19.0.0/16", 8, 20), 10 + host.key)]
      content {
        host = ssh.value
      }
    }
  }
}

dynamic "virtual_service" {
  for_each = var.ports
  iterator = svc
  labels   = [format("port%d", svc.value)]
  content {
    vip       = var.vip
    port      = svc.value
    scheduler = lower("WRR")
    directors = [local.all[0]]
    dynamic "realserver" {
      for_each = local.names
      iterator = rs
      labels   = [rs.value]
      content {
        weight = (rs.key + 1) * 10
      }
    }
  }
}
