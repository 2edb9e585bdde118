#!/usr/bin/env bash
# Refresh the front-end libraries in static/vendor/ from the npm registry (`make vendor`).
#
# Omni serves every script itself (WhiteNoise, CSP script-src 'self'): nothing is loaded from a
# CDN at run time. This script is the only place that talks to the registry; its output is
# committed, so a clean clone runs without Node. Versions are pinned here: bump one, run the
# script, look at the diff of static/vendor/VERSIONS.txt and commit.
set -euo pipefail

HTMX_VERSION="${HTMX_VERSION:-2.0.11}"
HTMX_SSE_VERSION="${HTMX_SSE_VERSION:-2.2.4}"
CHARTJS_VERSION="${CHARTJS_VERSION:-4.6.1}"
SWAGGER_UI_VERSION="${SWAGGER_UI_VERSION:-5.35.0}"
# Camera barcode scanning for tablets whose browser lacks the native BarcodeDetector API
# (iPadOS Safari, desktop Chromium on Linux/Windows). html5-qrcode uses BarcodeDetector when it
# exists and its bundled ZXing decoder otherwise; it reads EAN-13/UPC as well as QR codes.
HTML5_QRCODE_VERSION="${HTML5_QRCODE_VERSION:-2.3.8}"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENDOR="$ROOT/static/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

command -v npm >/dev/null || { echo "npm is needed to refresh static/vendor (apt-get install npm)" >&2; exit 1; }

# unpack NAME VERSION -> prints the directory holding the package's files
unpack() {
  local name="$1" version="$2" dir tarball
  dir="$WORK/$(echo "$name" | tr '/@' '__')"
  mkdir -p "$dir"
  tarball="$(cd "$dir" && npm pack --silent --loglevel=error "$name@$version" | tail -n 1)"
  tar -xzf "$dir/$tarball" -C "$dir"
  echo "$dir/package"
}

htmx="$(unpack htmx.org "$HTMX_VERSION")"
sse="$(unpack htmx-ext-sse "$HTMX_SSE_VERSION")"
chartjs="$(unpack chart.js "$CHARTJS_VERSION")"
swagger="$(unpack swagger-ui-dist "$SWAGGER_UI_VERSION")"
qrcode="$(unpack html5-qrcode "$HTML5_QRCODE_VERSION")"

rm -rf "$VENDOR/htmx" "$VENDOR/chartjs" "$VENDOR/swagger-ui" "$VENDOR/html5-qrcode"
mkdir -p "$VENDOR/htmx/ext" "$VENDOR/chartjs" "$VENDOR/swagger-ui" "$VENDOR/html5-qrcode"

cp "$htmx/dist/htmx.min.js" "$VENDOR/htmx/htmx.min.js"
cp "$htmx/LICENSE" "$VENDOR/htmx/LICENSE"
cp "$sse/dist/sse.js" "$VENDOR/htmx/ext/sse.js"
cp "$sse/LICENSE" "$VENDOR/htmx/ext/LICENSE.sse"

cp "$chartjs/dist/chart.umd.min.js" "$VENDOR/chartjs/chart.umd.min.js"
cp "$chartjs/LICENSE.md" "$VENDOR/chartjs/LICENSE.md"

# Only what drf-spectacular's Swagger page loads (SWAGGER_UI_DIST): the CSS, the bundle, the
# standalone preset and the favicon. Source maps are left out on purpose (they are 5 MB).
for file in swagger-ui.css swagger-ui-bundle.js swagger-ui-standalone-preset.js favicon-32x32.png LICENSE; do
  cp "$swagger/$file" "$VENDOR/swagger-ui/$file"
done
# The bundles end with a sourceMappingURL comment; without the maps it only causes 404s.
sed -i '/^\/\/# sourceMappingURL=/d' "$VENDOR/swagger-ui/swagger-ui-bundle.js" \
  "$VENDOR/swagger-ui/swagger-ui-standalone-preset.js"
sed -i 's#/\*\# sourceMappingURL=[^*]*\*/##' "$VENDOR/swagger-ui/swagger-ui.css"
sed -i '/^\/\/# sourceMappingURL=/d' "$VENDOR/chartjs/chart.umd.min.js"

cp "$qrcode/html5-qrcode.min.js" "$VENDOR/html5-qrcode/html5-qrcode.min.js"
cp "$qrcode/LICENSE" "$VENDOR/html5-qrcode/LICENSE"

{
  echo "# Front-end libraries vendored by scripts/vendor_frontend.sh from the npm registry."
  echo "# package@version -> files (sha256)"
  for entry in \
    "htmx.org@$HTMX_VERSION htmx/htmx.min.js" \
    "htmx-ext-sse@$HTMX_SSE_VERSION htmx/ext/sse.js" \
    "chart.js@$CHARTJS_VERSION chartjs/chart.umd.min.js" \
    "swagger-ui-dist@$SWAGGER_UI_VERSION swagger-ui/swagger-ui-bundle.js" \
    "swagger-ui-dist@$SWAGGER_UI_VERSION swagger-ui/swagger-ui-standalone-preset.js" \
    "swagger-ui-dist@$SWAGGER_UI_VERSION swagger-ui/swagger-ui.css" \
    "swagger-ui-dist@$SWAGGER_UI_VERSION swagger-ui/favicon-32x32.png" \
    "html5-qrcode@$HTML5_QRCODE_VERSION html5-qrcode/html5-qrcode.min.js"; do
    set -- $entry
    echo "$1 $2 $(sha256sum "$VENDOR/$2" | cut -d' ' -f1)"
  done
} >"$VENDOR/VERSIONS.txt"

echo "Vendored into $VENDOR:"
cat "$VENDOR/VERSIONS.txt"
