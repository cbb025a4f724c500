#!/usr/bin/env bash
# Re-fetch the pinned front-end libraries from the npm registry into app/static/vendor/ and check their integrity.
# The dashboard and the API docs must work offline, so what they load ships inside the package; this is how it got
# there. Each integrity is `npm view NAME@VERSION dist.integrity`, pinned so a changed tarball is refused, not shipped.
set -euo pipefail

STATIC="$(cd "$(dirname "$0")/.." && pwd)/app/static/vendor"

# vendor NAME VERSION INTEGRITY DEST FILE...: copy FILEs (paths inside the package) into STATIC/DEST.
vendor() {
    local name="$1" version="$2" integrity="$3" dest="$STATIC/$4"
    shift 4
    local work
    work="$(mktemp -d)"
    (
        cd "$work"
        registry="$(npm view "$name@$version" dist.integrity)"
        if [ "$registry" != "$integrity" ]; then
            echo "vendor: the registry's integrity for $name@$version is $registry, not the pinned $integrity" >&2
            exit 1
        fi
        tarball="$(npm pack --silent "$name@$version")"
        actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | openssl base64 -A)"
        if [ "$actual" != "$integrity" ]; then
            echo "vendor: $tarball has integrity $actual, not the pinned $integrity" >&2
            exit 1
        fi
        tar -xzf "$tarball"
        rm -rf "$dest"
        mkdir -p "$dest"
        for file in "$@"; do
            cp "package/$file" "$dest/$(basename "$file")"
        done
        echo "$version" > "$dest/VERSION"
    )
    rm -rf "$work"
    echo "vendor: $name@$version ($integrity) -> $dest"
}

vendor uplot 1.6.32 \
    "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==" \
    uplot dist/uPlot.iife.min.js dist/uPlot.min.css LICENSE
vendor swagger-ui-dist 5.35.0 \
    "sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==" \
    swagger-ui swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE NOTICE
