#!/usr/bin/env bash
# Vendor MathJax 3.2.2 (Apache-2.0) from the npm registry into the book's _static folder, so math renders
# with no outside request. Not committed: made at set-up by `make mathjax`.
set -euo pipefail
dest=${1:-book/_static/mathjax}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent mathjax@3.2.2 >/dev/null && tar xzf mathjax-3.2.2.tgz)
mkdir -p "$dest/output/chtml/fonts"
cp "$tmp/package/es5/tex-mml-chtml.js" "$dest/"
cp -r "$tmp/package/es5/output/chtml/fonts/woff-v2" "$dest/output/chtml/fonts/"
cp "$tmp/package/LICENSE" "$dest/LICENSE"
echo "MathJax 3.2.2 -> $dest"
