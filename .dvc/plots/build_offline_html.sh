#!/bin/sh
# Rebuilds offline.html, the page `dvc plots show` fills (.dvc/config: plots.html_template): DVC's own page with
# the scripts dvc_render would load from a CDN (vega, vega-lite, vega-embed, at the versions dvc_render names)
# inlined, so that the charts draw without internet. Run it after an upgrade of dvc-render changes those versions
# (tests/test_plots.py says so); it needs npm and its registry:  sh .dvc/plots/build_offline_html.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-$here/../../.venv/bin/python}
packages=$("$python" -c 'import re; from dvc_render.vega import VegaRenderer as R
print(" ".join(re.findall(r"cdn\.jsdelivr\.net/npm/([^\"]+)\"", R.SCRIPTS)))')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
    printf '<!DOCTYPE html>\n<html>\n<head>\n    {refresh_tag}\n    <title>DVC Plot</title>\n'
    for pkg in $packages; do
        name=${pkg%@*}
        mkdir "$tmp/$name"
        (cd "$tmp/$name" && npm pack --silent "$pkg" >/dev/null && tar -xzf ./*.tgz)
        cp "$tmp/$name/package/LICENSE" "$here/LICENSE.$name"
        printf '    <!-- %s: package/build/%s.min.js, BSD-3-Clause, see LICENSE.%s beside this page -->\n' \
            "$pkg" "$name" "$name"
        printf '    <script>'
        grep -v '^//# sourceMappingURL=' "$tmp/$name/package/build/$name.min.js"  # no map to fetch
        printf '</script>\n'
    done
    printf '    <style>\n        table {\n            border-spacing: 15px;\n        }\n    </style>\n'
    printf '</head>\n<body>\n    {plot_divs}\n</body>\n</html>\n'
} > "$tmp/offline.html"
mv "$tmp/offline.html" "$here/offline.html"
echo "$here/offline.html: $packages ($(wc -c < "$here/offline.html") bytes)"
