#!/bin/sh
# fuzz.sh -- run libFuzzer targets for a while each, and report.
#
# usage: fuzz.sh build-dir seconds target ...
#
# Each target runs for the given seconds on build-dir/corpus-TARGET
# (kept between runs, so the committed seeds in tests/fuzz/corpus stay
# small), with the seeds and the crash reproducers of tests/fuzz as
# read-only inputs, the dictionary tests/fuzz/TARGET.dict and the
# options in tests/fuzz/TARGET.options if there are any.  A crash,
# a leak, a failed property or a timeout leaves its input in
# build-dir/artifacts-TARGET/ and fails the run, after the others.

set -u
# The last status line may hold octets of an input: match them too.
export LC_ALL=C

if [ $# -lt 3 ]; then
	echo "usage: fuzz.sh build-dir seconds target ..." >&2
	exit 2
fi
dir=$1
secs=$2
shift 2

fail=0
printf '%-20s %12s %9s %7s %7s %7s\n' target executions exec/s cov ft \
    corpus
for t in "$@"; do
	bin=$dir/libfuzzer/$t
	corpus=$dir/corpus-$t
	artifacts=$dir/artifacts-$t
	log=$dir/$t.log
	mkdir -p "$corpus" "$artifacts"
	set -- -max_total_time="$secs" -print_final_stats=1 -timeout=25 \
	    -artifact_prefix="$artifacts/"
	[ -f "tests/fuzz/$t.dict" ] && set -- "$@" -dict="tests/fuzz/$t.dict"
	if [ -f "tests/fuzz/$t.options" ]; then
		# shellcheck disable=SC2046
		set -- "$@" $(cat "tests/fuzz/$t.options")
	fi
	set -- "$@" "$corpus" "tests/fuzz/corpus/$t"
	[ -d "tests/fuzz/regress/$t" ] && set -- "$@" "tests/fuzz/regress/$t"

	"$bin" "$@" </dev/null >"$log" 2>&1
	rc=$?

	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	units=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p')
	printf '%-20s %12s %9s %7s %7s %7s\n' "$t" "${execs:-?}" \
	    "${speed:-?}" "${cov:-?}" "${ft:-?}" "${units:-?}"
	if [ "$rc" -ne 0 ]; then
		fail=1
		echo "$t: FAILED (exit $rc); the end of $log:" >&2
		grep -E 'ERROR|SUMMARY|property failed|#[0-9]+ *in ' "$log" |
		    head -n 20 >&2
		ls "$artifacts" >&2
	fi
done
exit $fail
