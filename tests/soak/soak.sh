#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Multi-process soak: 4 processes share one history file for HOURS of
# simulated time each, sampling RSS, file size and dropped rows; fails
# unless all three are flat over the second half of the run.
# usage: soak.sh SOAK_PROC WORKDIR [HOURS] [PROCS]
set -eu
proc=$1
dir=$2
hours=${3:-48}
procs=${4:-4}
mkdir -p "$dir"
db=$dir/soak.db
rm -f "$db" "$db-wal" "$db-shm" "$dir"/soak-*.csv
start=$(date +%s)
i=1
pids=""
while [ "$i" -le "$procs" ]; do
    "$proc" soak "$db" "svc$i" "$hours" > "$dir/soak-$i.csv" &
    pids="$pids $!"
    i=$((i + 1))
done
fail=0
for p in $pids; do
    wait "$p" || fail=1
done
end=$(date +%s)
[ "$fail" -eq 0 ] || { echo "soak: a process failed"; exit 1; }
"$proc" check "$db"
echo "soak: $procs processes x $hours simulated hours in $((end - start)) s"
# columns: name,hours,rss_kb,db_logical_bytes,db_file_bytes,wal_bytes,
#          calls,accepted,written,dropped_full,dropped_error,store_dropped,
#          pending
cat "$dir"/soak-*.csv | awk -F, -v H="$hours" '
    # the first sample at or after each quarter of the run, and the last
    {
        n = $1
        for (q = 1; q <= 3; q++)
            if ($2 >= H * q / 4 && !((n, q) in at)) at[n, q] = $0
        at[n, 4] = $0
        names[n] = 1
        if ($6 > maxwal) maxwal = $6
    }
    END {
        bad = 0
        printf "%-5s %-22s %-22s %-22s %-22s\n", "proc", "rss kB @25/50/75/100%",
               "", "data MB @25/50/75/100%", ""
        for (n in names) {
            line = sprintf("%-5s", n)
            for (q = 1; q <= 4; q++) { split(at[n, q], f, ","); line = line sprintf(" %6d", f[3]) }
            line = line "  "
            for (q = 1; q <= 4; q++) { split(at[n, q], f, ","); line = line sprintf(" %5.1f", f[4] / 1048576) }
            split(at[n, 2], m, ","); split(at[n, 4], l, ",")
            dropped = l[10] + l[11]
            print line sprintf("  calls %d dropped %d", l[7], dropped)
            # flat: over the second half RSS grows < 10% + 2 MB and the data
            # < 5% + 1 MB; nothing dropped; everything accepted was written
            if (l[3] > m[3] * 1.10 + 2048) { print n ": RSS grew"; bad = 1 }
            if (l[4] > m[4] * 1.05 + 1048576) { print n ": data grew"; bad = 1 }
            if (dropped != 0 || l[12] != 0) { print n ": dropped rows"; bad = 1 }
            if (l[8] != l[9]) { print n ": accepted != written"; bad = 1 }
        }
        printf "largest WAL file seen: %.1f MB\n", maxwal / 1048576
        exit bad
    }'
