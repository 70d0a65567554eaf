#!/usr/bin/env bash
# Builds the Vagrant box tunplan/bookworm for vagrant-libvirt from Debian packages only (no box
# catalogue needed) and adds it with `vagrant box add`, as root. The Vagrant lab's hosts have no
# internet, so everything they run is installed here:
#
#   debootstrap --variant=minbase bookworm, then (no services started in the chroot):
#     linux-image-amd64 initramfs-tools   kernel; initramfs with MODULES=most (virtio_blk/net, ext4)
#     systemd-sysv dbus                   init, hostnamectl
#     openssh-server sudo                 vagrant's login; the `vagrant` user with Vagrant's insecure
#                                         key (from the installed vagrant package), passwordless sudo
#     ifupdown isc-dhcp-client netbase    eth0 by DHCP (vagrant-libvirt's management network);
#                                         Vagrant's Debian guest writes the static private networks
#                                         into /etc/network/interfaces
#     ipvsadm tcpdump curl kmod iproute2 procps nginx-light   what the lab hosts run (nginx disabled:
#                                         the Vagrantfile enables it on the realservers)
#
# The root file system is an ext4 image made straight from the directory (mkfs.ext4 -d: no loop
# device, no bootloader), converted to qcow2. The VMs boot it with libvirt's direct kernel boot of
# the box's own vmlinuz and initrd.img, which stay next to the image in the cache; the box's
# Vagrantfile points vagrant-libvirt at them (root=/dev/vda). SSH host keys and the machine id are
# made at each VM's first boot.
#
# Cache: $TUNPLAN_CACHE (default /var/cache/tunplan)/vagrant-box/<hash of this script>; a cached
# box is reused, and only added again when the installed box was built by another script version.
#
#   usage: build-box.sh            (prints the timings; exit 0 when tunplan/bookworm is ready)
set -euo pipefail

NAME=tunplan/bookworm
MIRROR=http://deb.debian.org/debian
PACKAGES=(linux-image-amd64 initramfs-tools systemd-sysv dbus openssh-server sudo ifupdown
          isc-dhcp-client netbase ipvsadm tcpdump curl kmod iproute2 procps nginx-light)
SIZE=2G # the root file system (virtual_size); about 700 MB are used

export VAGRANT_CHECKPOINT_DISABLE=1 # no network calls from vagrant
HASH=$(sha256sum "$0" | cut -c1-16)
CACHE=${TUNPLAN_CACHE:-/var/cache/tunplan}/vagrant-box
OUT=$CACHE/$HASH
# Vagrant's well-known insecure public key, as the installed vagrant package ships it.
VAGRANT_KEY=$(ls /usr/share/vagrant/keys/vagrant.pub /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub \
	/usr/lib/ruby/vendor_ruby/vagrant/keys/vagrant.pub 2>/dev/null | head -1 || true)
[ -n "$VAGRANT_KEY" ] || { echo "build-box: no vagrant.pub in the installed vagrant package" >&2; exit 1; }

# in_chroot runs a command in the tree with /proc, /sys and /dev mounted for it only (a private
# mount namespace: the mounts go away with the command).
in_chroot() {
	local root=$1
	shift
	unshare --mount --propagation private -- sh -c '
		r=$1; shift
		mount -t proc proc "$r/proc" && mount -t sysfs sysfs "$r/sys" && mount --rbind /dev "$r/dev" &&
		exec chroot "$r" "$@"' sh "$root" "$@"
}

# install_tree debootstraps bookworm into $1 and installs PACKAGES, starting no service.
install_tree() {
	local root=$1
	debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$root.log" 2>&1 ||
		{ tail -20 "$root.log" >&2; return 1; }
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 0755 "$root/usr/sbin/policy-rc.d"
	in_chroot "$root" env DEBIAN_FRONTEND=noninteractive sh -c \
		"apt-get update -qq && apt-get install -y -qq --no-install-recommends ${PACKAGES[*]}" >>"$root.log" 2>&1 ||
		{ tail -20 "$root.log" >&2; return 1; }
	rm -f "$root/usr/sbin/policy-rc.d"
}

# configure_tree makes the tree a Vagrant box's guest: fstab, network, users, keys, services.
configure_tree() {
	local root=$1
	echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$root/etc/fstab"
	echo tunplan-box >"$root/etc/hostname"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\ttunplan-box\n' >"$root/etc/hosts"
	printf 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n' >"$root/etc/network/interfaces"

	in_chroot "$root" useradd -m -s /bin/bash vagrant
	install -d -m 0700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
	install -m 0600 -o 1000 -g 1000 "$VAGRANT_KEY" "$root/home/vagrant/.ssh/authorized_keys"
	echo 'vagrant ALL=(ALL) NOPASSWD:ALL' >"$root/etc/sudoers.d/vagrant"
	chmod 0440 "$root/etc/sudoers.d/vagrant"
	[ "$(stat -c %u "$root/home/vagrant")" = 1000 ] || { echo "build-box: vagrant is not uid 1000" >&2; return 1; }

	# Each VM makes its own host key (ed25519 only: RSA keys take seconds under TCG) and machine id
	# at first boot.
	rm -f "$root"/etc/ssh/ssh_host_*
	echo 'HostKey /etc/ssh/ssh_host_ed25519_key' >"$root/etc/ssh/sshd_config.d/host-key.conf"
	cat >"$root/etc/systemd/system/ssh-host-keys.service" <<-'EOF'
		[Unit]
		Description=Generate SSH host keys at first boot
		Before=ssh.service
		ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

		[Service]
		Type=oneshot
		ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key

		[Install]
		WantedBy=multi-user.target
	EOF
	: >"$root/etc/machine-id"
	rm -f "$root/var/lib/dbus/machine-id"
	in_chroot "$root" systemctl enable -q ssh-host-keys.service
	in_chroot "$root" systemctl disable -q nginx.service
	in_chroot "$root" systemctl mask -q apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer

	# Smaller image: no package lists, caches, docs or translations.
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
		"$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/etc/resolv.conf
}

# check_initramfs fails unless the initramfs can mount /dev/vda as ext4 on virtio.
check_initramfs() {
	local mods
	mods=$(lsinitramfs "$1")
	for m in virtio_blk virtio_pci virtio_net ext4; do
		grep -q "/$m\.ko" <<<"$mods" || { echo "build-box: $m missing from $1" >&2; return 1; }
	done
}

# package writes the .box archive of $1 (box.img, metadata.json, the box's Vagrantfile), vmlinuz
# and initrd.img into OUT.
package() {
	local root=$1 tmp
	tmp=$OUT.tmp
	rm -rf "$tmp" && mkdir -p "$tmp"
	cp -L "$root/vmlinuz" "$tmp/vmlinuz"
	cp -L "$root/initrd.img" "$tmp/initrd.img"
	check_initramfs "$tmp/initrd.img"
	mkfs.ext4 -q -L root -d "$root" "$tmp/root.raw" "$SIZE" >/dev/null
	qemu-img convert -c -O qcow2 "$tmp/root.raw" "$tmp/box.img"
	rm -f "$tmp/root.raw"
	printf '{"provider":"libvirt","format":"qcow2","virtual_size":%d,"tunplan_build":"%s"}\n' \
		"${SIZE%G}" "$HASH" >"$tmp/metadata.json"
	# The kernel stays in the cache (world-readable, for the qemu process): the box points at it.
	cat >"$tmp/Vagrantfile" <<-EOF
		# Box tunplan/bookworm (testinfra/vagrant/build-box.sh $HASH): direct kernel boot.
		Vagrant.configure("2") do |config|
		  config.vm.provider :libvirt do |lv|
		    lv.kernel = "$OUT/vmlinuz"
		    lv.initrd = "$OUT/initrd.img"
		    lv.cmd_line = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"
		  end
		end
	EOF
	tar -C "$tmp" -cf "$tmp/tunplan-bookworm.box" metadata.json Vagrantfile box.img
	rm -f "$tmp/metadata.json" "$tmp/Vagrantfile" "$tmp/box.img"
	chmod -R a+rX "$tmp"
	mv "$tmp" "$OUT"
}

# build makes OUT from scratch.
build() {
	local root=$CACHE/rootfs
	rm -rf "$root" "$root.log"
	mkdir -p "$CACHE"
	chmod 0755 "$CACHE" "$(dirname "$CACHE")"
	install_tree "$root"
	configure_tree "$root"
	package "$root"
	rm -rf "$root" "$root.log"
}

# installed_hash prints the build hash of the installed box, if any.
installed_hash() {
	local f
	f=$(ls "${VAGRANT_HOME:-$HOME/.vagrant.d}"/boxes/tunplan-VAGRANTSLASH-bookworm/*/libvirt/metadata.json 2>/dev/null | head -1)
	[ -n "$f" ] && sed -n 's/.*"tunplan_build":"\([0-9a-f]*\)".*/\1/p' "$f"
}

start=$(date +%s)
if [ -f "$OUT/tunplan-bookworm.box" ]; then
	echo "build-box: cached $OUT"
else
	echo "build-box: building $NAME in $OUT (debootstrap from $MIRROR)"
	find "$CACHE" -mindepth 1 -maxdepth 1 ! -name "$HASH" -exec rm -rf {} + 2>/dev/null || true
	build
fi
if [ "$(installed_hash)" != "$HASH" ]; then
	vagrant box add --force --name "$NAME" "$OUT/tunplan-bookworm.box" >/dev/null
	# vagrant-libvirt uploads a box to the pool once, by name: drop an older build's copy.
	rm -f /var/lib/libvirt/images/tunplan-VAGRANTSLASH-bookworm_vagrant_box_image_*
	echo "build-box: added $NAME"
fi
echo "build-box: $NAME ready in $(($(date +%s) - start))s"
