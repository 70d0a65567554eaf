# Health checks: an http check on a service of two directors, a tcp check on a GUE firewall-mark
# service of one of them, a service without a check on a third director, and a UDP service whose
# check is turned off (type = "none": as if there were no block).
host "lvs01" {
  role    = "director"
  address = "198.18.48.181"
}

host "lvs02" {
  role    = "director"
  address = "198.18.48.182"
}

host "lvs03" {
  role    = "director"
  address = "198.18.48.183"
}

host "shanghai" {
  role    = "realserver"
  address = "198.18.1.183"
}

host "beijing" {
  role    = "realserver"
  address = "198.18.10.182"
}

host "chengdu" {
  role    = "realserver"
  address = "198.18.20.11"
}

virtual_service "web" {
  vip       = "198.18.48.180"
  port      = 80
  scheduler = "wrr"
  directors = ["lvs01", "lvs02"]
  realserver "shanghai" {
    weight = 2
  }
  realserver "beijing" {}

  health_check {
    type        = "http"
    path        = "/healthz"
    host        = "www.example.com"
    expect_body = "ok"
    interval    = "1s"
    timeout     = "500ms"
    fall        = 2
  }
}

virtual_service "sticky" {
  fwmark      = 7
  vips        = ["198.18.48.190", "198.18.48.191"]
  ports       = [443, 80]
  persistence = 300
  tunnel      = "gue"
  directors   = ["lvs02"]
  realserver "chengdu" {}
  realserver "beijing" {
    weight = 0
  }

  gue {
    port = 6080
  }

  health_check {
    rise = 1
  }
}

virtual_service "api" {
  vip       = "198.18.48.185"
  port      = 8080
  directors = ["lvs03"]
  realserver "chengdu" {}
}

virtual_service "dns" {
  vip       = "198.18.48.186"
  protocol  = "udp"
  port      = 53
  directors = ["lvs03"]
  realserver "shanghai" {}

  health_check {
    type = "none"
    path = "/"
  }
}
