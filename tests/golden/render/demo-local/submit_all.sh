#!/bin/bash
# Submit experiment demo to local (local) in dependency order.
set -euo pipefail
cd @WORKDIR@
mkdir -p -- @WORKDIR@/logs
# The local profile runs each job in turn; array tasks one after another.
bash @WORKDIR@/jobs/demo-local/download_data.sh
bash @WORKDIR@/jobs/demo-local/split_data.sh
for i in $(seq 1 4); do MORPHCPT_TASK_INDEX=$i bash @WORKDIR@/jobs/demo-local/preprocess_data_vanilla.sh; done
bash @WORKDIR@/jobs/demo-local/merge_data_vanilla.sh
for i in $(seq 1 4); do MORPHCPT_TASK_INDEX=$i bash @WORKDIR@/jobs/demo-local/preprocess_data_stochastok.sh; done
bash @WORKDIR@/jobs/demo-local/merge_data_stochastok.sh
for i in $(seq 1 4); do MORPHCPT_TASK_INDEX=$i bash @WORKDIR@/jobs/demo-local/preprocess_data_patok.sh; done
bash @WORKDIR@/jobs/demo-local/merge_data_patok.sh
bash @WORKDIR@/jobs/demo-local/data_stats.sh
bash @WORKDIR@/jobs/demo-local/run_cpt_baseline.sh
bash @WORKDIR@/jobs/demo-local/export_baseline.sh
bash @WORKDIR@/jobs/demo-local/run_cpt_stochastok.sh
bash @WORKDIR@/jobs/demo-local/export_stochastok.sh
bash @WORKDIR@/jobs/demo-local/run_cpt_patok.sh
bash @WORKDIR@/jobs/demo-local/export_patok.sh
bash @WORKDIR@/jobs/demo-local/generate_benchmarks.sh
bash @WORKDIR@/jobs/demo-local/evaluate.sh
bash @WORKDIR@/jobs/demo-local/analyze.sh
