#!/usr/bin/env bash
# Throughput and peak memory of `linkward scan` on one large VNet flow log.
#
# Azure writes one blob per hour and interface, and a busy interface's blob runs to
# hundreds of megabytes in a single JSON document. The reader streams it, so memory
# should stay flat however large the file is; this script checks that on a generated
# log of about SIZE_MIB MiB (default 1024) and prints tuples per second and peak RSS.
#
# usage: [LINKWARD_BIN=path] benches/flowlog_rss.sh [SIZE_MIB]
#
# The log is written to a temporary directory (removed on exit), with the same flow mix
# as benches/flowlog.rs: flows to the AzureHealthcareAPIs range, to the private
# endpoints, to SMB and to the Internet logged as B, C and E tuples over consecutive
# records, and denied inbound attempts. The wall time includes compiling the policy.
set -euo pipefail

cd "$(dirname "$0")/.."
size_mib=${1:-1024}
# LINKWARD_BIN names an already built binary; otherwise the release build is brought
# up to date first.
bin=${LINKWARD_BIN:-}
if [[ -z $bin ]]; then
    cargo build --quiet --release --bin linkward
    bin=target/release/linkward
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log=$tmp/PT1H.json

python3 - "$log" "$size_mib" >"$tmp/tuples" <<'PY'
import sys

path, size_mib = sys.argv[1], int(sys.argv[2])
limit = size_mib << 20
FLOWS_PER_RECORD = 1000
START_MS = 1_714_557_600_000
TARGET_ID = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
             "fabrikam/providers/Microsoft.Network/virtualNetworks/fabrikam")


def flow_fields(i):
    a = (i >> 8) % 200
    b = i % 250 + 1
    src_port = 1024 + i % 60000
    client = f"10.{1 + (i // 10) % 2}.{3 + a}.{b}"
    kind = i % 10
    if kind <= 1:
        return f"{client},20.37.{a}.{b},{src_port},443,6,O", False
    if kind <= 4:
        return f"{client},10.1.2.{5 + i % 2},{src_port},443,6,O", False
    if kind == 5:
        return f"{client},10.1.{3 + a}.{b},{src_port},445,6,O", False
    if kind <= 8:
        return f"{client},203.0.113.{b},{src_port},443,6,O", False
    return f"198.51.100.{b},10.1.2.5,{src_port},443,6,I", True


def group(rule, tuples):
    body = ",".join(f'"{t}"' for t in tuples)
    return f'{{"rule":"{rule}","flowTuples":[{body}]}}'


tuples = 0
written = 0
record = 0
next_flow = 0
pending = []
with open(path, "w", buffering=1 << 20) as out:
    out.write('{"records":[\n')
    while written < limit or pending:
        time = START_MS + record * 60_000
        allowed, denied, still = [], [], []
        for i, state in pending:
            fields, _ = flow_fields(i)
            t = time + (i % FLOWS_PER_RECORD) * 37
            counters = "40,4000,38,90000" if state == "C" else "2,120,2,120"
            allowed.append(f"{t},{fields},{state},NX,{counters}")
            if state == "C":
                still.append((i, "E"))
        if written < limit:
            for i in range(next_flow, next_flow + FLOWS_PER_RECORD):
                fields, is_denied = flow_fields(i)
                t = time + (i % FLOWS_PER_RECORD) * 37
                if is_denied:
                    denied.append(f"{t},{fields},D,NX,0,0,0,0")
                else:
                    allowed.append(f"{t},{fields},B,NX,0,0,0,0")
                    still.append((i, "C"))
            next_flow += FLOWS_PER_RECORD
        pending = still
        tuples += len(allowed) + len(denied)
        text = (("," if record else "")
                + f'{{"time":"2024-05-01T10:{record % 60:02}:00.0000000Z","flowLogVersion":4,'
                + '"macAddress":"00224871C205","category":"FlowLogFlowEvent",'
                + f'"targetResourceID":"{TARGET_ID}","operationName":"FlowLogFlowEvent",'
                + '"flowRecords":{"flows":[{"aclID":"00000000-0000-0000-0000-000000000001",'
                + '"flowGroups":[' + group("AllowVnetOutBound", allowed) + ","
                + group("DenyInternetInBound", denied) + "]}]}}\n")
        out.write(text)
        written += len(text)
        record += 1
    out.write("]}\n")
print(tuples)
PY
tuples=$(<"$tmp/tuples")
bytes=$(stat -c %s "$log")

status=0
/usr/bin/time -v "$bin" scan --policy examples/fabrikam.toml --quiet -o /dev/null "$log" \
    2>"$tmp/time" || status=$?
if [[ $status -ne 0 ]]; then
    cat "$tmp/time" >&2
    echo "linkward scan exited with status $status" >&2
    exit 1
fi

# "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:12.34"
elapsed=$(awk -F': ' '/Elapsed \(wall clock\)/ {
    n = split($2, p, ":"); s = 0
    for (i = 1; i <= n; i++) s = s * 60 + p[i]
    print s }' "$tmp/time")
rss_kib=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$tmp/time")

awk -v tuples="$tuples" -v bytes="$bytes" -v secs="$elapsed" -v rss="$rss_kib" 'BEGIN {
    printf "log           %.0f MiB, %d tuples\n", bytes / 1048576, tuples
    printf "wall time     %.2f s\n", secs
    printf "throughput    %.0f tuples/s (%.0f MiB/s)\n", tuples / secs, bytes / 1048576 / secs
    printf "peak RSS      %.1f MiB\n", rss / 1024
}'
