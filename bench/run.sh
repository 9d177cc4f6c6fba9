#!/usr/bin/env bash
# Runs herd's benchmark suite and prints the results table (BENCHMARKS.md
# explains it). Takes about 6 minutes; extra arguments go to herdbench, e.g.
#   bench/run.sh -only rollout
# The full log is also kept in bench/results/ (not committed).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bin=$(mktemp -d "${TMPDIR:-/tmp}/herdbench-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT

echo "building herd and herdbench" >&2
go build -o "$bin/herd" ./cmd/herd
go build -o "$bin/herdbench" ./bench/herdbench

mkdir -p bench/results
log="bench/results/$(date -u +%Y%m%dT%H%M%SZ).txt"
{
	echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "# nproc=$(nproc) cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "# kernel=$(uname -r) $(go version)"
} | tee "$log"
"$bin/herdbench" -herd "$bin/herd" "$@" 2>&1 | tee -a "$log"
exit "${PIPESTATUS[0]}"
