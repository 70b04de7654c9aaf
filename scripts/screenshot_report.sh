#!/usr/bin/env bash
# Render the specification report in headless Chromium and save a screenshot, to look at
# the page as a reviewer would. Needs Debian's chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
page="${1:-out/spec/spec-report.html}"
shot="${2:-out/spec/spec-report.png}"
[ -f "$page" ] || { echo "no $page: run 'make report' first" >&2; exit 2; }
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$(mktemp -d)" --window-size=1280,1800 \
  --screenshot="$PWD/$shot" "file://$PWD/$page" 2>/dev/null
echo "screenshot: $shot"
