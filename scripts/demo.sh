#!/usr/bin/env bash
# The demo: start the virtual community faulty.yaml, evaluate it with zhian (active tests allowed,
# the simulator playing the operator), and show where the results are. Called by `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=${DEMO_OUT:-runs/demo}
COMMUNITY=${DEMO_COMMUNITY:-faulty}

rm -rf "$OUT"
mkdir -p "$OUT"
echo "== starting the virtual community '$COMMUNITY' (log: $OUT/sim.log)"
$BIN/zhian sim up "$COMMUNITY" --workdir "$OUT/site" --write-config "$OUT/site.yaml" --allow-tests all \
  > "$OUT/sim.log" 2>&1 &
SIM=$!
trap 'kill $SIM 2>/dev/null || true; wait $SIM 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do
  [ -f "$OUT/site.yaml.env" ] && break
  kill -0 "$SIM" 2>/dev/null || { echo "the simulator stopped:"; tail -20 "$OUT/sim.log"; exit 1; }
  sleep 0.5
done
[ -f "$OUT/site.yaml.env" ] || { echo "the simulator did not come up in 2 minutes"; exit 1; }
set -a
# shellcheck disable=SC1091
. "$OUT/site.yaml.env"
set +a

echo "== evaluating it: zhian run --config $OUT/site.yaml --allow-active"
$BIN/zhian run --config "$OUT/site.yaml" --out "$OUT/run" --allow-active
echo
echo "== results in $OUT/run: verdicts.yaml, score.json, findings.jsonl, ledger.sqlite, manifest.json"
echo "== problems found:"
$BIN/python - "$OUT/run/findings.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
for r in rows:
    if r["status"] in ("fail", "error"):
        print(f"  {r['status']:<5} {r['device']:<18} {r['probe']:<20} {r['reason']:<28} {', '.join(r['indicators'])}")
PY
