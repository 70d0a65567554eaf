#!/bin/sh
# Realserver set-up from the original LVS-TUN write-up (lvs_realserver.sh start), with ip(8) in
# place of ifconfig. Usage: realserver.sh VIP
set -e
VIP=${1:?usage: realserver.sh VIP}
modprobe ipip
echo 1 > /proc/sys/net/ipv4/ip_forward          # the write-up turns it on; a realserver does not need it
ip addr add "$VIP/32" broadcast "$VIP" dev tunl0
ip link set tunl0 up
echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter   # the decapsulated packet arrives on tunl0: no reverse-path check
echo 0 > /proc/sys/net/ipv4/conf/tunl0/rp_filter
echo "RealServer is Running"
