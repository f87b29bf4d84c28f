#!/bin/sh
# fuzz.sh runs every native Go fuzz target of the module, one after the
# other, each for the same time (long mode; docs/RELIABILITY.md).
#
#   scripts/fuzz.sh                       every target for 10m
#   scripts/fuzz.sh 30s                   every target for 30s
#   scripts/fuzz.sh 1h ./internal/p2p     the targets of some packages
#   FUZZ_PARALLEL=4 scripts/fuzz.sh 10m   four fuzzing workers (default: 2)
#
# Quick mode is plain `go test`: it runs each target on its seed corpus and
# on testdata/fuzz/<Target>/, where go test keeps every crasher it finds.
# A crasher found here stays there: commit it with the fix. The script goes
# on after a failing target and exits 1 at the end if any failed.
set -u
cd "$(dirname "$0")/.." || exit 2
time=${1:-10m}
[ $# -gt 0 ] && shift
if [ $# -gt 0 ]; then
	pkgs=$(go list "$@") || exit 2
else
	pkgs=$(go list ./...) || exit 2
fi
parallel=${FUZZ_PARALLEL:-2}
failed=""
total=0
for pkg in $pkgs; do
	# A package whose targets cannot be listed (its tests do not build,
	# or fail to start) is a failure, not a package without targets.
	if ! list=$(go test -run '^$' -list '^Fuzz' "$pkg" 2>&1); then
		echo "$list"
		echo "== $pkg: cannot list its fuzz targets"
		failed="$failed $pkg(build)"
		continue
	fi
	targets=$(echo "$list" | grep '^Fuzz') || continue
	for target in $targets; do
		total=$((total + 1))
		echo "== $pkg $target ($time)"
		if ! go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$time" -parallel "$parallel"; then
			failed="$failed $pkg.$target"
		fi
	done
done
if [ -n "$failed" ]; then
	echo "FAIL:$failed (of $total targets; crashers are under each package's testdata/fuzz/)"
	exit 1
fi
echo "ok: $total targets, $time each"
