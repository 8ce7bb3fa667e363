#!/bin/bash
# Submit experiment seapile-tl-cpt to slurm (slurm-a100) in dependency order.
set -euo pipefail
cd @WORKDIR@
mkdir -p -- @WORKDIR@/logs
download_data=$(sbatch --parsable @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/download_data.sbatch); echo "download_data: $download_data"
split_data=$(sbatch --parsable --dependency=afterok:"$download_data" --kill-on-invalid-dep=yes @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/split_data.sbatch); echo "split_data: $split_data"
preprocess_data_vanilla=$(sbatch --parsable --dependency=afterok:"$split_data" --kill-on-invalid-dep=yes @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/preprocess_data_vanilla.sbatch); echo "preprocess_data_vanilla: $preprocess_data_vanilla"
merge_data_vanilla=$(sbatch --parsable --dependency=afterok:"$preprocess_data_vanilla" --kill-on-invalid-dep=yes @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/merge_data_vanilla.sbatch); echo "merge_data_vanilla: $merge_data_vanilla"
preprocess_data_stochastok=$(sbatch --parsable --dependency=afterok:"$split_data" --kill-on-invalid-dep=yes @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/preprocess_data_stochastok.sbatch); echo "preprocess_data_stochastok: $preprocess_data_stochastok"
merge_data_stochastok=$(sbatch --parsable --dependency=afterok:"$preprocess_data_stochastok" --kill-on-invalid-dep=yes @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/merge_data_stochastok.sbatch); echo "merge_data_stochastok: $merge_data_stochastok"
preprocess_data_patok=$(sbatch --parsable --dependency=afterok:"$split_data" --kill-on-invalid-dep=yes @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/preprocess_data_patok.sbatch); echo "preprocess_data_patok: $preprocess_data_patok"
merge_data_patok=$(sbatch --parsable --dependency=afterok:"$preprocess_data_patok" --kill-on-invalid-dep=yes @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/merge_data_patok.sbatch); echo "merge_data_patok: $merge_data_patok"
data_stats=$(sbatch --parsable --dependency=afterok:"$merge_data_vanilla":"$merge_data_stochastok":"$merge_data_patok" --kill-on-invalid-dep=yes @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/data_stats.sbatch); echo "data_stats: $data_stats"
import_base_model=$(sbatch --parsable @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/import_base_model.sbatch); echo "import_base_model: $import_base_model"
run_cpt_baseline=$(sbatch --parsable --dependency=afterok:"$merge_data_vanilla":"$import_base_model" --kill-on-invalid-dep=yes @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/run_cpt_baseline.sbatch); echo "run_cpt_baseline: $run_cpt_baseline"
export_baseline=$(sbatch --parsable --dependency=afterok:"$run_cpt_baseline" --kill-on-invalid-dep=yes @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/export_baseline.sbatch); echo "export_baseline: $export_baseline"
run_cpt_stochastok=$(sbatch --parsable --dependency=afterok:"$merge_data_stochastok":"$import_base_model",afterany:"$run_cpt_baseline" --kill-on-invalid-dep=yes @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/run_cpt_stochastok.sbatch); echo "run_cpt_stochastok: $run_cpt_stochastok"
export_stochastok=$(sbatch --parsable --dependency=afterok:"$run_cpt_stochastok" --kill-on-invalid-dep=yes @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/export_stochastok.sbatch); echo "export_stochastok: $export_stochastok"
run_cpt_patok=$(sbatch --parsable --dependency=afterok:"$merge_data_patok":"$import_base_model",afterany:"$run_cpt_stochastok" --kill-on-invalid-dep=yes @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/run_cpt_patok.sbatch); echo "run_cpt_patok: $run_cpt_patok"
export_patok=$(sbatch --parsable --dependency=afterok:"$run_cpt_patok" --kill-on-invalid-dep=yes @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/export_patok.sbatch); echo "export_patok: $export_patok"
generate_benchmarks=$(sbatch --parsable @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/generate_benchmarks.sbatch); echo "generate_benchmarks: $generate_benchmarks"
evaluate=$(sbatch --parsable --dependency=afterok:"$export_baseline":"$export_stochastok":"$export_patok":"$generate_benchmarks" --kill-on-invalid-dep=yes @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/evaluate.sbatch); echo "evaluate: $evaluate"
analyze=$(sbatch --parsable --dependency=afterok:"$evaluate":"$data_stats" --kill-on-invalid-dep=yes @WORKDIR@/jobs/seapile-tl-cpt-slurm-a100/analyze.sbatch); echo "analyze: $analyze"
