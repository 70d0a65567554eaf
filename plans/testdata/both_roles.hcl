# A host that is director and realserver, a director that keeps the VIPs on lo without touching
# ip_forward, defaults (protocol tcp, scheduler wlc, weight 1), UDP with persistence, weight 0.
ssh {
  user          = "deploy"
  sudo          = true
  identity_file = ["~/.ssh/a", "/etc/tunplan/key"]
}

host "alpha" {
  role    = ["director", "realserver"]
  address = "198.18.2.1"
}

host "bravo" {
  role       = "director"
  address    = "198.18.2.2"
  vip_device = "lo"
  ip_forward = false
  ssh {
    host = "bravo.mgmt.example"
    port = 2222
    jump = "ops@198.19.9.9:2200"
  }
}

host "charlie" {
  role    = "realserver"
  address = "198.18.2.3"
}

virtual_service "web" {
  vip       = "198.18.49.1"
  port      = 443
  directors = ["bravo", "alpha"]
  realserver "charlie" {}
}

virtual_service "dns" {
  vip         = "198.18.49.2"
  protocol    = "udp"
  port        = 53
  scheduler   = "sh"
  persistence = 600
  directors   = ["bravo"]
  realserver "charlie" {
    weight = 100
  }
  realserver "alpha" {
    weight = 0
    port   = 53
  }
}
