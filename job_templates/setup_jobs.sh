#!/usr/bin/env bash
# Render every job of an experiment into jobs/ for hand submission (qsub / sbatch / bash).
#
#   job_templates/setup_jobs.sh --profile NAME|PATH [--experiment NAME|PATH] [--out DIR] [--workdir DIR]
#
# Missing flags are asked for when a terminal is attached; without one they are an error. Rendering fails
# loudly on an invalid profile, a leftover placeholder or a missing value. All logic is in `morphcpt render`.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
profile=""
experiment=""
out="$repo/jobs"
workdir=""

die() { echo "setup_jobs: $*" >&2; exit 2; }

while (($#)); do
  case "$1" in
    --profile|-p) profile=${2:?--profile needs a value}; shift 2 ;;
    --experiment|-e) experiment=${2:?--experiment needs a value}; shift 2 ;;
    --out|-o) out=${2:?--out needs a value}; shift 2 ;;
    --workdir) workdir=${2:?--workdir needs a value}; shift 2 ;;
    -h|--help) sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

ask() {
  local prompt=$1 default=$2 dir=$3 answer
  [[ -t 0 ]] || die "missing --${prompt} and no terminal to ask; pass --${prompt} NAME"
  echo "Available ${prompt}s in ${dir#"$repo"/}:" >&2
  local file
  for file in "$dir"/*.yaml; do echo "  $(basename "$file" .yaml)" >&2; done
  read -r -p "${prompt}${default:+ [$default]}: " answer
  answer=${answer:-$default}
  [[ -n "$answer" ]] || die "no ${prompt} given"
  printf '%s' "$answer"
}

[[ -n "$profile" ]] || profile=$(ask profile "" "$repo/configs/clusters")
if [[ -z "$experiment" ]]; then
  if [[ -t 0 ]]; then experiment=$(ask experiment seapile-tl-cpt "$repo/configs/experiments"); else experiment=seapile-tl-cpt; fi
fi

python=${MORPHCPT_HOST_PYTHON:-}
if [[ -z "$python" ]]; then
  if [[ -x "$repo/.venv/bin/python" ]]; then python="$repo/.venv/bin/python"; else python=python3; fi
fi

args=(render --profile "$profile" --experiment "$experiment" --out "$out")
[[ -n "$workdir" ]] && args+=(--workdir "$workdir")
cd "$repo"
PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m morphcpt "${args[@]}"
