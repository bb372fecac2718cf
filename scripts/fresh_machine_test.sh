#!/usr/bin/env bash
# The fresh-machine test: runs the README's two commands, unchanged, in a clean Debian 12
# root, as a newcomer would, so that nothing this machine already has can hide a missing
# dependency.
#
#   scripts/fresh_machine_test.sh [WORK_DIR]      (default /var/tmp/nasc-fresh; needs root)
#
# It builds a minimal Debian 12 (bookworm) root with mmdebstrap from Debian's own mirror,
# copies a clean clone of HEAD into it (uncommitted changes are not part of the test), then
# runs, inside a chroot with only the root's own packages:
#   1. scripts/run_main.sh   (the main job: setup, build, a short search on Fashion-MNIST)
#   2. scripts/test.sh       (the tests: setup, build from scratch, ctest)
# and prints the wall time of each. The full logs are WORK_DIR/main.log and WORK_DIR/test.log.
# KEEP_ROOT=1 leaves the root in place afterwards (for a look inside); by default it is
# deleted. ONLY=main or ONLY=test runs that one command alone (to rerun the one that failed). It takes about 30-40 minutes on 2 cores and downloads about 1 GB of packages.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-/var/tmp/nasc-fresh}"
root="$work/root"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

if [ "$(id -u)" -ne 0 ]; then
  echo "fresh_machine_test: needs root (mmdebstrap and chroot); run it with sudo" >&2
  exit 1
fi
if ! command -v mmdebstrap >/dev/null; then
  echo "fresh_machine_test: installing mmdebstrap (a Debian package)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap
fi
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "fresh_machine_test: note: uncommitted changes are not tested; HEAD is" \
    "$(git -C "$repo" rev-parse --short HEAD)"
fi

mounted=()
cleanup() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
  if [ "${KEEP_ROOT:-0}" != 1 ] && [ -d "$root" ]; then rm -rf --one-file-system "$root"; fi
}
# A run killed with SIGKILL leaves /dev, /proc and /sys bound inside the old root; deleting
# it through those mounts would delete the host's /dev. Unmount them first (deepest first),
# and never let rm cross into another file system.
unmount_leftovers() {
  local point
  awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r point; do umount -l "$point" || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM  # so that an interrupted test still unmounts and cleans up

unmount_leftovers
rm -rf --one-file-system "$work"
mkdir -p "$work"
start=$(date +%s)
echo "== a minimal Debian 12 root in $root (mmdebstrap, variant minbase)"
mmdebstrap --variant=minbase --quiet bookworm "$root" \
  "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
  "deb $security bookworm-security main"
echo "   $(($(date +%s) - start)) s, $(du -sh "$root" | cut -f1)"

echo "== a clean clone of HEAD ($(git -C "$repo" rev-parse --short HEAD)) in /root/nasc"
git clone --quiet --no-hardlinks "$repo" "$root/root/nasc"
rm -rf "$root/root/nasc/.git"  # the newcomer's tree: what the commands see is HEAD's files

cp /etc/resolv.conf "$root/etc/resolv.conf"
# The network's trust, like its resolver: where HTTPS goes through a proxy with a CA of its
# own (as on some build machines), the test setup's npm needs that CA. The host's bundle is
# copied as one file and handed to Node by NODE_EXTRA_CA_CERTS; no package of the root
# changes, and on an ordinary network it adds nothing Debian's own bundle lacks.
host_ca=/etc/ssl/certs/ca-certificates.crt
[ -f "$host_ca" ] && cp "$host_ca" "$root/etc/host-ca-certificates.crt"
for fs in proc sys dev dev/pts; do
  mkdir -p "$root/$fs"
  case "$fs" in
    proc) mount -t proc proc "$root/proc" ;;
    sys) mount -t sysfs sys "$root/sys" ;;
    dev) mount --bind /dev "$root/dev" ;;
    dev/pts) mount --bind /dev/pts "$root/dev/pts" ;;
  esac
  mounted+=("$root/$fs")
done

# One README command, in the chroot, with a newcomer's plain environment.
run_in_root() {
  local name="$1" command="$2" t0 status=0
  echo "== $command   (log: $work/$name.log)"
  t0=$(date +%s)
  chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NODE_EXTRA_CA_CERTS=/etc/host-ca-certificates.crt \
    /bin/bash -c "cd /root/nasc && $command" >"$work/$name.log" 2>&1 || status=$?
  local secs=$(($(date +%s) - t0))
  tail -n 15 "$work/$name.log" | sed 's/^/   | /'
  printf '   %s: exit %d after %dm%02ds\n' "$command" "$status" $((secs / 60)) $((secs % 60))
  echo "$command $status $secs" >>"$work/times.txt"
  return "$status"
}

overall=0
if [ "${ONLY:-}" != test ]; then
  run_in_root main scripts/run_main.sh || overall=1
  [ -f "$root/root/nasc/out/search/arch.json" ] && echo "   out/search/: $(ls "$root/root/nasc/out/search" | tr '\n' ' ')"
fi
[ "${ONLY:-}" != main ] && { run_in_root test scripts/test.sh || overall=1; }

echo "== summary"
while read -r cmd status secs; do
  printf '   %-22s exit %d  %dm%02ds\n' "$cmd" "$status" $((secs / 60)) $((secs % 60))
done <"$work/times.txt"
printf '   whole test (including the root): %d s\n' $(($(date +%s) - start))
[ "$overall" -eq 0 ] && echo "fresh_machine_test: PASS" || echo "fresh_machine_test: FAIL"
exit "$overall"
