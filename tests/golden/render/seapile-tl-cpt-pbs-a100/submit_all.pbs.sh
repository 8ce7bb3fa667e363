#!/bin/bash
# Submit experiment seapile-tl-cpt to pbs (pbs-a100) in dependency order.
set -euo pipefail
cd @WORKDIR@
mkdir -p -- @WORKDIR@/logs
download_data=$(qsub @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/download_data.pbs); echo "download_data: $download_data"
split_data=$(qsub -W depend=afterok:"$download_data" @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/split_data.pbs); echo "split_data: $split_data"
preprocess_data_vanilla=$(qsub -W depend=afterok:"$split_data" @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/preprocess_data_vanilla.pbs); echo "preprocess_data_vanilla: $preprocess_data_vanilla"
merge_data_vanilla=$(qsub -W depend=afterok:"$preprocess_data_vanilla" @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/merge_data_vanilla.pbs); echo "merge_data_vanilla: $merge_data_vanilla"
preprocess_data_stochastok=$(qsub -W depend=afterok:"$split_data" @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/preprocess_data_stochastok.pbs); echo "preprocess_data_stochastok: $preprocess_data_stochastok"
merge_data_stochastok=$(qsub -W depend=afterok:"$preprocess_data_stochastok" @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/merge_data_stochastok.pbs); echo "merge_data_stochastok: $merge_data_stochastok"
preprocess_data_patok=$(qsub -W depend=afterok:"$split_data" @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/preprocess_data_patok.pbs); echo "preprocess_data_patok: $preprocess_data_patok"
merge_data_patok=$(qsub -W depend=afterok:"$preprocess_data_patok" @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/merge_data_patok.pbs); echo "merge_data_patok: $merge_data_patok"
data_stats=$(qsub -W depend=afterok:"$merge_data_vanilla":"$merge_data_stochastok":"$merge_data_patok" @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/data_stats.pbs); echo "data_stats: $data_stats"
import_base_model=$(qsub @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/import_base_model.pbs); echo "import_base_model: $import_base_model"
run_cpt_baseline=$(qsub -W depend=afterok:"$merge_data_vanilla":"$import_base_model" @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/run_cpt_baseline.pbs); echo "run_cpt_baseline: $run_cpt_baseline"
export_baseline=$(qsub -W depend=afterok:"$run_cpt_baseline" @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/export_baseline.pbs); echo "export_baseline: $export_baseline"
run_cpt_stochastok=$(qsub -W depend=afterok:"$merge_data_stochastok":"$import_base_model",afterany:"$run_cpt_baseline" @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/run_cpt_stochastok.pbs); echo "run_cpt_stochastok: $run_cpt_stochastok"
export_stochastok=$(qsub -W depend=afterok:"$run_cpt_stochastok" @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/export_stochastok.pbs); echo "export_stochastok: $export_stochastok"
run_cpt_patok=$(qsub -W depend=afterok:"$merge_data_patok":"$import_base_model",afterany:"$run_cpt_stochastok" @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/run_cpt_patok.pbs); echo "run_cpt_patok: $run_cpt_patok"
export_patok=$(qsub -W depend=afterok:"$run_cpt_patok" @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/export_patok.pbs); echo "export_patok: $export_patok"
generate_benchmarks=$(qsub @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/generate_benchmarks.pbs); echo "generate_benchmarks: $generate_benchmarks"
evaluate=$(qsub -W depend=afterok:"$export_baseline":"$export_stochastok":"$export_patok":"$generate_benchmarks" @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/evaluate.pbs); echo "evaluate: $evaluate"
analyze=$(qsub -W depend=afterok:"$evaluate":"$data_stats" @WORKDIR@/jobs/seapile-tl-cpt-pbs-a100/analyze.pbs); echo "analyze: $analyze"
