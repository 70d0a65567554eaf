#!/bin/sh
# Director set-up from the original LVS-TUN write-up (lvs_iptun.sh start), with ip(8) in place of
# ifconfig/route. Usage: director.sh VIP RIP [RIP…]
set -e
VIP=${1:?usage: director.sh VIP RIP [RIP...]}
shift
PORT=80
modprobe ipip
ip addr add "$VIP/32" broadcast "$VIP" dev tunl0
ip link set tunl0 up
echo 1 > /proc/sys/net/ipv4/ip_forward
echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter
echo 0 > /proc/sys/net/ipv4/conf/tunl0/rp_filter
ipvsadm -C
ipvsadm -A -t "$VIP:$PORT" -s rr
for RIP in "$@"; do
	ipvsadm -a -t "$VIP:$PORT" -r "$RIP:$PORT" -i
done
echo "ipvsadm running"
