#!/usr/bin/env bash
# Installs what tunplan's build, tests and lab need on Debian, as root, when it is missing:
# qemu (TCG, no KVM needed), Debian's kernel (ipip, ip_vs and friends as modules), busybox-static for
# the lab's initramfs, and the real tools every lab host runs; for the Vagrant lab (testinfra/vagrant)
# libvirt with vagrant-libvirt, and what builds its box (debootstrap, qemu-img, mkfs.ext4).
set -euo pipefail
pkgs=(qemu-system-x86 linux-image-amd64 busybox-static openssh-server openssh-client nginx-light
      ipvsadm curl tcpdump iproute2 kmod procps util-linux coreutils ruby vagrant sudo
      keepalived ansible nftables
      libvirt-daemon-system libvirt-clients vagrant-libvirt dnsmasq-base iptables debootstrap qemu-utils
      e2fsprogs initramfs-tools)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# nginx and sshd from the packages must not run on the machine itself: the lab starts its own; so
# does the Vagrant lab's test with libvirtd and virtlogd (in a network namespace of its own).
for s in nginx ssh libvirtd libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket virtlogd virtlogd.socket; do
	command -v systemctl >/dev/null && systemctl disable --now "$s" >/dev/null 2>&1 || true
done
ls /boot/vmlinuz-* >/dev/null 2>&1 || { echo "deps: no kernel in /boot after installing linux-image-amd64" >&2; exit 1; }
command -v go >/dev/null || { echo "deps: Go is not on PATH (expected /usr/local/go/bin)" >&2; exit 1; }
