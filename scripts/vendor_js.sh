#!/usr/bin/env bash
# Fetch the JavaScript the built book serves itself (so math and widgets render offline):
# require.js, the ipywidgets embed manager and MathJax 3, from the npm registry, pinned.
# Output: assets/site/vendor/ (git-ignored; html_static_path copies it into the site).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=assets/site/vendor
STAMP="$DEST/.versions"
VERSIONS="@jupyter-widgets/html-manager@1.0.15 requirejs@2.3.8 mathjax@3.2.2"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$VERSIONS" ]]; then
  echo "vendor JS up to date ($VERSIONS)"; exit 0
fi
command -v npm >/dev/null || { echo "error: npm is needed to fetch the site's JavaScript; install Node.js (https://nodejs.org) and re-run" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent $VERSIONS >/dev/null)
for f in "$tmp"/*.tgz; do mkdir -p "${f%.tgz}"; tar xzf "$f" -C "${f%.tgz}"; done
rm -rf "$DEST"; mkdir -p "$DEST/widgets" "$DEST/mathjax"
hm="$tmp/jupyter-widgets-html-manager-1.0.15/package/dist"
cp "$tmp/requirejs-2.3.8/package/require.js" "$DEST/widgets/"
cp "$hm/embed-amd.js" "$DEST/widgets/"
cp "$hm"/*.woff2 "$hm"/*.woff "$hm"/*.ttf "$DEST/widgets/"
mj="$tmp/mathjax-3.2.2/package/es5"
cp "$mj/tex-mml-chtml.js" "$DEST/mathjax/"
cp -r "$mj/output" "$mj/input" "$mj/ui" "$mj/a11y" "$mj/adaptors" "$DEST/mathjax/"
echo "$VERSIONS" > "$STAMP"
echo "vendored $VERSIONS into $DEST ($(du -sh "$DEST" | cut -f1))"
