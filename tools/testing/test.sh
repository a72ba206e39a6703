#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make test`: set up, host tests, style checks, then one VM run with the
# module's KUnit suites and the integration tests. Ends with the line
# "N passed, N failed" and exits non-zero on any failure.

set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top"
export BUILD=${BUILD:-$top/build}
export PATH=$HOME/.cargo/bin:$PATH
mkdir -p "$BUILD/logs"

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
	echo
	echo "logs: $BUILD/logs"
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit
}
# A step that must work for anything after it to mean something.
must() { local what=$1; shift; if "$@"; then return 0; fi; fail "$what"; finish; }

started=$(date +%s)
must setup tools/testing/setup.sh
KDIR=$(tools/testing/kernel.sh) || { fail "kernel build"; finish; }
echo "kernel: $KDIR"

# --- host tests ----------------------------------------------------------------
log=$BUILD/logs/host-tests.log
(cd tools && cargo test --workspace) >"$log" 2>&1
rc=$?
p=$(grep -o 'test result: [a-zA-Z]*\. [0-9]* passed; [0-9]* failed' "$log" | awk '{s+=$4} END {print s+0}')
f=$(grep -o 'test result: [a-zA-Z]*\. [0-9]* passed; [0-9]* failed' "$log" | awk '{s+=$6} END {print s+0}')
passed=$((passed + p)); failed=$((failed + f))
echo "host: cargo test: $p passed, $f failed"
if [ $rc != 0 ] && [ "$f" = 0 ]; then fail "cargo test (did not build; see $log)"; fi

# libmoreram installed, the C sample built against it through pkg-config and run (on the
# host, without /dev/moreram, it must report ENOENT and exit 0), and a program under the
# preload giving the same output as without it (the C library serves everything here).
prefix=$BUILD/prefix
if make --no-print-directory install PREFIX="$prefix" >"$BUILD/logs/install.log" 2>&1 &&
	cc -O2 -Wall -Wextra -Werror -o "$BUILD/moreram-heap" samples/moreram-heap.c \
		$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs moreram) \
		-Wl,-rpath,"$prefix/lib" >>"$BUILD/logs/install.log" 2>&1 &&
	"$BUILD/moreram-heap" >>"$BUILD/logs/install.log" 2>&1; then
	pass "host: libmoreram installs; samples/moreram-heap.c builds through pkg-config and runs"
else
	fail "host: libmoreram install and C sample: see $BUILD/logs/install.log"
fi
prog='import subprocess, sqlite3; x = sorted(str(i * 7919 % 100003) * 20 for i in range(100000)); db = sqlite3.connect(":memory:"); db.execute("create table t(a)"); db.executemany("insert into t values (?)", ((s,) for s in x)); print(len(x), x[0][:8], db.execute("select count(*), max(a) from t").fetchone()[0], subprocess.run(["echo", "child"], capture_output=True).stdout)'
want=$(python3 -c "$prog" 2>&1)
got=$("$prefix/bin/moreram" run --policy prefer --threshold 0 -- python3 -c "$prog" 2>&1)
if [ -n "$want" ] && [ "$want" = "$got" ]; then
	pass "host: python3 under the preload without the device runs as without it"
else
	echo "want: $want"; echo "got:  $got"
	fail "host: python3 under the preload"
fi

# --- style ----------------------------------------------------------------------
# The module's files (not bindgen's output), with the kernel's rustfmt settings.
if find rust -name '*.rs' ! -name generated.rs -print0 |
	xargs -0 rustfmt --check --edition 2021 --config-path "$KDIR/source/.rustfmt.toml" >"$BUILD/logs/rustfmt.log" 2>&1; then
	pass "rustfmt (module)"
else
	fail "rustfmt (module): see $BUILD/logs/rustfmt.log"
fi
# Layers only look down: no circle of imports, no lower layer naming a higher one.
if python3 tools/testing/layers.py rust >"$BUILD/logs/layers.log" 2>&1; then
	pass "module layers only look down"
else
	cat "$BUILD/logs/layers.log"
	fail "module layers only look down"
fi
if (cd tools && cargo fmt --all --check) >"$BUILD/logs/cargo-fmt.log" 2>&1; then
	pass "rustfmt (tools)"
else
	fail "rustfmt (tools): see $BUILD/logs/cargo-fmt.log"
fi
if tools/testing/uapi.sh "$BUILD/uapi-generated.rs" >"$BUILD/logs/uapi.log" 2>&1 &&
	diff -u rust/uapi/generated.rs "$BUILD/uapi-generated.rs" >>"$BUILD/logs/uapi.log"; then
	pass "uapi bindings are current"
else
	fail "uapi bindings are current: run make uapi; see $BUILD/logs/uapi.log"
fi

# --- build: the module with clippy as its compiler, tools, samples -------------
if make --no-print-directory clippy KDIR="$KDIR" >"$BUILD/logs/module.log" 2>&1; then
	pass "module builds clippy-clean"
else
	grep -E -A5 '^(warning|error)' "$BUILD/logs/module.log" | head -40
	fail "module builds clippy-clean: see $BUILD/logs/module.log"
	finish
fi
if ! make --no-print-directory tools >"$BUILD/logs/tools.log" 2>&1; then
	tail -20 "$BUILD/logs/tools.log"
	fail "tools build: see $BUILD/logs/tools.log"
	finish
fi
bin=tools/target/x86_64-unknown-linux-gnu/release

# The preload's programs for the VM (tools/moreram-tests/src/preload.rs): C programs built here
# for the host's C library (the guest runs them through host-run), the scripts, and what the
# programs print on the host without the preload, for the guest to compare with.
pre=$BUILD/preload
preload_programs() {
	mkdir -p "$pre" || return
	for p in threads fill fork; do
		cc -O2 -Wall -Wextra -Werror -pthread -o "$pre/preload-$p" "tools/testing/preload/$p.c" || return
	done
	# make bench's; built here too, so that it keeps building.
	cc -O2 -Wall -Wextra -Werror -pthread -o "$pre/malloc-bench" tools/testing/malloc-bench.c || return
	cp tools/testing/preload/objects.py tools/testing/preload/sqlite.sql "$pre/" &&
		"$bin/moreram-itest" --preload-reference "$pre"
}
if preload_programs >"$BUILD/logs/preload.log" 2>&1; then
	pass "host: the preload's test programs build, and what they print without it"
else
	tail -20 "$BUILD/logs/preload.log"
	fail "host: the preload's test programs: see $BUILD/logs/preload.log"
fi
# The fork test of issue 11 runs in the VM with its heap in the tier (preload-fork); here, where
# the heap is the C library's (under the preload without the device too), so that the program
# itself is known to check what it should.
if "$pre/preload-fork" >>"$BUILD/logs/preload.log" 2>&1 &&
	"$prefix/bin/moreram" run --policy prefer --threshold 0 -- "$pre/preload-fork" >>"$BUILD/logs/preload.log" 2>&1; then
	pass "host: tools/testing/preload/fork.c on anonymous memory"
else
	fail "host: tools/testing/preload/fork.c: see $BUILD/logs/preload.log"
fi

# --- the VM ---------------------------------------------------------------------
vmlog=$BUILD/logs/vm-test.log
tools/testing/vm.sh --kdir "$KDIR" --module moreram.ko --log "$vmlog" \
	--add "$bin/moreram-itest" --add "$bin/moreram-alloc-rs" --add "$bin/moreram-heap-rs" --add "$bin/moreram-bench" --add "$bin/moreram" \
	--add "$bin/moreram-fuzz" \
	--add "$BUILD/samples/moreram-banks" --add "$BUILD/samples/moreram-alloc" \
	tools/testing/guest/test.sh
vmrc=$?
# The console log is one KTAP document (Documentation/testing.rst): count from
# the kernel's own parser. A KUnit case runs on each module load and counts
# once, with its worst result; any other test counts each time it ran; a skip
# does not count; a parse error counts as a failure.
json=$(realpath "$BUILD/logs/vm-test.json")
rm -f "$json"
python3 "$KDIR/source/tools/testing/kunit/kunit.py" parse --failed --json="$json" "$(realpath "$vmlog")"
counts=$(python3 - "$json" <<'EOF'
import json, sys
kunit, other = {}, []
def walk(group):
    for t in group['test_cases']:
        if t['status'] == 'SKIP':
            continue
        if group['name'].startswith('moreram_'):
            key = group['name'] + '.' + t['name']
            kunit[key] = kunit.get(key, True) and t['status'] == 'PASS'
        else:
            other.append(t['status'] == 'PASS')
    for g in group['sub_groups']:
        walk(g)
top = json.load(open(sys.argv[1]))
walk(top)
done = list(kunit.values()) + other
print(sum(done), len(done) - sum(done) + top['misc']['errors'], len(kunit))
EOF
)
read -r p f k <<<"$counts"
echo "vm: ${p:-0} passed, ${f:-0} failed (a KUnit case once)"
passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
# Bytes written through a mapping landed in the device's memory: the BAR's
# backing file on the host holds the marker the guest wrote.
marker=$(sed -n 's/^\[[^]]*\] # moreram-marker: //p' "$vmlog" | tail -n 1)
if [ -n "$marker" ] && grep -q -a -F "$marker" "$BUILD/ivshmem.bin"; then
	pass "host: data written through a mapping is in the BAR's backing file"
else
	fail "host: marker '${marker}' not found in $BUILD/ivshmem.bin"
fi
if [ $vmrc != 0 ]; then
	fail "vm run (see above; log $vmlog)"
elif [ "${k:-0}" = 0 ]; then
	fail "vm run: kunit.py found no moreram KUnit results in the log"
fi
echo "time: $(( $(date +%s) - started ))s"
finish
