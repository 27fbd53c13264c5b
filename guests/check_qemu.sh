#!/usr/bin/env bash
# check_qemu.sh - build every guest and run it under QEMU, the reference.
#
# For each guest directory (one with a guest.toml) the kernel must
#   - contain only integer instructions (no x87/MMX/SSE in objdump -d),
#   - print exactly <guest>/expected.out on the serial port, and
#   - exit with status (exit_code << 1) | 1 through isa-debug-exit.
# Then the command line is exercised: compute and loop with scale=2, and
# every microbenchmark (MICROBENCHMARKS below) with n=100.
#
# Prints one line per check and "check_qemu: N passed, M failed"; exits 1 if
# anything failed.  Environment: QEMU (default qemu-system-i386),
# TIMEOUT seconds per run (default 120).
set -u
cd "$(dirname "$0")"

QEMU=${QEMU:-qemu-system-i386}
TIMEOUT=${TIMEOUT:-120}
OUT=build/qemu
passed=0
failed=0

pass() { printf 'PASS %-16s %s\n' "$1" "$2"; passed=$((passed + 1)); }
fail() { printf 'FAIL %-16s %s\n' "$1" "$2"; failed=$((failed + 1)); }

# run_guest NAME OUTFILE [APPEND] -> sets $status
run_guest() {
    local args=(-kernel "build/$1.elf" -m 64 -display none -serial stdio
                -device isa-debug-exit,iobase=0xf4,iosize=0x04 -no-reboot)
    [ -n "${3:-}" ] && args+=(-append "$3")
    timeout "$TIMEOUT" "$QEMU" "${args[@]}" </dev/null >"$2" 2>"$2.stderr"
    status=$?
}

# x87, MMX or SSE instructions in a kernel (mnemonic or register operand).
# Functions named x87_deliberate_* are exempt: the exceptions guest raises
# #NM with one FWAIT there on purpose.
non_integer_insns() {
    objdump -d --no-show-raw-insn "$1" | awk -F'\t' '
        /^[0-9a-f]+ <.*>:$/ { exempt = ($0 ~ /<x87_deliberate_/) ; next }
        NF >= 2 && !exempt {
        split($2, w, " "); m = w[1]
        if (m ~ /^f/ || m ~ /^(emms|ldmxcsr|stmxcsr|fxsave|fxrstor|wait)$/ ||
            $2 ~ /%(st|mm[0-7]|xmm|ymm)/) print }' | head -3
}

mkdir -p "$OUT"
if ! make -s all >"$OUT/make.log" 2>&1; then
    cat "$OUT/make.log"
    echo "check_qemu: build failed"
    exit 1
fi

for toml in */guest.toml; do
    g=${toml%/guest.toml}
    code=$(sed -n 's/^exit_code *= *\([0-9][0-9]*\).*/\1/p' "$toml")
    want=$(( (code << 1) | 1 ))
    bad=$(non_integer_insns "build/$g.elf")
    if [ -n "$bad" ]; then
        fail "$g" "non-integer instructions: $(echo "$bad" | tr '\n\t' '  ')"
        continue
    fi
    run_guest "$g" "$OUT/$g.out"
    if [ "$status" -ne "$want" ]; then
        fail "$g" "exit status $status, expected $want (exit_code $code); output in $OUT/$g.out"
    elif ! cmp -s "$OUT/$g.out" "$g/expected.out"; then
        fail "$g" "output differs from $g/expected.out (diff $OUT/$g.out $g/expected.out)"
    else
        pass "$g" "status $status, output matches expected.out ($(wc -c <"$g/expected.out") bytes)"
    fi
done

# The command line: scale=2 must double the work and change the checksums.
if [ -f build/compute.elf ]; then
    run_guest compute "$OUT/compute-scale2.out" "scale=2"
    if [ "$status" -ne 1 ]; then
        fail "compute scale=2" "exit status $status, expected 1"
    elif [ "$(head -1 "$OUT/compute-scale2.out")" != "compute: scale=2" ] ||
         ! grep -qx 'crc32: 16 passes over 65536 bytes: crc c0db381e' "$OUT/compute-scale2.out" ||
         [ "$(tail -1 "$OUT/compute-scale2.out")" != "compute: done" ]; then
        fail "compute scale=2" "unexpected output in $OUT/compute-scale2.out"
    else
        pass "compute scale=2" "status 1, scale=2 seen, 16 CRC passes, self-checks passed"
    fi
fi
if [ -f build/loop.elf ]; then
    run_guest loop "$OUT/loop-scale2.out" "scale=2"
    if [ "$status" -ne 1 ] || ! grep -q '^loop: 100000 iterations, checksum ' "$OUT/loop-scale2.out"; then
        fail "loop scale=2" "status $status; output in $OUT/loop-scale2.out"
    else
        pass "loop scale=2" "status 1, 100000 iterations"
    fi
fi

# The microbenchmarks take their iteration count from n=N.
MICROBENCHMARKS="syscall in cli-sti cr3 callret pgfault divzero ptemod"
for g in $MICROBENCHMARKS; do
    [ -f "build/$g.elf" ] || continue
    run_guest "$g" "$OUT/$g-n100.out" "n=100"
    if [ "$status" -ne 1 ] || [ "$(cat "$OUT/$g-n100.out")" != "$g: 100 iterations" ]; then
        fail "$g n=100" "status $status; output in $OUT/$g-n100.out"
    else
        pass "$g n=100" "status 1, 100 iterations"
    fi
done

echo "check_qemu: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
