#!/usr/bin/env bash
# Data-parallel scaling on one machine (issue 18 item 5): the same pretraining steps three ways —
#   1 process × 1 thread, 1 process × 2 threads, and mpirun -np 2 ranks × 1 thread each —
# and the efficiency of the 2-rank run against twice the 1-thread run and against 2 threads in one process.
#
# Usage: benchmarks/scaling/scaling.sh [--binary PATH] [--case quick|r50] [--limit IMAGES]
#   quick: the embedded default's step (ResNet-18 CIFAR stem, width 0.25, 32×32, batch 256), Fashion-MNIST if it is
#          in /usr/share/datasets/fashion-mnist, else synthetic images of the same size;
#   r50:   a SimSiam ResNet-50 step (projector 2048, predictor 512), 3×96×96 synthetic images, global batch 32.
# Throughput is the training loop's own epoch line ("… img/s"), so process start-up and the kNN monitor (off here)
# are not counted; the first iteration (warm-up) is. Run it on an idle machine: every figure is a rate of the CPU.
set -euo pipefail

binary=.build/release/simsiam-bench
case_name=quick
limit=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --case) case_name="$2"; shift 2 ;;
    --limit) limit="$2"; shift 2 ;;
    -h|--help) sed -n 2,11p "$0"; exit 0 ;;
    *) echo "scaling.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
[[ -x "$binary" ]] || { echo "scaling.sh: $binary is not an executable; build it first: swift build -c release" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "scaling.sh: mpirun not found; install openmpi-bin (make setup)" >&2; exit 2; }

settings=(monitor.knn_at_end=false monitor.knn_interval=0 checkpoint.keep=1 schedule.epochs=1 schedule.max_minutes=0)
case "$case_name" in
  quick)
    settings+=("data.limit=${limit:-2560}")
    [[ -d /usr/share/datasets/fashion-mnist ]] || settings+=(data.kind=synthetic) ;;
  r50)
    settings+=(model.depth=50 model.cifar_stem=false model.in_channels=3 model.width_multiplier=1
               model.projector_hidden=2048 model.features=2048 model.predictor_hidden=512
               data.kind=synthetic data.image_size=96 "data.limit=${limit:-160}" schedule.batch_size=32
               'data.mean=[0.485,0.456,0.406]' 'data.std=[0.229,0.224,0.225]') ;;
  *) echo "scaling.sh: --case is quick or r50, not '$case_name'" >&2; exit 2 ;;
esac
overrides=()
for setting in "${settings[@]}"; do overrides+=(--set "$setting"); done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# measure NAME THREADS [LAUNCHER…]: runs one setup (THREADS 0: the command's default) and prints its images per
# second (two views each), read from the epoch summary line.
measure() {
  local name=$1 threads=$2; shift 2
  local output
  output=$("$@" "$binary" pretrain --threads "$threads" --work-dir "$work/$name" --db "$work/$name.sqlite" \
    --log-interval 0 "${overrides[@]}" 2>&1 | tr '\r' '\n') \
    || { echo "$output" | tail -20 >&2; echo "scaling.sh: the $name run failed" >&2; exit 1; }
  echo "$output" | sed -n 's/^.*epoch 1: mean loss.* \([0-9.]*\) img\/s.*$/\1/p' | tail -1
}

one_thread=$(measure one-thread 1)
two_threads=$(measure two-threads 2)
# --bind-to none: Open MPI would otherwise pin rank r to core r, which is what we want on an idle machine but
# not under other load; each rank takes cores / ranks = 1 thread (PretrainCommand).
two_ranks=$(measure two-ranks 0 mpirun --allow-run-as-root --bind-to none -np 2)

echo "| case | 1 process × 1 thread | 1 process × 2 threads | 2 ranks × 1 thread | 2 ranks / (2 × 1 thread) | 2 ranks / 2 threads |"
echo "|---|---|---|---|---|---|"
awk -v c="$case_name" -v a="$one_thread" -v b="$two_threads" -v r="$two_ranks" 'BEGIN {
  printf "| %s | %.2f img/s | %.2f img/s | %.2f img/s | %.0f %% | %.2f× |\n", c, a, b, r, 100 * r / (2 * a), r / b }'
