#!/usr/bin/env bash
# Debian packages the tests need: a real Slurm (controller, node daemon, clients, Torque wrappers), munge,
# Son of Grid Engine (master, exec host, clients) and the shell linter. Installs only what is missing; never
# prompts.
#
# Grid Engine: Debian declares slurm-wlm-torque and gridengine-client in conflict (both ship /usr/bin/qsub,
# qstat, qdel, qalter, qhold, qrls), and apt resolves it by removing one. The Slurm tests need the Torque
# wrappers, so apt installs gridengine-common and every library Grid Engine needs, and the files of Debian's
# gridengine-client, -master and -exec packages (8.1.9) are unpacked at their usual paths without being
# registered with dpkg: a file that is already there is kept (so /usr/bin/qsub stays Slurm's), /etc and /lib
# (init scripts, PAM modules) are left out, and no maintainer script runs (no daemon starts). Grid Engine's
# own commands are in /usr/lib/gridengine = $SGE_ROOT/bin/lx-amd64, which its users put first on PATH as on
# every SGE site (tests/cluster/local_gridengine.sh prints that PATH). The unpacked files are listed in
# /usr/lib/gridengine/.unpacked-files (remove: `xargs -a /usr/lib/gridengine/.unpacked-files rm -f`).
set -euo pipefail

needed=()
command -v slurmctld >/dev/null || needed+=(slurmctld)
command -v slurmd >/dev/null || needed+=(slurmd)
command -v sbatch >/dev/null || needed+=(slurm-client)
command -v munged >/dev/null || needed+=(munge)
[[ -f /usr/share/perl5/Slurm.pm || -x /usr/bin/qsub ]] || needed+=(slurm-wlm-torque)
command -v shellcheck >/dev/null || needed+=(shellcheck)
gridengine=()
[[ -x /usr/lib/gridengine/sge_qmaster ]] || gridengine+=(gridengine-master)
[[ -x /usr/lib/gridengine/sge_execd ]] || gridengine+=(gridengine-exec)
[[ -x /usr/lib/gridengine/qsub ]] || gridengine+=(gridengine-client)
((${#needed[@]} + ${#gridengine[@]})) || { echo "system deps: all present"; exit 0; }

if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=(sudo -n); else
    echo "system deps: missing ${needed[*]} ${gridengine[*]}; run this script as root" >&2
    exit 1
  fi
else
  sudo=()
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
if ((${#needed[@]})); then
  echo "system deps: installing ${needed[*]}"
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
fi
((${#gridengine[@]})) || exit 0

echo "system deps: installing Grid Engine (${gridengine[*]}, unpacked beside Slurm's Torque wrappers)"
# gridengine-common's postinst creates the sgeadmin user and the cell "default" with this host as its master.
printf '%s\n' \
  "gridengine-common shared/gridengineconfig boolean true" \
  "gridengine-common shared/gridenginecell string default" \
  "gridengine-common shared/gridenginemaster string $(hostname)" |
  "${sudo[@]}" debconf-set-selections
debs=$(mktemp -d)
trap 'rm -rf "$debs"' EXIT
chmod 777 "$debs" # apt-get download writes as the _apt user
(cd "$debs" && apt-get download -qq gridengine-client gridengine-master gridengine-exec)
# Their dependencies, alternatives resolved to the first, without the Grid Engine packages themselves.
mapfile -t libraries < <(
  for deb in "$debs"/*.deb; do dpkg-deb -f "$deb" Depends | tr ',' '\n'; done |
    sed 's/|.*//; s/(.*)//; s/[[:space:]]//g' | grep -v -e '^$' -e '^gridengine-' | sort -u
)
"${sudo[@]}" apt-get install -y -qq --no-install-recommends gridengine-common "${libraries[@]}" >/dev/null
manifest=/usr/lib/gridengine/.unpacked-files
for deb in "$debs"/*.deb; do
  dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | grep -v -e '^\./etc/' -e '^\./lib/' | while read -r member; do
    [[ -e "${member#.}" || -L "${member#.}" ]] || echo "$member"
  done >"$debs/members"
  [[ -s "$debs/members" ]] || continue
  dpkg-deb --fsys-tarfile "$deb" | "${sudo[@]}" tar -x -C / --files-from="$debs/members"
  sed 's/^\.//' "$debs/members" | "${sudo[@]}" tee -a "$manifest" >/dev/null
done
echo "system deps: Grid Engine in /usr/lib/gridengine (files listed in $manifest)"
