#!/usr/bin/env bash
# The demo: start the virtual community faulty.yaml, evaluate it with zhian (active tests allowed,
# the simulator playing the operator), verify the sealed evidence, pack it with its offline viewer,
# and print where the report is and a one-screen summary. Called by `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=${DEMO_OUT:-runs/demo}
# the demo's signing key lives beside its run, never inside it (real runs use ~/.local/share/zhian/keys)
export ZHIAN_KEY_DIR=${ZHIAN_KEY_DIR:-runs/demo-keys}
COMMUNITY=${DEMO_COMMUNITY:-faulty}

rm -rf "$OUT"
mkdir -p "$OUT"
echo "== starting the virtual community '$COMMUNITY' (log: $OUT/sim.log)"
# every device is evaluated (no 7.4 sample), so every fault faulty.yaml injects shows in the report
$BIN/zhian sim up "$COMMUNITY" --workdir "$OUT/site" --write-config "$OUT/site.yaml" --allow-tests all \
  --sampling monitoring \
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
$BIN/zhian run --config "$OUT/site.yaml" --out "$OUT/run" --allow-active > "$OUT/run.log"
tail -3 "$OUT/run.log"
echo
echo "== checking the evidence: zhian verify $OUT/run"
$BIN/zhian verify "$OUT/run"
echo
echo "== evidence pack for the evaluators: zhian export"
$BIN/zhian export "$OUT/run" --pack "$OUT/evidence-pack.zip"
echo
echo "== report: $OUT/run/reports/report.zh.html (open it in a browser; viewer.html is in the pack)"
echo
$BIN/zhian report "$OUT/run" --summary
