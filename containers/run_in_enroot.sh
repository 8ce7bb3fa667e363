#!/usr/bin/env bash
# Run a command inside the NeMo enroot container, with the repository mounted at /workspace.
#
#   containers/run_in_enroot.sh [options] [--] CMD [ARGS...]    batch use (job scripts call this)
#   containers/run_in_enroot.sh [options]                       interactive shell in the container
#
# Options (or the MORPHCPT_CONTAINER_* variables job scripts export):
#   --name NAME        enroot container name           (MORPHCPT_CONTAINER_NAME, default morphcpt-nemo)
#   --image PATH       .sqsh to create it from if absent (MORPHCPT_CONTAINER_IMAGE, default containers/nemo.sqsh)
#   --mount SRC:DST    extra mount, repeatable          (MORPHCPT_CONTAINER_MOUNTS, comma-separated)
#   --workdir DIR      where the repository is mounted   (MORPHCPT_CONTAINER_WORKDIR, default /workspace)
#   --no-container     run CMD on the host instead      (MORPHCPT_CONTAINER_RUNTIME=none)
#   --dry-run          print the command that would run, then exit
#
# Only the variables named in containers/env_allowlist.txt cross into the container, and they are passed
# by name (enroot --env NAME), so secret values never appear on a command line or in a log. Secrets are read
# from the environment or from .env in $MORPHCPT_WORKDIR (the repository by default).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
name=${MORPHCPT_CONTAINER_NAME:-morphcpt-nemo}
image=${MORPHCPT_CONTAINER_IMAGE:-$repo/containers/nemo.sqsh}
workdir=${MORPHCPT_CONTAINER_WORKDIR:-/workspace}
runtime=${MORPHCPT_CONTAINER_RUNTIME:-enroot}
dry_run=0
mounts=()
if [[ -n "${MORPHCPT_CONTAINER_MOUNTS:-}" ]]; then
  IFS=',' read -r -a mounts <<<"$MORPHCPT_CONTAINER_MOUNTS"
fi

die() { echo "run_in_enroot: $*" >&2; exit 2; }

while (($#)); do
  case "$1" in
    --name) name=${2:?--name needs a value}; shift 2 ;;
    --image) image=${2:?--image needs a value}; shift 2 ;;
    --mount) mounts+=("${2:?--mount needs SRC:DST}"); shift 2 ;;
    --workdir) workdir=${2:?--workdir needs a value}; shift 2 ;;
    --no-container) runtime=none; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
  esac
done

# Secrets from .env: allow-listed names only, never overriding the environment, never evaluated as shell.
load_dotenv() {
  local file=${MORPHCPT_WORKDIR:-$repo}/.env line key value
  [[ -f "$file" ]] || return 0
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key=${BASH_REMATCH[2]}
    value=${BASH_REMATCH[3]%$'\r'}
    allowed "$key" || continue
    [[ -z "${!key:-}" ]] || continue
    if [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]]; then value=${BASH_REMATCH[1]}; fi
    export "$key=$value"
  done <"$file"
}

patterns=()
while read -r pattern _; do
  [[ -n "$pattern" && "$pattern" != \#* ]] && patterns+=("$pattern")
done <"$repo/containers/env_allowlist.txt"

allowed() {
  local pattern
  for pattern in "${patterns[@]}"; do
    # shellcheck disable=SC2053  # the pattern is a glob on purpose (PET_*, SLURM_*)
    [[ "$1" == $pattern ]] && return 0
  done
  return 1
}

load_dotenv

if ((!$#)); then
  [[ -t 0 ]] || die "no command given and no terminal for an interactive shell"
  set -- bash -l
fi

show() { printf '%q ' "$@"; printf '\n'; }

if [[ "$runtime" == none ]]; then
  cmd=(env "PYTHONPATH=$repo/src${PYTHONPATH:+:$PYTHONPATH}" "$@")
  if ((dry_run)); then show "${cmd[@]}"; exit 0; fi
  cd "$repo"
  exec "${cmd[@]}"
fi

env_args=()
while IFS='=' read -r key _; do
  allowed "$key" && env_args+=(--env "$key")
done < <(env -0 | tr '\0' '\n' | grep -E '^[A-Za-z_][A-Za-z0-9_]*=' || true)

mount_args=(--mount "$repo:$workdir")
for mount in "${mounts[@]}"; do
  [[ -n "$mount" ]] && mount_args+=(--mount "$mount")
done

# PYTHONPATH makes the mounted repository's morphcpt importable without installing it into the image.
# shellcheck disable=SC2016  # expanded inside the container, not here
inner=(bash -c 'cd "$1" && shift && export PYTHONPATH="$MORPHCPT_INNER_SRC${PYTHONPATH:+:$PYTHONPATH}" && exec "$@"'
  _ "$workdir" "$@")
start=(enroot start --rw "${mount_args[@]}" "${env_args[@]}" --env MORPHCPT_INNER_SRC "$name" "${inner[@]}")
export MORPHCPT_INNER_SRC=$workdir/src

if ((dry_run)); then
  command -v enroot >/dev/null || echo "# note: enroot is not installed on $(hostname)" >&2
  show "${start[@]}"
  exit 0
fi

command -v enroot >/dev/null || die "enroot is not installed on $(hostname). Run on a compute node that has it, \
use a profile with container.runtime: none, or pass --no-container to run on the host."

if ! enroot list | grep -qx -- "$name"; then
  [[ -f "$image" ]] || die "no container '$name' and no image at $image; create it with containers/setup_enroot.sh"
  echo "run_in_enroot: creating container '$name' from $image" >&2
  enroot create --name "$name" "$image" >&2
fi
exec "${start[@]}"
