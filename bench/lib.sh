# Shell helpers of the benchmark scripts that compare this tree with another commit (sourced
# with `. bench/lib.sh` from the repository's root).

# build_base REF: REF's library, built in target/bench/base (a git worktree with its own target
# directory); sets REV to REF's commit and BASE_LIB to the library's directory.
build_base() {
  REV=$(git rev-parse --verify "$1^{commit}")
  local src=$ROOT/target/bench/base/src
  if [ ! -d "$src" ]; then
    git worktree prune
    git worktree add --detach "$src" "$REV" >&2
  else
    git -C "$src" checkout -q --detach "$REV"
  fi
  printf '== building %s (%s) in target/bench/base\n' "$1" "$(git rev-parse --short "$REV")" >&2
  (cd "$src" && CARGO_TARGET_DIR=$ROOT/target/bench/base/target cargo build --release -q >&2)
  BASE_LIB=$ROOT/target/bench/base/target/release
}

# start_receiver: the local receiver on a free loopback port, with a fresh key, killed on exit;
# sets WORK (a scratch directory, removed on exit), KEY and URL.
start_receiver() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/rarch-bench.XXXXXX")
  RPID=""
  trap '[ -n "$RPID" ] && kill "$RPID" 2>/dev/null; rm -rf "$WORK"' EXIT
  trap 'exit 130' INT TERM
  KEY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  "$ROOT/examples/receiver/receiver" -key "$KEY" -addr-file "$WORK/addr" -quiet -keep=false \
    2>"$WORK/receiver.log" &
  RPID=$!
  local i=0
  while [ ! -s "$WORK/addr" ]; do
    i=$((i + 1)); [ $i -gt 200 ] && { echo "the receiver did not start" >&2; exit 1; }
    sleep 0.05
  done
  URL=http://$(cat "$WORK/addr")/log
}
