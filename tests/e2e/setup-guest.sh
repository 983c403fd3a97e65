#!/usr/bin/env bash
# shellcheck disable=SC2012  # ls on our own cache paths is fine
# Prepare the guest used by vdpu's end-to-end tests: a Debian 6.1 kernel and an
# uncompressed newc base initramfs (busybox, virtio/nvme modules, fio, nvme-cli).
#
# Idempotent and cached: a second run only checks stamps and prints the paths.
# Output (stdout, last lines):
#   VDPU_E2E_KVER=<kernel version>
#   VDPU_E2E_KERNEL=<path to the kernel for -kernel (PVH vmlinux, else vmlinuz)>
#   VDPU_E2E_INITRD=<path to base initramfs .cpio>
# The same lines are written to $CACHE/guest.env.
#
# Environment:
#   VDPU_E2E_CACHE          cache dir (default /var/tmp/vdpu-e2e)
#   VDPU_E2E_KVER           force a kernel version (e.g. 6.1.0-56-amd64)
#   VDPU_E2E_EXTRA_MODULES  extra kernel modules (space separated) to load at boot
#   VDPU_E2E_EXTRA_BINS     extra host binaries (absolute paths) to copy with their ldd closure
#   VDPU_E2E_REBUILD=1      rebuild the base initramfs even if the stamp matches
#   VDPU_E2E_PVH=0          boot the compressed bzImage instead of the extracted vmlinux
#   VDPU_E2E_FIO_STUBS=0    copy fio's full ~80 MB library closure instead of stubs
#
# Speed notes (TCG): booting the uncompressed ELF vmlinux through its PVH entry
# point saves ~4-5 s of xz decompression + real-mode setup per boot; replacing
# the libraries fio only needs for ceph/gluster/rdma/nbd/pmem ioengines by
# stubs (stub_libs.py) shrinks the initramfs from ~90 MB to ~20 MB and saves
# a few more seconds of initramfs unpacking.
set -euo pipefail

CACHE="${VDPU_E2E_CACHE:-/var/tmp/vdpu-e2e}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
export DEBIAN_FRONTEND=noninteractive

log() { echo "setup-guest: $*" >&2; }
die() { echo "setup-guest: ERROR: $*" >&2; exit 1; }

mkdir -p "$CACHE"
# Serialise concurrent runs (several tests may call us at once).
exec 9>"$CACHE/.lock"
flock 9

# ---------------------------------------------------------------------------
# 1. Host packages
# ---------------------------------------------------------------------------
APT_UPDATED=0
apt_update_once() {
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        apt-get update -qq >&2 || log "apt-get update failed (continuing)"
        APT_UPDATED=1
    fi
}

need_pkgs=()
# package:probe-file
for spec in qemu-system-x86:/usr/bin/qemu-system-x86_64 \
            qemu-system-common:/usr/bin/qemu-storage-daemon \
            qemu-utils:/usr/bin/qemu-img \
            busybox-static:/bin/busybox \
            fio:/usr/bin/fio \
            cpio:/usr/bin/cpio \
            kmod:/usr/sbin/depmod \
            nvme-cli:/usr/sbin/nvme \
            util-linux:/usr/bin/lsblk \
            xz-utils:/usr/bin/xz \
            binutils:/usr/bin/readelf; do
    pkg="${spec%%:*}"; probe="${spec#*:}"
    if [ ! -e "$probe" ] || ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
        need_pkgs+=("$pkg")
    fi
done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    # shellcheck disable=SC2207
    need_pkgs=($(printf '%s\n' "${need_pkgs[@]}" | sort -u))
    log "installing: ${need_pkgs[*]}"
    apt_update_once
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
fi

# ---------------------------------------------------------------------------
# 2. Guest kernel
# ---------------------------------------------------------------------------
kver_from_apt() {
    # apt-cache takes ~1 s here: remember its answer until the apt lists change
    local key cached
    key="$(stat -c %Y /var/lib/apt/lists/*_Packages* 2>/dev/null | sort -n | tail -n1 || true)"
    cached="$(cat "$CACHE/kver.cache" 2>/dev/null || true)"
    if [ -n "$key" ] && [ "${cached%% *}" = "$key" ] && [ -n "${cached#* }" ]; then
        echo "${cached#* }"
        return
    fi
    local v
    v="$(apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: linux-image-\(6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -n1 || true)"
    [ -n "$v" ] && [ -n "$key" ] && echo "$key $v" > "$CACHE/kver.cache"
    echo "$v"
}
KVER="${VDPU_E2E_KVER:-}"
if [ -z "$KVER" ]; then
    KVER="$(kver_from_apt)"
    if [ -z "$KVER" ]; then
        apt_update_once
        KVER="$(kver_from_apt)"
    fi
    if [ -z "$KVER" ]; then
        # Offline fallback: newest kernel already in the cache.
        KVER="$(ls -1d "$CACHE"/kernel-6.1.0-*-amd64 2>/dev/null | sed 's|.*/kernel-||' | sort -V | tail -n1 || true)"
    fi
fi
[ -n "$KVER" ] || die "cannot determine the linux-image-6.1.0-*-amd64 version (apt-cache depends linux-image-amd64)"

KROOT="$CACHE/kernel-$KVER"
VMLINUZ="$KROOT/boot/vmlinuz-$KVER"
if [ ! -f "$KROOT/.extracted" ]; then
    log "fetching linux-image-$KVER"
    mkdir -p "$CACHE/debs"
    deb="$(ls -1 "$CACHE"/debs/linux-image-"$KVER"_*_amd64.deb 2>/dev/null | tail -n1 || true)"
    if [ -z "$deb" ]; then
        # apt-get download writes to the cwd; _apt cannot write to a root-owned
        # dir, which only produces a harmless warning.
        if ! (cd "$CACHE/debs" && apt-get download -q "linux-image-$KVER" >&2); then
            apt_update_once
            (cd "$CACHE/debs" && apt-get download -q "linux-image-$KVER" >&2)
        fi
        deb="$(ls -1 "$CACHE"/debs/linux-image-"$KVER"_*_amd64.deb | tail -n1)"
    fi
    rm -rf "$KROOT"
    mkdir -p "$KROOT"
    dpkg -x "$deb" "$KROOT"
    depmod -b "$KROOT" "$KVER"
    touch "$KROOT/.extracted"
fi
[ -f "$VMLINUZ" ] || die "no kernel image at $VMLINUZ"

# Uncompressed ELF vmlinux for QEMU's PVH boot (the Debian kernel has CONFIG_PVH=y
# and is XZ-compressed): same method as the kernel's scripts/extract-vmlinux.
VMLINUX="$KROOT/boot/vmlinux-$KVER"
KERNEL="$VMLINUZ"
if [ "${VDPU_E2E_PVH:-1}" != 0 ]; then
    if [ ! -s "$VMLINUX" ]; then
        pos="$(LC_ALL=C grep -abo $'\xfd7zXZ\x00' "$VMLINUZ" | head -n1 | cut -d: -f1 || true)"
        if [ -n "$pos" ] &&
           (set +o pipefail; tail -c+"$((pos + 1))" "$VMLINUZ" | xz -dc --single-stream) > "$VMLINUX.tmp" 2>/dev/null &&
           [ "$(head -c4 "$VMLINUX.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] &&
           readelf -n "$VMLINUX.tmp" 2>/dev/null | grep -c 'Unknown note type: (0x00000012)' >/dev/null; then
            mv "$VMLINUX.tmp" "$VMLINUX"
        else
            rm -f "$VMLINUX.tmp"
            log "warning: could not extract a PVH vmlinux, booting the bzImage (slower)"
        fi
    fi
    [ -s "$VMLINUX" ] && KERNEL="$VMLINUX"
fi

# ---------------------------------------------------------------------------
# 3. Base initramfs (cached, keyed by kernel version + this script + tools)
# ---------------------------------------------------------------------------
MODULES="configfs virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
virtio_blk failover net_failover virtio_net
crc32c_generic crc32c-intel libcrc32c
nvme-core nvme nvme-fabrics nvme-tcp ${VDPU_E2E_EXTRA_MODULES:-}"
# In the initramfs but loaded only on demand (modprobe, or vdpu_nvmet_start):
# the kernel NVMe/TCP target and RAM/null block devices to back it.
MODULES_ONDEMAND="nvmet nvmet-tcp brd null_blk"
BINS="/usr/bin/fio /usr/sbin/nvme /usr/bin/lsblk /usr/sbin/blockdev ${VDPU_E2E_EXTRA_BINS:-}"

INITRD="$CACHE/initramfs-base-$KVER.cpio"
STAMP="$INITRD.stamp"
stamp_content() {
    sha256sum "$SELF" | cut -d' ' -f1
    echo "modules=$MODULES"
    echo "ondemand=$MODULES_ONDEMAND"
    echo "bins=$BINS"
    echo "fio_stubs=${VDPU_E2E_FIO_STUBS:-1}"
    sha256sum "$HERE/stub_libs.py" | cut -d' ' -f1
    dpkg-query -W -f='${Package}=${Version}\n' busybox-static fio nvme-cli libc6 util-linux 2>/dev/null || true
}
want_stamp="$(stamp_content)"
if [ "${VDPU_E2E_REBUILD:-0}" != 1 ] && [ -f "$INITRD" ] && [ -f "$STAMP" ] &&
   [ "$(cat "$STAMP")" = "$want_stamp" ]; then
    log "base initramfs up to date: $INITRD"
else
    log "building base initramfs for $KVER"
    STAGE="$(mktemp -d "$CACHE/stage.XXXXXX")"
    trap 'rm -rf "$STAGE" "$STAGE.stubs"' EXIT
    cd "$STAGE"
    mkdir -p bin sbin usr/bin usr/sbin lib lib64 lib/x86_64-linux-gnu etc proc sys dev \
             tmp run var/tmp mnt root usr/share/udhcpc etc/nvme "lib/modules/$KVER"
    chmod 1777 tmp var/tmp

    # busybox + applet symlinks
    cp /bin/busybox bin/busybox
    for applet in $(/bin/busybox --list-full); do
        [ -e "$applet" ] || [ -L "$applet" ] || ln -s /bin/busybox "$applet"
    done

    # kernel modules in load order (from modprobe --show-depends, de-duplicated)
    : > etc/vdpu-modules
    for m in $MODULES; do
        modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" 2>/dev/null |
            awk '$1=="insmod"{print $2}' || { log "warning: module $m not found"; true; }
    done | while read -r ko; do
        rel="${ko#"$KROOT"/lib/modules/"$KVER"/}"
        if ! grep -qxF "$rel" etc/vdpu-modules; then
            echo "$rel" >> etc/vdpu-modules
            mkdir -p "lib/modules/$KVER/$(dirname "$rel")"
            cp "$ko" "lib/modules/$KVER/$rel"
        fi
    done
    for m in $MODULES_ONDEMAND; do
        modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" 2>/dev/null |
            awk '$1=="insmod"{print $2}' || { log "warning: module $m not found"; true; }
    done | while read -r ko; do
        rel="${ko#"$KROOT"/lib/modules/"$KVER"/}"
        mkdir -p "lib/modules/$KVER/$(dirname "$rel")"
        cp "$ko" "lib/modules/$KVER/$rel"
    done
    for f in modules.builtin modules.builtin.modinfo modules.order; do
        [ -f "$KROOT/lib/modules/$KVER/$f" ] && cp "$KROOT/lib/modules/$KVER/$f" "lib/modules/$KVER/"
    done
    depmod -b "$STAGE" "$KVER"   # lets busybox modprobe work in the guest too

    # binaries with their shared-library closure
    copy_path() {  # copy a host file to the same path in the stage, following symlinks
        local src="$1" dst="$STAGE$1"
        mkdir -p "$(dirname "$dst")"
        rm -f "$dst"
        cp -L "$src" "$dst"
    }
    copy_closure() {  # BIN [LD_LIBRARY_PATH]: BIN and its ldd closure
        local b="$1" stubdir="${2:-}"
        [ -x "$b" ] || die "missing binary $b"
        copy_path "$b"
        LD_LIBRARY_PATH="$stubdir" ldd "$b" |
            awk '/=>/ && $3 ~ /^\// {print $3} /^[ \t]*\/[^ ]*ld-linux/ {print $1}' |
            while read -r lib; do
                if [ -n "$stubdir" ] && [ "${lib#"$stubdir"/}" != "$lib" ]; then
                    cp "$lib" "lib/x86_64-linux-gnu/$(basename "$lib")"
                elif [ ! -e "$STAGE$lib" ]; then
                    copy_path "$lib"
                fi
            done
    }
    FIO_STUB_SONAMES="libgfapi.so.0 libnbd.so.0 libibverbs.so.1 librdmacm.so.1 librados.so.2 librbd.so.1 libpmemblk.so.1 libpmem.so.1"
    fio_stubbed=0
    # shellcheck disable=SC2086  # word lists on purpose
    for b in $BINS; do
        if [ "$b" = /usr/bin/fio ] && [ "${VDPU_E2E_FIO_STUBS:-1}" != 0 ] &&
           python3 "$HERE/stub_libs.py" /usr/bin/fio "$STAGE.stubs" $FIO_STUB_SONAMES 2>/dev/null; then
            copy_closure "$b" "$STAGE.stubs"
            fio_stubbed=1
        else
            copy_closure "$b"
        fi
    done
    rm -rf "$STAGE.stubs"
    # every binary must load with the staged libraries only (BIND_NOW: this
    # also proves that the stubs define all symbols fio imports)
    if [ "$fio_stubbed" = 1 ] && ! chroot "$STAGE" /usr/bin/fio --version >/dev/null 2>&1; then
        log "warning: fio does not load with stub libraries; copying the real ones"
        copy_closure /usr/bin/fio
        for so in $FIO_STUB_SONAMES; do
            real="$(ldd /usr/bin/fio | awk -v s="$so" '$1==s{print $3}')"
            [ -n "$real" ] && copy_path "$real"
        done
    fi
    chroot "$STAGE" /usr/bin/fio --version >/dev/null || die "fio does not run in the initramfs"
    chroot "$STAGE" /usr/sbin/nvme version >/dev/null || die "nvme does not run in the initramfs"
    chroot "$STAGE" /usr/bin/lsblk --version >/dev/null || die "lsblk does not run in the initramfs"

    # nvme-cli wants a host NQN / ID for 'nvme connect'
    echo "nqn.2014-08.org.nvmexpress:uuid:6a7d1e4c-0d1b-4c1e-9a55-766470750001" > etc/nvme/hostnqn
    echo "6a7d1e4c-0d1b-4c1e-9a55-766470750001" > etc/nvme/hostid
    echo "root:x:0:0:root:/root:/bin/sh" > etc/passwd
    echo "root:x:0:" > etc/group
    echo "127.0.0.1 localhost" > etc/hosts

    cat > usr/share/udhcpc/default.script <<'EOF'
#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    [ -n "$dns" ] && { for d in $dns; do echo "nameserver $d"; done > /etc/resolv.conf; } ;;
esac
exit 0
EOF
    chmod 755 usr/share/udhcpc/default.script

    # shell helpers for test scripts: . /lib/vdpu.sh
    cat > lib/vdpu.sh <<'EOF'
# Helpers for guest test scripts (/run-test.sh). Source with: . /lib/vdpu.sh
# vdpu_result NAME PASS|FAIL [detail...]  -> marker line parsed by guest.py
vdpu_result() { n="$1"; s="$2"; shift 2; echo "VDPU-RESULT $n $s $*"; }
# vdpu_check NAME CMD...  -> runs CMD, PASS if exit 0 (output is shown before the marker)
vdpu_check() { n="$1"; shift; if "$@"; then vdpu_result "$n" PASS; else vdpu_result "$n" FAIL "rc=$? cmd=$*"; fi; }
# vdpu_wait_for PATH [seconds]  -> wait until PATH exists
vdpu_wait_for() { i=0; while [ ! -e "$1" ]; do i=$((i+1)); [ "$i" -gt $(( ${2:-10} * 10 )) ] && return 1; sleep 0.1; done; }
# vdpu_net_user [dev]  -> static config for QEMU user networking (host is 10.0.2.2)
vdpu_net_user() { d="${1:-eth0}"; ip link set "$d" up && ip addr add 10.0.2.15/24 dev "$d" && ip route add default via 10.0.2.2 dev "$d"; }
# vdpu_net_static DEV ADDR/PREFIX  -> bring DEV up with ADDR
vdpu_net_static() { ip link set "$1" up && ip addr add "$2" dev "$1"; }
# vdpu_nvmet_start [NQN] [PORT] [MiB] [DEV]  -> the kernel's NVMe/TCP target (nvmet-tcp)
#   listening on 0.0.0.0:PORT (default 4420) with one namespace on a brd RAM disk
#   of MiB (default 64) or on DEV (e.g. /dev/nullb0 after 'modprobe null_blk');
#   any host allowed. The host reaches it through QEMU's hostfwd (user_net_args).
vdpu_nvmet_start() {
    nqn="${1:-nqn.2026-11.io.vdpu:guest-nvmet}"; port="${2:-4420}"; mb="${3:-64}"; dev="${4:-}"
    if [ -z "$dev" ]; then
        modprobe brd rd_nr=1 rd_size=$((mb * 1024)) max_part=0 || return 1
        dev=/dev/ram0
    fi
    modprobe nvmet && modprobe nvmet-tcp || return 1
    grep -q ' /sys/kernel/config ' /proc/mounts || mount -t configfs configfs /sys/kernel/config
    c=/sys/kernel/config/nvmet
    mkdir -p "$c/subsystems/$nqn/namespaces/1" || return 1
    echo 1 > "$c/subsystems/$nqn/attr_allow_any_host"
    echo "$dev" > "$c/subsystems/$nqn/namespaces/1/device_path"
    echo 1 > "$c/subsystems/$nqn/namespaces/1/enable" || return 1
    p="$c/ports/$port"
    mkdir -p "$p"
    echo tcp > "$p/addr_trtype"; echo ipv4 > "$p/addr_adrfam"
    echo 0.0.0.0 > "$p/addr_traddr"; echo "$port" > "$p/addr_trsvcid"
    ln -s "$c/subsystems/$nqn" "$p/subsystems/$nqn" || return 1
}
EOF

    cat > init <<'EOF'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t configfs configfs /sys/kernel/config 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
KVER="$(uname -r)"
while read -r m; do
    [ -n "$m" ] || continue
    out="$(insmod "/lib/modules/$KVER/$m" 2>&1)" || case "$out" in
        *"File exists"*) ;;
        *) echo "VDPU-WARN insmod $m: $out" ;;
    esac
done < /etc/vdpu-modules
# configfs is a module in the Debian kernel: mount it now that it is loaded
grep -q ' /sys/kernel/config ' /proc/mounts || mount -t configfs configfs /sys/kernel/config 2>/dev/null
ip link set lo up
hostname vdpu-guest
echo "VDPU-BOOTED $KVER uptime=$(cut -d' ' -f1 /proc/uptime)"
if [ -f /run-test.sh ]; then
    chmod +x /run-test.sh
    /bin/sh -c '. /lib/vdpu.sh; . /run-test.sh'
    rc=$?
else
    echo "VDPU-WARN no /run-test.sh"
    rc=127
fi
sync
echo "VDPU-EXIT $rc"
poweroff -f
EOF
    chmod 755 init
    # /dev/console must exist before devtmpfs is mounted (kernel opens it for init)
    mknod -m 600 dev/console c 5 1 2>/dev/null || true
    mknod -m 666 dev/null c 1 3 2>/dev/null || true

    find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet > "$INITRD.tmp"
    mv "$INITRD.tmp" "$INITRD"
    printf '%s\n' "$want_stamp" > "$STAMP"
    cd /
    rm -rf "$STAGE"
    trap - EXIT
    log "base initramfs: $INITRD ($(du -m "$INITRD" | cut -f1) MiB)"
fi

{
    echo "VDPU_E2E_KVER=$KVER"
    echo "VDPU_E2E_KERNEL=$KERNEL"
    echo "VDPU_E2E_INITRD=$INITRD"
} | tee "$CACHE/guest.env.tmp"
mv "$CACHE/guest.env.tmp" "$CACHE/guest.env"
