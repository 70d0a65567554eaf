# Written by tunplan import from the live IPVS table of director-1, lvs02.
# Left out (tunplan does not manage them and leaves them alone):
#   director-1: fwmark 3: a firewall-mark service; tunplan manages TCP and UDP services on an IPv4 VIP
#   director-1: tcp/198.18.48.200:8080: destination 198.18.1.183:80 has port 80; in tunnel mode the realserver receives the service port 8080, so a plan cannot map ports

host "director-1" {
  role       = "director"
  address    = "198.19.0.11"
  ip_forward = false
}

host "lvs02" {
  role    = "director"
  address = "198.19.0.12"
  ssh {
    host = "lvs02.example.com"
  }
}

host "realserver-1" {
  role     = "realserver"
  address  = "198.18.1.183"
  hide_vip = false
  ssh {
    host = "198.19.0.21"
  }
}

host "beijing" {
  role    = "realserver"
  address = "198.18.10.182"
}

host "rs-198-18-20-5" {
  role    = "realserver"
  address = "198.18.20.5"
}

virtual_service "tcp-80" {
  vip       = "198.18.48.180"
  port      = 80
  scheduler = "wrr"
  directors = ["director-1", "lvs02"]

  realserver "realserver-1" {
    weight = 3
  }
  realserver "beijing" {}
  realserver "rs-198-18-20-5" {
    weight = 0
  }
}

virtual_service "udp-53" {
  vip         = "198.18.48.190"
  protocol    = "udp"
  port        = 53
  scheduler   = "sh"
  persistence = 300
  directors   = ["director-1"]

  realserver "realserver-1" {}
  realserver "beijing" {
    weight = 2
  }
}
