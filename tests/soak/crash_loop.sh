#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# SIGKILL crash loop: a writer appending one row a millisecond to one
# history file is killed KILLS times at random moments; after each kill the
# file must pass integrity_check and open, and the rows lost must be those
# of less than one flush interval (200 ms by default) plus a margin.
# usage: crash_loop.sh SOAK_PROC WORKDIR [KILLS] [MARGIN_MS]
set -u
proc=$1
dir=$2
kills=${3:-100}
margin_ms=${4:-100}
flush_ms=200
mkdir -p "$dir"
db=$dir/crash.db
shm=$dir/crash.shm
rm -f "$db" "$db-wal" "$db-shm" "$shm"
corrupt=0 over=0 prev_gap=0 max_loss=0 max_lag_ms=0 total_loss=0
RANDOM=8
for ((i = 1; i <= kills; i++)); do
    "$proc" crash "$db" "$shm" &
    pid=$!
    # 0.3 .. 1.5 s: early kills land in the open, late ones mid-batch
    sleep "$(printf '0.%03d' $((RANDOM % 1000)))"
    sleep 0.3
    if ((RANDOM % 2)); then sleep 0.2; fi
    kill -9 "$pid"
    wait "$pid" 2> /dev/null
    out=$("$proc" check "$db") || { corrupt=$((corrupt + 1)); echo "kill $i: $out"; continue; }
    rows=$(echo "$out" | sed -n 's/.* rows=\([0-9-]*\).*/\1/p')
    newest=$(echo "$out" | sed -n 's/.*newest_ns=\([0-9-]*\).*/\1/p')
    read -r accepted stamp < <(od -An -t d8 -N 16 "$shm")
    gap=$((accepted - rows))      # cumulative: rows accepted but not stored
    loss=$((gap - prev_gap))
    prev_gap=$gap
    lag_ms=$(((stamp - newest) / 1000000))  # last accepted - last stored
    total_loss=$((total_loss + loss))
    ((loss > max_loss)) && max_loss=$loss
    ((lag_ms > max_lag_ms)) && max_lag_ms=$lag_ms
    if ((lag_ms > flush_ms + margin_ms)); then
        over=$((over + 1))
        echo "kill $i: lost $loss rows, the last $lag_ms ms"
    fi
done
echo "crash loop: $kills kills, $corrupt corrupt or unopenable files," \
     "$(echo "$out" | sed -n 's/.* rows=\([0-9-]*\).*/\1/p') rows kept," \
     "$total_loss lost in all (max $max_loss at one kill)," \
     "max lag $max_lag_ms ms (flush interval $flush_ms ms)," \
     "$over kills over flush interval + $margin_ms ms"
[ "$corrupt" -eq 0 ] && [ "$over" -eq 0 ]
