#!/usr/bin/env bash
# Before the tests: the Debian packages they need. mosquitto is the MQTT peer tests' broker, chromium
# renders the report, the evidence viewer and the archive's portfolio headless, postgresql is the
# archive tests' real server, prometheus brings promtool for the monitor's alert rules. As root (or
# with password-less sudo) and apt-get they are installed; otherwise this says, before any test runs,
# which groups will be skipped and why. Called by `make test`.
set -uo pipefail

has_mosquitto() { command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; }
has_chromium() { command -v chromium >/dev/null 2>&1; }
has_promtool() { command -v promtool >/dev/null 2>&1; }
has_postgresql() { command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }

declare -A GROUP=(
  [mosquitto]="the MQTT broker peer tests (tests/peers/test_probes_mqtt.py broker_auth)"
  [chromium]="the headless-browser tests of the report, the evidence viewer and the archive portfolio"
  [postgresql]="the evidence archive tests (tests/archive)"
  [prometheus]="promtool's check of docs/prometheus-rules.yml (tests/unit/test_monitor_docs.py)"
)

missing() {
  local out=()
  has_mosquitto || out+=(mosquitto)
  has_chromium || out+=(chromium)
  has_postgresql || out+=(postgresql)
  has_promtool || out+=(prometheus)
  echo "${out[@]:-}"
}

read -r -a need <<<"$(missing)"
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    SUDO=(none)
  fi
  if [ "${SUDO[0]:-}" != none ]; then
    echo "make test: installing ${need[*]} (apt-get)"
    "${SUDO[@]}" apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
      || echo "make test: apt-get could not install ${need[*]}"
    read -r -a need <<<"$(missing)"
  fi
fi
for pkg in "${need[@]}"; do
  echo "make test: $pkg is not installed, so ${GROUP[$pkg]} will be SKIPPED" \
    "(install it with: sudo apt-get install $pkg)"
done
exit 0
