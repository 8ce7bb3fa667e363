#!/usr/bin/env bash
# Debian packages the tests need: a real Slurm (controller, node daemon, clients, Torque wrappers), munge
# and the shell linter. Installs only what is missing; never prompts.
set -euo pipefail

needed=()
command -v slurmctld >/dev/null || needed+=(slurmctld)
command -v slurmd >/dev/null || needed+=(slurmd)
command -v sbatch >/dev/null || needed+=(slurm-client)
command -v munged >/dev/null || needed+=(munge)
[[ -f /usr/share/perl5/Slurm.pm || -x /usr/bin/qsub ]] || needed+=(slurm-wlm-torque)
command -v shellcheck >/dev/null || needed+=(shellcheck)
((${#needed[@]})) || { echo "system deps: all present"; exit 0; }

if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=(sudo -n); else
    echo "system deps: missing ${needed[*]}; install them as root: apt-get install ${needed[*]}" >&2
    exit 1
  fi
else
  sudo=()
fi
echo "system deps: installing ${needed[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
