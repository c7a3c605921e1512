#!/bin/sh
# What a vfwire installation holds, as paths relative to a built source tree; install.sh and
# the package (scripts/package-deb.sh) copy the same set.
#   program-files.sh SRC files   the program's own files: compiled JS, the hook's bundles, the
#                                hook shim, templates, these installer scripts, package.json
#   program-files.sh SRC deps    the production dependencies' package directories (a nested
#                                node_modules travels with their parent)
set -eu
src=${1:?program-files.sh: SRC}
cd "$src"
case ${2:-} in
  files)
    if [ ! -f dist/src/cli.js ] || [ ! -f dist/bundle/hook-main.js ]; then
      echo "program-files.sh: build first (npm ci && npm run build)" >&2; exit 1
    fi
    find dist/src dist/bundle hooks templates installer package.json -type f ! -name '*.map' | LC_ALL=C sort ;;
  deps)
    # npm's exit status is lost in a pipe: an empty or failed list would install no dependencies.
    if ! list=$(npm ls --omit=dev --parseable --all 2>&1); then
      echo "program-files.sh: npm ls failed (run npm ci): $(printf '%s' "$list" | grep -m1 -i err || true)" >&2; exit 1
    fi
    deps=$(printf '%s\n' "$list" | tail -n +2 | sed "s|^$src/||" | grep -v 'node_modules/.*/node_modules/' | LC_ALL=C sort -u)
    [ -n "$deps" ] || { echo "program-files.sh: npm ls lists no production dependencies (run npm ci)" >&2; exit 1; }
    printf '%s\n' "$deps" ;;
  *) echo "program-files.sh: say files or deps" >&2; exit 2 ;;
esac
