#!/bin/sh
# idle-cpu.sh measures what idle node processes cost the machine: it starts
# `p2pchain testnet --nodes N --processes` (difficulty 0, nothing
# submitted), waits for every node and 15 s more, then sums the node
# processes' CPU time (user and system, /proc/PID/stat, 10 ms ticks) over
# SECONDS and prints it per node per second (docs/PERFORMANCE.md, "An idle
# node"). Linux only.
#
#   scripts/idle-cpu.sh            50 nodes, 30 s
#   scripts/idle-cpu.sh 10 60      10 nodes, 60 s
set -u
cd "$(dirname "$0")/.." || exit 2
nodes=${1:-50}
secs=${2:-30}
dir=$(mktemp -d) || exit 2
trap 'kill -INT "$tn" 2>/dev/null; wait "$tn" 2>/dev/null; rm -rf "$dir"' EXIT
go build -o "$dir/p2pchain" ./cmd/p2pchain || exit 2
"$dir/p2pchain" testnet --nodes "$nodes" --processes --difficulty 0 --dir "$dir/net" >"$dir/out" 2>&1 &
tn=$!
i=0
until [ "$(pgrep -f "$dir/p2pchain node" | wc -l)" -ge "$nodes" ]; do
	i=$((i + 1))
	if [ "$i" -gt 300 ] || ! kill -0 "$tn" 2>/dev/null; then
		echo "the testnet did not start $nodes nodes; its output:" >&2
		cat "$dir/out" >&2
		exit 1
	fi
	sleep 1
done
sleep 15
pids=$(pgrep -f "$dir/p2pchain node")
ticks() {
	t=0
	for p in $pids; do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$t"
}
t0=$(ticks)
sleep "$secs"
t1=$(ticks)
echo "$nodes idle node processes: $((t1 - t0)) ticks of 10 ms in $secs s, $(((t1 - t0) * 10000 / secs / nodes)) us of CPU per node per second"
