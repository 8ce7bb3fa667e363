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
#   --env NAME         also pass this variable (by name), repeatable
#   --no-overlay       do not activate the overlay venv  (MORPHCPT_CONTAINER_OVERLAY: its path, default
#                      containers/overlay/NAME; setup_enroot.sh makes it; used only when it exists)
#   --create           create the container if absent, then exit
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
overlay=${MORPHCPT_CONTAINER_OVERLAY:-}
use_overlay=1
create_only=0
dry_run=0
mounts=()
extra_env=()
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
    --env) extra_env+=("${2:?--env needs a variable name}"); shift 2 ;;
    --no-overlay) use_overlay=0; shift ;;
    --create) create_only=1; shift ;;
    --no-container) runtime=none; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
  esac
done
overlay=${overlay:-$repo/containers/overlay/$name}

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

if ((!$#)) && ((!create_only)); then
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

# enroot builds the container's environment from a line-based file (NAME=VALUE per line, surrounding quotes
# stripped), so a value with a newline would arrive cut at it and one in quotes would lose them. Such values
# cross as a base64 copy, still by name (MORPHCPT_ENC_<NAME>), and are decoded inside before the command runs.
env_args=()
pass_by_name() {
  local key=$1 value=${!1}
  if [[ "$value" == *$'\n'* || "$value" == *$'\r'* || "$value" == [\"\']* ]]; then
    export "MORPHCPT_ENC_$key=$(printf '%s' "$value" | base64 -w0)"
    env_args+=(--env "MORPHCPT_ENC_$key")
  else
    env_args+=(--env "$key")
  fi
}
# Names from bash itself (compgen -e), not from parsing `env` output, which a multi-line value would fake.
while read -r key; do
  [[ "$key" == MORPHCPT_ENC_* || "$key" == MORPHCPT_INNER_* ]] && continue
  allowed "$key" && pass_by_name "$key"
done < <(compgen -e)
for key in "${extra_env[@]}"; do
  [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "--env takes a variable name, not '$key'"
  [[ -n "${!key+set}" ]] || die "--env $key: the variable is not set"
  allowed "$key" || pass_by_name "$key"
done

mount_args=(--mount "$repo:$workdir")
for mount in "${mounts[@]}"; do
  [[ -n "$mount" ]] && mount_args+=(--mount "$mount")
done
# The overlay venv (setup_enroot.sh --install overlay) is mounted at its own path, so the paths written into
# it when it was made (pyvenv.cfg, scripts) hold on every node, whatever the workdir.
venv=
if ((use_overlay)) && [[ -f "$overlay/pyvenv.cfg" ]]; then
  mount_args+=(--mount "$overlay:$overlay")
  venv=$overlay
fi

# PYTHONPATH makes the mounted repository's morphcpt importable without installing it into the image.
# shellcheck disable=SC2016  # expanded inside the container, not here
inner=(bash -c 'cd "$1" && shift || exit 2
export PYTHONPATH="$MORPHCPT_INNER_SRC${PYTHONPATH:+:$PYTHONPATH}"
if [[ -n "$MORPHCPT_INNER_VENV" ]]; then export VIRTUAL_ENV=$MORPHCPT_INNER_VENV PATH=$MORPHCPT_INNER_VENV/bin:$PATH; fi
for enc in $(compgen -e MORPHCPT_ENC_ || true); do
  value=$(printf "%s" "${!enc}" | base64 -d && printf x) || { echo "run_in_enroot: cannot decode $enc" >&2; exit 2; }
  export "${enc#MORPHCPT_ENC_}=${value%x}"
  unset "$enc"
done
unset MORPHCPT_INNER_SRC MORPHCPT_INNER_VENV
exec "$@"' _ "$workdir" "$@")
start=(enroot start --rw "${mount_args[@]}" "${env_args[@]}" --env MORPHCPT_INNER_SRC --env MORPHCPT_INNER_VENV
  "$name" "${inner[@]}")
export MORPHCPT_INNER_SRC=$workdir/src MORPHCPT_INNER_VENV=$venv

if ((dry_run)); then
  command -v enroot >/dev/null || echo "# note: enroot is not installed on $(hostname)" >&2
  if ((create_only)); then show enroot create --name "$name" "$image"; else show "${start[@]}"; fi
  exit 0
fi

command -v enroot >/dev/null || die "enroot is not installed on $(hostname). Run on a compute node that has it, \
use a profile with container.runtime: none, or pass --no-container to run on the host."

# Array tasks starting at once on a node without the container would all create it, and all but one fail
# with enroot's "File already exists" (or start the half-unpacked one: `enroot list` shows it while it is
# being unpacked). So even the look is taken under a lock in enroot's data directory, where the containers
# are: one creates, the others wait, look again, and find it made.
# grep without -q reads all of `enroot list`: -q would exit at the first match and, under pipefail, the
# SIGPIPE of a still-writing `enroot list` would count as "absent".
have_container() { enroot list | grep -x -- "$name" >/dev/null; }
create_container() {
  local data=${ENROOT_DATA_PATH:-${XDG_DATA_HOME:-$HOME/.local/share}/enroot}
  local lock="$data/.morphcpt-create-$name.lock" wait=${MORPHCPT_CONTAINER_CREATE_WAIT:-3600}
  mkdir -p "$data"
  exec 9>>"$lock"
  flock -w "$wait" 9 || die "waited ${wait}s for $lock (another job creating container '$name'); is it stuck?"
  if ! have_container; then
    [[ -f "$image" ]] || die "no container '$name' and no image at $image; create it with containers/setup_enroot.sh"
    echo "run_in_enroot: creating container '$name' from $image" >&2
    enroot create --name "$name" "$image" >&2
  fi
  exec 9>&-
}
create_container
((create_only)) && exit 0
exec "${start[@]}"
