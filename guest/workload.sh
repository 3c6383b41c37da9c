#!/bin/sh
# A small deterministic workload: many short processes, pipes, tmpfs files,
# sorting and a gzip round trip. Usage: workload.sh DIR. Prints the md5 of
# the sorted data and exits 0 if the round trip matched. The host runs it
# too (with coreutils) and its result is guest/workload-expected-md5.txt.
set -e
d=$1
mkdir -p "$d"
i=1
while [ $i -le 8 ]; do
    seq $i 7 $((i * 2000)) >"$d/n$i"
    i=$((i + 1))
done
i=1
while [ $i -le 8 ]; do
    cat "$d/n$i"
    i=$((i + 1))
done >"$d/all"
sort -n "$d/all" >"$d/sorted"
gzip -9 -c "$d/sorted" >"$d/sorted.gz"
sum=$(md5sum <"$d/sorted" | cut -d' ' -f1)
again=$(gzip -d -c "$d/sorted.gz" | md5sum | cut -d' ' -f1)
[ "$sum" = "$again" ]
[ "$(wc -l <"$d/sorted")" -eq "$(wc -l <"$d/all")" ]
echo "$sum"
