#!/bin/bash
# Grade a class on Slurm: an array of N shard jobs, then a merge job that runs when all of
# them succeeded. Prints the two job ids; the merged gradebook lands in OUT/merged.
#
#   contrib/slurm/submit.sh ASSIGNMENT SUBMISSIONS OUT N [extra sbatch options...]
#   contrib/slurm/submit.sh ex02 /shared/ex02/subs /shared/ex02/out 8 --partition=teaching
#
# Environment passed to the jobs: CNNCOURSE (the command, default `cnncourse` on PATH),
# GRADE_ARGS (extra `cnncourse grade` options, e.g. "--timeout 20"), MERGE_ARGS, SECRET_FILE
# (the hidden-case key every shard uses; default OUT/.hidden-cases.key).
set -euo pipefail
if [ "$#" -lt 4 ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
assignment="$1"; submissions="$(realpath "$2")"; out="$3"; n="$4"; shift 4
case "$n" in ''|*[!0-9]*|0) echo "N must be a positive number of shards, got '$n'" >&2; exit 2 ;; esac
[ -e "$submissions" ] || { echo "no such submissions folder: $submissions" >&2; exit 2; }
mkdir -p "$out"; out="$(realpath "$out")"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export ASSIGNMENT="$assignment" SUBMISSIONS="$submissions" OUT="$out"
grade=$(sbatch --parsable --array="1-$n" --chdir="$out" --export=ALL "$@" "$here/grade-array.sbatch")
grade="${grade%%;*}"   # --parsable prints "id" or "id;cluster"
merge=$(sbatch --parsable --dependency="afterok:$grade" --kill-on-invalid-dep=yes \
  --chdir="$out" --export=ALL "$@" "$here/merge.sbatch")
merge="${merge%%;*}"
echo "grading job array: $grade ($n shards, logs in $out)"
echo "merge job: $merge (runs when every shard succeeded) -> $out/merged/gradebook.csv"
echo "$grade $merge" > "$out/slurm-jobs"
