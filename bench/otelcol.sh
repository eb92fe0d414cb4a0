# Sourced by bench/run.sh and bench/gosdk.sh (POSIX sh): starts the Collector of
# bench/otelcol.yaml, target/otelcol/otelcol-rarch, on a free loopback port.
#
#   start_collector RECEIVER_ADDR   (host:port of a receiver started with -otlp-count-only)
#
# Uses ROOT (the repository), WORK (a scratch directory: otelcol.yaml and otelcol.log go there),
# PY (python3) and PIDS (the caller's list of processes to stop; the Collector is added). Sets
# COL_PORT and COL_PID. Returns once the Collector answers an empty export, or exits 1 after
# 30 s or if it dies (its log's tail on stderr).
start_collector() {
  COL_PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  sed "s/@RECEIVER_PORT@/$COL_PORT/; s#@LOGS_ENDPOINT@#http://$1/v1/logs#" "$ROOT/bench/otelcol.yaml" >"$WORK/otelcol.yaml"
  "$ROOT/target/otelcol/otelcol-rarch" --config "$WORK/otelcol.yaml" >"$WORK/otelcol.log" 2>&1 &
  COL_PID=$!
  PIDS="$PIDS $COL_PID"
  _i=0
  until curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' -d '{"resourceLogs":[]}' \
      "http://127.0.0.1:$COL_PORT/v1/logs"; do
    _i=$((_i + 1))
    if [ $_i -gt 300 ] || ! kill -0 "$COL_PID" 2>/dev/null; then
      tail -n 30 "$WORK/otelcol.log" >&2; echo "the Collector did not start" >&2; exit 1
    fi
    sleep 0.1
  done
}
