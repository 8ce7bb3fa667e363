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
export MORPHCPT_NCPUS=1  # what the header asked for: a task sizes its worker pool by it
export MORPHCPT_CONTAINER_RUNTIME=none
export OMP_NUM_THREADS=1
export HF_HUB_OFFLINE=1
export WANDB_MODE=offline
}

# The job's own log on the shared filesystem, written while the job runs: PBS Pro keeps a running job's
# output in the MoM's spool (/var/spool/pbs/spool/<id>.OU) and writes the -o file only at the end, so
# `morphcpt logs` reads this copy. A tee rather than `#PBS -k oed`: direct write needs PBS Pro 19.1 or later
# and a site that allows it for the -o path, and the tee serves every scheduler alike. The scheduler's log
# still gets every line (plus its own messages, e.g. a walltime kill); the copy has a name of its own so
# that the two never write one file.
export MORPHCPT_JOB_LOG=@WORKDIR@/logs/export_baseline.job.log
morphcpt_tee_pids=()
# Making the directory here also saves the scheduler's log: PBS Pro moves an -o file whose directory is
# missing to undelivered/ and still reports exit 0.
if mkdir -p -- "${MORPHCPT_JOB_LOG%/*}" 2>/dev/null && : >>"$MORPHCPT_JOB_LOG" 2>/dev/null; then
  exec {morphcpt_stdout}>&1 {morphcpt_stderr}>&2
  # One tee per stream, so that stdout and stderr stay apart where the scheduler keeps them apart. tee
  # ignores SIGINT and SIGTERM: a job stopping gracefully on SIGTERM still logs its last lines (and does not
  # die of SIGPIPE writing them).
  exec 1> >(trap '' INT TERM; exec tee -a -- "$MORPHCPT_JOB_LOG")
  morphcpt_tee_pids+=($!)
  exec 2> >(trap '' INT TERM; exec tee -a -- "$MORPHCPT_JOB_LOG" >&"$morphcpt_stderr")
  morphcpt_tee_pids+=($!)
else
  echo "morphcpt: cannot write $MORPHCPT_JOB_LOG; this job's output is only in the scheduler's log" >&2
fi
# Files the job removes when it ends (a multi-node job's secrets file).
MORPHCPT_CLEANUP=()
# shellcheck disable=SC2317  # run by the EXIT trap
morphcpt_exit() {
  local status=$? waited=0 pid
  set +e  # a failing command here (a closed stdout) must not become the job's exit status under set -e
  rm -f -- "${MORPHCPT_CLEANUP[@]}"
  echo "[morphcpt] $MORPHCPT_JOB_NAME exit status $status at $(date -u +%FT%TZ)"
  if ((${#morphcpt_tee_pids[@]})); then
    # Let the tees write their last lines before the scheduler ends the job: close the pipes and wait (a
    # bounded poll: `wait` cannot take a process substitution on bash < 4.4, and a background process the
    # body left behind may hold a pipe open).
    exec 1>&"$morphcpt_stdout" 2>&"$morphcpt_stderr"
    for pid in "${morphcpt_tee_pids[@]}"; do
      while kill -0 "$pid" 2>/dev/null && ((waited++ < 100)); do sleep 0.1; done
    done
  fi
  # The script's exit status (after a fatal signal bash re-raises the signal itself).
  return "$status"
}
trap morphcpt_exit EXIT

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
