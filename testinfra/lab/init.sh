#!/bin/busybox sh
# /init of the lab VM: load the drivers for 9p and overlayfs, put a writable tmpfs overlay over the
# host's root (shared read-only), switch_root into it and run the run directory's run.sh, record its
# exit code, power off (with the host's busybox, from busybox-static).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod "/modules/$m" || echo "lab init: insmod $m failed"; done
mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower || { echo "lab init: cannot mount host root"; poweroff -f; }
mount -t tmpfs -o mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work,index=off,xino=off /newroot || { echo "lab init: overlay failed"; poweroff -f; }
mkdir -p /newroot/labrun
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none labrun /newroot/labrun || { echo "lab init: cannot mount the run directory"; poweroff -f; }
for d in proc sys dev; do mount --move /$d /newroot/$d; done
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/dev/shm
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
exec switch_root /newroot /bin/sh -c 'ip link set lo up; echo "lab: init done"; /bin/bash /labrun/run.sh; echo $? > /labrun/rc; sync
	/bin/busybox poweroff -f; echo o > /proc/sysrq-trigger'
