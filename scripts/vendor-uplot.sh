#!/usr/bin/env bash
# Re-fetch the pinned uPlot from the npm registry into app/static/vendor/uplot/ and check its integrity.
# The dashboard must work offline, so its chart library ships inside the package; this is how it got there.
set -euo pipefail

VERSION="1.6.32"
# `npm view uplot@1.6.32 dist.integrity`, pinned here so a changed tarball is refused rather than shipped.
INTEGRITY="sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=="
DEST="$(cd "$(dirname "$0")/.." && pwd)/app/static/vendor/uplot"
FILES=(dist/uPlot.iife.min.js dist/uPlot.min.css LICENSE)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

registry="$(npm view "uplot@$VERSION" dist.integrity)"
if [ "$registry" != "$INTEGRITY" ]; then
    echo "vendor: the registry's integrity for uplot@$VERSION is $registry, not the pinned $INTEGRITY" >&2
    exit 1
fi

tarball="$(npm pack --silent "uplot@$VERSION")"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | openssl base64 -A)"
if [ "$actual" != "$INTEGRITY" ]; then
    echo "vendor: $tarball has integrity $actual, not the pinned $INTEGRITY" >&2
    exit 1
fi

tar -xzf "$tarball"
mkdir -p "$DEST"
for file in "${FILES[@]}"; do
    cp "package/$file" "$DEST/$(basename "$file")"
done
echo "$VERSION" > "$DEST/VERSION"
echo "vendor: uplot@$VERSION ($INTEGRITY) -> $DEST"
