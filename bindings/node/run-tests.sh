#!/bin/sh
# Tests of the Node.js binding, run from the repo root by `make test-node` (after `make build`):
# installs the dependencies if needed, runs `npm test`, then runs example.js against a fresh
# receiver and checks that every entry arrived.
set -eu
cd "$(dirname "$0")"

if [ ! -d node_modules ] || [ ! -d node_modules/@opentelemetry/context-async-hooks ]; then
  npm ci --no-audit --no-fund
fi

npm test

echo "== example.js against a fresh receiver"
receiver=${RARCH_RECEIVER:-../../examples/receiver/receiver}
[ -x "$receiver" ] || { echo "receiver not found at $receiver: run 'make receiver'" >&2; exit 1; }
tmp=$(mktemp -d)
key=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
"$receiver" -key "$key" -addr-file "$tmp/addr" -quiet &
rpid=$!
trap 'kill $rpid 2>/dev/null || true; rm -rf "$tmp"' EXIT INT TERM
i=0
while [ ! -s "$tmp/addr" ]; do
  i=$((i + 1))
  [ $i -gt 200 ] && { echo "receiver did not start" >&2; exit 1; }
  sleep 0.05
done
base="http://$(cat "$tmp/addr")"

# Its buffer directory (os.tmpdir()) is this run's own: no other run's leftovers are replayed.
TMPDIR="$tmp" RARCH_LOGGING_URL="$base/log" RARCH_LOGGING_API_KEY="$key" node example.js

# The example has exited: every entry must already be at the receiver (JWT verified).
node -e '
  const base = process.argv[1];
  (async () => {
    const text = await (await fetch(base + "/entries")).text();
    const got = text.split("\n").filter(Boolean).map((l) => JSON.parse(l))
      .filter((e) => e.service === "node-example");
    const levels = got.map((e) => e.level).sort().join(",");
    const want = "DEBUG,ERROR,FATAL,INFO,WARN";
    const stats = await (await fetch(base + "/stats")).json();
    if (levels !== want || stats.unauthorized !== 0 || stats.bad_entries !== 0) {
      console.error("example.js: expected one entry per level (" + want + "), got [" + levels + "]; receiver stats " + JSON.stringify(stats));
      process.exit(1);
    }
    console.log("example.js: all " + got.length + " entries arrived (" + levels + ")");
  })().catch((e) => { console.error(e); process.exit(1); });
' "$base"
echo "== node binding: all tests passed"
