#!/usr/bin/env bash
# Times linkward, tcpdump and tshark side by side on the same generated captures.
#
# What it does, in one run:
#   1. builds the release binary and the capture generator;
#   2. generates, once (kept between runs), a full-size-packet capture of $PACKETS
#      packets (about 1 GB at the default 1,000,000) and its copy cut at a 96-byte
#      snap length, plus a 100,000-packet prefix of the full capture for tshark, which
#      is too slow to run on all of it (its rate is measured on the prefix and the
#      table says so);
#   3. warms the page cache, in one of two states (CACHE): `read` (default) drops the
#      captures from the cache and reads them back, which is how any reader leaves a
#      file it read from disk (on Linux with large folios in the page cache, mostly
#      2 MiB folios, which a mapping takes 2 MiB a fault); `written` rewrites them in
#      4 KiB writes, which is how a capture just written by a capture tool is cached
#      (4 KiB pages, which a mapping takes sixteen a fault: the kernel's time in a
#      linkward run is several times larger). Both are a warm cache, and different
#      inputs to a reader;
#   4. runs $ROUNDS rounds of: linkward scan with 1 and 2 workers on both captures
#      (the example policy compiled to WebAssembly, EVE output to a file), tcpdump
#      -r F -w /dev/null on both, and tshark -Y with the filter equivalent to the
#      policy's interest on the prefix — each under /usr/bin/time for elapsed seconds
#      and peak RSS;
#   5. checks that 1 and 2 workers report the same set of findings, and that it is the
#      set the generator says a correct scan reports;
#   6. prints medians (with the spread over rounds), packets per second, the ratio to
#      tcpdump on the same input, peak RSS, and the targets met or missed.
#
# Settings (environment):
#   LINKWARD_BENCH_DIR   work directory for captures and outputs (/tmp/linkward-bench)
#   ROUNDS               rounds of measurement (3)
#   PACKETS              packets in the generated captures (1000000)
#   FLOWS                flows asked of the generator (4000)
#   TSHARK_PACKETS       packets of the prefix tshark reads (100000)
#   SKIP_BUILD=1         use target/release as it is (no cargo build)
#   CACHE                the page cache's state: read (default) or written (step 3)
#
# Needs: cargo, tcpdump, tshark and editcap (wireshark), GNU time at /usr/bin/time,
# awk. Run it on a quiet machine; figures from a shared one vary by tens of percent.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${LINKWARD_BENCH_DIR:-/tmp/linkward-bench}"
ROUNDS="${ROUNDS:-3}"
PACKETS="${PACKETS:-1000000}"
FLOWS="${FLOWS:-4000}"
TSHARK_PACKETS="${TSHARK_PACKETS:-100000}"
POLICY="$ROOT/examples/fabrikam.toml"
# What the example policy looks at: DNS answers, TLS ClientHellos, HTTP requests, and
# SMB (its one port rule). tshark must dissect every packet to apply it, as linkward does.
TSHARK_FILTER='dns or tls.handshake.type == 1 or http.request or tcp.port == 445'

for tool in cargo tcpdump tshark editcap awk; do
    command -v "$tool" > /dev/null || { echo "compare.sh: $tool is required" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "compare.sh: GNU time (/usr/bin/time) is required" >&2; exit 2; }

if [ "${SKIP_BUILD:-0}" = 1 ]; then
    echo "== using the binaries already in target/release (SKIP_BUILD=1)" >&2
else
    echo "== building (release)" >&2
    (cd "$ROOT" && cargo build --release --quiet --bin linkward --example gen-capture)
fi
LINKWARD="$ROOT/target/release/linkward"
GEN="$ROOT/target/release/examples/gen-capture"

mkdir -p "$WORK/out"
FULL="$WORK/full-$PACKETS.pcap"
SNAP="$WORK/snap96-$PACKETS.pcap"
PREFIX="$WORK/prefix-$TSHARK_PACKETS.pcap"
if [ ! -s "$FULL" ] || [ ! -s "$FULL.json" ]; then
    echo "== generating $FULL" >&2
    "$GEN" --packets "$PACKETS" --flows "$FLOWS" -o "$FULL" > "$FULL.json"
fi
if [ ! -s "$SNAP" ] || [ ! -s "$SNAP.json" ]; then
    echo "== generating $SNAP" >&2
    "$GEN" --packets "$PACKETS" --flows "$FLOWS" --snaplen 96 -o "$SNAP" > "$SNAP.json"
fi
if [ ! -s "$PREFIX" ]; then
    editcap -r "$FULL" "$PREFIX" "1-$TSHARK_PACKETS"
fi


# A JSON number field of a one-line JSON document, without jq.
json_field() {
    grep -o "\"$2\":[0-9.]*" "$1" | head -n 1 | cut -d: -f2
}

# The policy is compiled to WebAssembly once, as a deployment ships it.
WASM="$WORK/fabrikam.wasm"
"$LINKWARD" compile "$POLICY" -o "$WASM" > /dev/null

CACHE="${CACHE:-read}"
echo "== warming the page cache ($CACHE)" >&2
for f in "$FULL" "$SNAP" "$PREFIX"; do
    case "$CACHE" in
        read)
            # Written pages must reach the disk before the cache can let them go.
            sync "$f"
            dd if="$f" iflag=nocache count=0 status=none
            cat "$f" > /dev/null
            ;;
        written)
            dd if="$f" of="$f.rewrite" bs=4k status=none
            mv "$f.rewrite" "$f"
            ;;
        *) echo "compare.sh: CACHE is read or written, not $CACHE" >&2; exit 2 ;;
    esac
done
# How much of the page cache is in 2 MiB folios (file systems and kernels without
# large folios show 0 whoever reads first).
huge_file_mb="$(awk '/^FileHugePages:/ { printf "%.0f", $2 / 1024 }' /proc/meminfo 2> /dev/null || true)"

TIMES="$WORK/times.txt"
: > "$TIMES"

# run LABEL INPUT PACKETS -- command...: one timed run, appended to $TIMES as
# "label input packets seconds peak_rss_kb".
run() {
    local label="$1" input="$2" packets="$3"
    shift 4
    local t="$WORK/out/time" began ended
    # Wall time from the shell's clock (microseconds; /usr/bin/time rounds to 10 ms,
    # a twentieth of a linkward run), peak RSS from /usr/bin/time.
    began="$EPOCHREALTIME"
    if ! /usr/bin/time -f '%M' -o "$t" "$@" > /dev/null 2> "$WORK/out/stderr"; then
        echo "compare.sh: $label on $input failed:" >&2
        cat "$WORK/out/stderr" >&2
        exit 1
    fi
    ended="$EPOCHREALTIME"
    echo "$label $input $packets $(awk -v a="$began" -v b="$ended" 'BEGIN { printf "%.4f", b - a }') $(cat "$t")" >> "$TIMES"
}

full_packets="$(json_field "$FULL.json" packets)"
snap_packets="$(json_field "$SNAP.json" packets)"
for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round of $ROUNDS" >&2
    for w in 1 2; do
        run "linkward-w$w" full "$full_packets" -- \
            "$LINKWARD" scan --policy "$WASM" --quiet --format eve --workers "$w" \
            -o "$WORK/out/full-w$w.eve" "$FULL"
        run "linkward-w$w" snap96 "$snap_packets" -- \
            "$LINKWARD" scan --policy "$WASM" --quiet --format eve --workers "$w" \
            -o "$WORK/out/snap96-w$w.eve" "$SNAP"
    done
    # The fixed cost of a run (loading the module), on the 8-packet demo capture.
    run linkward-w1 demo 8 -- \
        "$LINKWARD" scan --policy "$WASM" --quiet --format eve \
        -o "$WORK/out/demo.eve" "$ROOT/examples/fabrikam-demo.pcap"
    run tcpdump full "$full_packets" -- tcpdump -r "$FULL" -w /dev/null
    run tcpdump snap96 "$snap_packets" -- tcpdump -r "$SNAP" -w /dev/null
    run tshark prefix "$TSHARK_PACKETS" -- tshark -r "$PREFIX" -Y "$TSHARK_FILTER" -q
done

# Findings: the same set with 1 and 2 workers, and as many as the generator expects.
for input in full snap96; do
    summary="$FULL.json"
    [ "$input" = snap96 ] && summary="$SNAP.json"
    for w in 1 2; do
        grep -v '"event_type":"stats"' "$WORK/out/$input-w$w.eve" | sort > "$WORK/out/$input-w$w.alerts"
        read_packets="$(grep '"event_type":"stats"' "$WORK/out/$input-w$w.eve" | grep -o '"packets_read":[0-9]*' | cut -d: -f2)"
        want_packets="$(json_field "$summary" packets)"
        if [ "$read_packets" != "$want_packets" ]; then
            echo "compare.sh: linkward-w$w read $read_packets of $want_packets packets of $input" >&2
            exit 1
        fi
    done
    if ! cmp -s "$WORK/out/$input-w1.alerts" "$WORK/out/$input-w2.alerts"; then
        echo "compare.sh: 1 and 2 workers report different findings on $input:" >&2
        diff "$WORK/out/$input-w1.alerts" "$WORK/out/$input-w2.alerts" | head -n 20 >&2
        exit 1
    fi
    expected="$(grep -o '"expected":{[^}]*}' "$summary" | grep -o ':[0-9]*' | tr -d : | awk '{s+=$1} END {print s+0}')"
    found="$(wc -l < "$WORK/out/$input-w1.alerts" | tr -d ' ')"
    echo "findings on $input: $found with 1 worker, the same with 2; the generator expects $expected"
    if [ "$found" != "$expected" ]; then
        echo "compare.sh: WARNING: findings on $input differ from what the generator expects" >&2
    fi
done

full_mb="$(awk -v b="$(stat -c %s "$FULL")" 'BEGIN { printf "%.0f", b / 1e6 }')"
snap_mb="$(awk -v b="$(stat -c %s "$SNAP")" 'BEGIN { printf "%.0f", b / 1e6 }')"
echo
echo "inputs: full = $FULL ($full_packets packets, $full_mb MB, $(json_field "$FULL.json" flows) flows);"
echo "        snap96 = the same cut at 96 bytes ($snap_mb MB); prefix = its first $TSHARK_PACKETS packets"
echo "machine: $(nproc) cores, $(uname -r); $ROUNDS rounds, page cache warm; median seconds (min-max)"
echo "page cache: captures $CACHE (see CACHE); file pages in 2 MiB folios, whole machine: ${huge_file_mb:-unknown} MB"
echo
# Medians over rounds, packets/s and ratios; tshark's rate is its rate on the prefix.
awk -v rounds="$ROUNDS" -v full_packets="$full_packets" '
function median(list, n,    a, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    if (n % 2) return a[(n + 1) / 2]
    return (a[n / 2] + a[n / 2 + 1]) / 2
}
function minimum(list,    a, i, n, m) { n = split(list, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 < m + 0) m = a[i]; return m }
function maximum(list,    a, i, n, m) { n = split(list, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 > m + 0) m = a[i]; return m }
{
    key = $1 " " $2
    if (!(key in secs)) order[++keys] = key
    secs[key] = secs[key] " " $4
    rss[key] = rss[key] " " $5
    packets[key] = $3
}
END {
    for (k = 1; k <= keys; k++) {
        key = order[k]
        s[key] = median(secs[key]); if (s[key] <= 0) s[key] = 0.0005
        pps[key] = packets[key] / s[key]
    }
    printf "%-12s %-7s %9s %20s %12s %11s %9s\n", "tool", "input", "packets", "median s", "packets/s", "x tcpdump", "peak RSS"
    for (k = 1; k <= keys; k++) {
        key = order[k]; split(key, part, " ")
        base = (part[2] == "prefix") ? "tcpdump full" : "tcpdump " part[2]
        ratio = (base in pps) ? sprintf("%.2f", pps[key] / pps[base]) : "-"
        spread = sprintf("%.3f (%.3f-%.3f)", s[key], minimum(secs[key]), maximum(secs[key]))
        printf "%-12s %-7s %9d %20s %12.0f %11s %6.0f MB\n", part[1], part[2], packets[key], spread, pps[key], ratio, median(rss[key]) / 1024
    }
    if ("linkward-w1 demo" in s)
        printf "\nlinkward-w1 demo: the fixed cost of a run (module compilation and checks): %.3f s.\n", s["linkward-w1 demo"]
    if ("tshark prefix" in pps)
        printf "\ntshark read the %d-packet prefix; at that rate the full capture takes %.0f s.\n", packets["tshark prefix"], full_packets / pps["tshark prefix"]
    print ""
    print "targets:"
    t1 = pps["linkward-w1 full"]
    check(t1 >= 4e6, sprintf("linkward 1 worker, full-size packets >= 4 M packets/s: %.2f M", t1 / 1e6))
    check(t1 >= 2 * pps["tcpdump full"], sprintf(">= 2x tcpdump -r F -w /dev/null: %.2fx", t1 / pps["tcpdump full"]))
    check(t1 >= 40 * pps["tshark prefix"], sprintf(">= 40x tshark -Y: %.1fx", t1 / pps["tshark prefix"]))
    t96 = pps["linkward-w1 snap96"]
    check(t96 >= 10e6, sprintf("96-byte snaplen >= 10 M packets/s: %.2f M", t96 / 1e6))
    check(pps["linkward-w2 full"] >= 1.7 * t1, sprintf("2 workers >= 1.7x 1 worker (full): %.2fx", pps["linkward-w2 full"] / t1))
    r = median(rss["linkward-w1 full"]) / 1024
    check(r < 100, sprintf("peak RSS < 100 MB on the %d-packet full-size capture: %.0f MB", full_packets, r))
}
function check(ok, what) { printf "  %-4s %s\n", ok ? "met" : "MISS", what }
' "$TIMES"
