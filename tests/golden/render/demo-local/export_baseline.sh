#!/bin/bash
# Local profile: run with bash directly.
#
# morphcpt job "export_baseline" (stage: export)
# experiment: @REPO@/configs/experiments/demo.yaml    cluster profile: local (local)
# Rendered by `morphcpt render`; edit job_templates/ or the configs and render again rather than this file.
# Depends on: run_cpt_baseline
set -euo pipefail
# Values below are single-quoted on purpose: they reach the job verbatim, never expanded.
# shellcheck disable=SC2016
{
export MORPHCPT_WORKDIR=@WORKDIR@
export MORPHCPT_EXPERIMENT=@REPO@/configs/experiments/demo.yaml
export MORPHCPT_PROFILE=local
export MORPHCPT_JOB_NAME=export_baseline
export MORPHCPT_STAGE=export
export MORPHCPT_PYTHON=.venv/bin/python
export MORPHCPT_JOB_ID="${PBS_JOBID:-${SLURM_JOB_ID:-${JOB_ID:-local-$$}}}"
export MORPHCPT_JOB_START="${MORPHCPT_JOB_START:-$(date +%s)}"
export MORPHCPT_WALLTIME_SECONDS=3600
export MORPHCPT_CONTAINER_RUNTIME=none
export OMP_NUM_THREADS=1
export HF_HUB_OFFLINE=1
export WANDB_MODE=offline
}

cd "$MORPHCPT_WORKDIR"

# Secrets (HF_TOKEN, WANDB_API_KEY, ...) come from the environment or $MORPHCPT_WORKDIR/.env at run time,
# never from this file. Only allow-listed names are read; the environment wins over .env.
morphcpt_load_dotenv() {
  local file=$1 line key value allowed=" HF_TOKEN HUGGING_FACE_HUB_TOKEN WANDB_API_KEY NGC_API_KEY "
  [[ -f "$file" ]] || return 0
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key=${BASH_REMATCH[2]}
    value=${BASH_REMATCH[3]%$'\r'}
    [[ "$allowed" == *" $key "* ]] || continue
    [[ -z "${!key:-}" ]] || continue
    if [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]]; then value=${BASH_REMATCH[1]}; fi
    export "$key=$value"
  done <"$file"
}
morphcpt_load_dotenv "$MORPHCPT_WORKDIR/.env"

# shellcheck disable=SC2317  # multi-node jobs call it on the other nodes through `declare -f`
in_container() {
  "$@"
}

echo "[morphcpt] $MORPHCPT_JOB_NAME job $MORPHCPT_JOB_ID on $(hostname) at $(date -u +%FT%TZ)"

# >>> body: export
in_container "$MORPHCPT_PYTHON" -m morphcpt export --experiment "$MORPHCPT_EXPERIMENT" --run baseline
# <<< body
