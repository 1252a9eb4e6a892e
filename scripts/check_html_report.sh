#!/usr/bin/env bash
# Renders an HTML report (`simsiam-bench report html --output FILE`) in headless Chromium, writes a PNG
# screenshot and checks that it is not blank (enough non-background pixels and colours: tables and chart lines).
#
# Usage: scripts/check_html_report.sh [REPORT.html] [SCREENSHOT.png]
#   REPORT.html     default results/report.html
#   SCREENSHOT.png  default: the report's path with .png
# Environment: WINDOW_SIZE (default 1280,2600), CHROMIUM (default: chromium from PATH; installed from Debian's
# `chromium` package with apt-get when missing).
# Network is blocked for the page (every host name resolves to nothing), so a page that needs one shows it.
set -euo pipefail

report="${1:-results/report.html}"
screenshot="${2:-${report%.html}.png}"
window="${WINDOW_SIZE:-1280,2600}"

if [[ ! -f "$report" ]]; then
  echo "check_html_report: no report at $report. Hint: simsiam-bench report html --output $report" >&2
  exit 2
fi

browser="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
if [[ -z "$browser" ]]; then
  echo "check_html_report: installing Debian's chromium package (apt-get)…" >&2
  if [[ "$(id -u)" -eq 0 ]]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  browser="$(command -v chromium)"
fi

absolute="$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"
mkdir -p "$(dirname "$screenshot")"
rm -f "$screenshot"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
  --host-resolver-rules="MAP * ~NOTFOUND" --window-size="$window" --screenshot="$screenshot" \
  "file://$absolute" >/dev/null 2>"$profile/chromium.log" || {
  cat "$profile/chromium.log" >&2
  echo "check_html_report: chromium failed on $report" >&2
  exit 1
}
if [[ ! -s "$screenshot" ]]; then
  cat "$profile/chromium.log" >&2
  echo "check_html_report: chromium wrote no screenshot for $report" >&2
  exit 1
fi

python3 - "$screenshot" <<'PY'
import sys
import numpy as np
from PIL import Image

path = sys.argv[1]
pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.int32).reshape(-1, 3)
height, width = Image.open(path).size[::-1]
values, counts = np.unique(pixels[:: max(1, len(pixels) // 20000)], axis=0, return_counts=True)
background = values[counts.argmax()]
share = float((np.abs(pixels - background).sum(axis=1) > 60).mean())
colours = len(np.unique(pixels[::13] >> 4, axis=0))
print(f"check_html_report: {path}: {width}×{height}, {share:.1%} non-background pixels, {colours} colours")
if share < 0.01 or colours < 8:
    print("check_html_report: the screenshot looks blank (under 1 % ink or under 8 colours)", file=sys.stderr)
    sys.exit(1)
PY
