#!/bin/sh
# What a vfwire installation holds, as paths relative to a built source tree; install.sh and
# the package (scripts/package-deb.sh) copy the same set.
#   program-files.sh SRC files   the program's own files: compiled JS, the hook's bundles, the
#                                hook shim, templates, these installer scripts, package.json
#   program-files.sh SRC deps    the production dependencies' package directories (a nested
#                                node_modules travels with its parent)
set -eu
src=${1:?program-files.sh: SRC}
cd "$src"
case ${2:-} in
  files)
    [ -f dist/src/cli.js ] && [ -f dist/bundle/hook-main.js ] || { echo "program-files.sh: build first (npm ci && npm run build)" >&2; exit 1; }
    find dist/src dist/bundle hooks templates installer package.json -type f ! -name '*.map' | LC_ALL=C sort ;;
  deps)
    npm ls --omit=dev --parseable --all 2>/dev/null | tail -n +2 | sed "s|^$src/||" |
      grep -v 'node_modules/.*/node_modules/' | LC_ALL=C sort -u ;;
  *) echo "program-files.sh: say files or deps" >&2; exit 2 ;;
esac
