#!/usr/bin/env bash
# Installs nasc from a build folder into a temporary prefix, builds examples/embed against
# that prefix alone (find_package(nasc) through CMAKE_PREFIX_PATH), imports the installed
# Python module (when built), checks the installed man page and bash completion, profiles
# the example's space with the installed nasc, runs the example and checks that its loss
# went down.
# Usage: scripts/test_embed.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nasc-embed.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

cmake --install "$BUILD_DIR" --prefix "$WORK/prefix" >/dev/null
# The installed copy is relocatable: move it, and nothing may point back at the source tree.
mv "$WORK/prefix" "$WORK/moved"
PREFIX="$WORK/moved"
cmake -S examples/embed -B "$WORK/build" -G Ninja -DCMAKE_PREFIX_PATH="$PREFIX" \
      -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$WORK/build" >/dev/null

# Imports resolve in the moved prefix's stdlib: a file only that copy has (the source
# tree's stdlib, the uninstalled fallback, does not) is found by the installed CLI.
cp examples/embed/space.nas "$WORK/space.nas"
printf 'module only_installed(x: tensor) { return relu(x); }\n' > "$PREFIX/share/nasc/stdlib/embed_check.nas"
printf 'import "embed_check.nas";\nnetwork n(x: tensor[1, 4, 4]) { return only_installed(x); }\n' \
  > "$WORK/with_import.nas"
(cd / && "$PREFIX/bin/nasc" check "$WORK/with_import.nas" >/dev/null)

# The man page and the bash completion are installed where man and bash-completion look.
grep -q '^\.TH NASC 1' "$PREFIX/share/man/man1/nasc.1" ||
  { echo "test_embed: nasc.1 not installed" >&2; exit 1; }
grep -q "complete -F _nasc nasc" "$PREFIX/share/bash-completion/completions/nasc" ||
  { echo "test_embed: the bash completion not installed" >&2; exit 1; }

# The Python module, when built: imported from the moved prefix in another folder, it
# loads that prefix's libnasc (its RPATH) and finds that prefix's stdlib.
if grep -q '^NASC_PYTHON:BOOL=ON' "$BUILD_DIR/CMakeCache.txt"; then
  PYTHON=$(sed -n 's/^Python_EXECUTABLE:FILEPATH=//p' "$BUILD_DIR/CMakeCache.txt")
  MODULE=$(find "$PREFIX" -path '*/nasc/_nasc*.so' | head -n 1)
  [ -n "$MODULE" ] || { echo "test_embed: the Python module was not installed" >&2; exit 1; }
  (cd / && PYTHONPATH="$(dirname "$(dirname "$MODULE")")" "$PYTHON" -c '
import sys, nasc
prefix, space = sys.argv[1], sys.argv[2]
assert nasc.__file__.startswith(prefix), nasc.__file__
libs = [l.split()[-1] for l in open("/proc/self/maps") if "libnasc.so" in l]
assert libs and all(l.startswith(prefix) for l in libs), libs
print("test_embed: python module", nasc.version(), "from", prefix, "->", nasc.Space.compile_file(space).name)
' "$PREFIX" "$WORK/with_import.nas")
fi

"$PREFIX/bin/nasc" profile "$WORK/space.nas" -o "$WORK/lut.json" --repetitions 5 >/dev/null
"$WORK/build/embed" "$WORK/space.nas" "$WORK/lut.json" | tee "$WORK/out.txt"
grep -q "went down" "$WORK/out.txt"
grep -q "with the jit backend" "$WORK/out.txt"
grep -q "op=conv5" "$WORK/out.txt"
echo "test_embed: ok (installed, moved, built against, ran)"
