#!/bin/sh
# Runs the demo program against a local receiver on a free port with a generated key.
set -eu
dir=$1
key=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
rm -f "$dir/addr"
examples/receiver/receiver -key "$key" -addr-file "$dir/addr" -quiet &
rpid=$!
trap 'kill $rpid 2>/dev/null || true' EXIT INT TERM
i=0
while [ ! -s "$dir/addr" ]; do
  i=$((i + 1)); [ $i -gt 100 ] && { echo "receiver did not start" >&2; exit 1; }
  sleep 0.05
done
addr=$(cat "$dir/addr")
echo "== receiver on http://$addr/log (key generated for this run)"
echo "== running examples/demo.c"
(cd "$dir" && RARCH_LOGGING_URL="http://$addr/log" RARCH_LOGGING_API_KEY="$key" ./demo)
echo "== the receiver accepted (JWT verified):"
if command -v curl >/dev/null; then
  curl -s "http://$addr/entries"
  echo "== receiver counters: $(curl -s "http://$addr/stats")"
else
  python3 -c "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1]+'/entries').read().decode()); print('== receiver counters:', urllib.request.urlopen(sys.argv[1]+'/stats').read().decode())" "http://$addr"
fi
