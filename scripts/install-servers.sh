#!/usr/bin/env bash
# Installs the real servers the tests use (Debian packages) when they are missing.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto mosquitto-clients)
command -v victoria-metrics >/dev/null 2>&1 || need+=(victoria-metrics)
command -v influxd >/dev/null 2>&1 || need+=(influxdb)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  echo "[install-servers] all present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "[install-servers] installing: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts services via policy-rc.d-less postinst on some images: make sure none linger.
for svc in mosquitto influxdb victoria-metrics; do
  $SUDO pkill -x "$svc" 2>/dev/null || true
done
$SUDO pkill -x influxd 2>/dev/null || true
echo "[install-servers] done"
