#!/bin/sh
# Builds phonediag's three artefacts into dist/, each once (the smoke tests reuse them:
# tests/unit/test_packaging.py, tests/lab/test_lab_packages.py):
#
#   dist/phonediag-V.tar.gz, dist/phonediag-V-py3-none-any.whl   sdist and wheel (pipx)
#   dist/wheelhouse/            the wheel and every dependency as wheels (offline installs)
#   dist/phonediag_V-1_ARCH.deb the Debian package with the systemd unit
#   dist/phonediag              the single-file executable (PyInstaller)
#
# `make packages` calls it. The build venv .venv-build is made with the system's
# /usr/bin/python3: PyInstaller needs its shared libpython, and the .deb's venv uses the
# same interpreter. Only the build venv and the wheelhouse reach the package index; the
# rest is offline. Prints how long each step took.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${PHONEDIAG_BUILD_PYTHON:-/usr/bin/python3}
venv=.venv-build
dist=dist

now() { date +%s%N; }
t0=$(now)
step() {
    t=$(now)
    ms=$(((t - t0) / 1000000))
    printf 'packaging: %-40s %4d.%01d s\n' "$1" $((ms / 1000)) $((ms % 1000 / 100))
    t0=$t
}

sh packaging/install-deps.sh
step "Debian build packages"

if [ ! -f $venv/.installed ] || [ packaging/build-requirements.txt -nt $venv/.installed ]; then
    rm -rf $venv
    "$python" -m venv $venv
    $venv/bin/pip install --quiet --upgrade pip
    $venv/bin/pip install --quiet -r packaging/build-requirements.txt
    touch $venv/.installed
fi
step "build venv (.venv-build)"

# sdist first, then the wheel built *from the sdist*: a file the sdist forgets fails here.
mkdir -p build
rm -rf "$dist"/phonediag-* build/lib build/bdist.* phonediag.egg-info
$venv/bin/python -m build --no-isolation --outdir "$dist" . >build/wheel.log 2>&1 ||
    { cat build/wheel.log >&2; exit 1; }
wheel=$(ls "$dist"/phonediag-*-py3-none-any.whl)
step "sdist + wheel"

# Every dependency as a wheel, once: the .deb, the single file and the pipx test install
# from here, offline. (The phonediag wheel itself is copied in too.)
rm -f "$dist"/wheelhouse/phonediag-*
$venv/bin/pip wheel --quiet --find-links "$dist/wheelhouse" --wheel-dir "$dist/wheelhouse" "$wheel"
step "wheelhouse (dependencies)"

sh packaging/deb/build.sh "$wheel" "$dist/wheelhouse" "$dist" >/dev/null
step "Debian package"

# PyInstaller analyses the *installed* wheel: put this build's into the build venv.
$venv/bin/pip install --quiet --no-index --find-links "$dist/wheelhouse" "$wheel"
$venv/bin/pip install --quiet --no-index --no-deps --force-reinstall "$wheel"
$venv/bin/pyinstaller --noconfirm --log-level WARN --distpath "$dist" \
    --workpath build/pyinstaller packaging/pyinstaller/phonediag.spec >build/pyinstaller.log 2>&1 ||
    { cat build/pyinstaller.log >&2; exit 1; }
step "single file (PyInstaller)"

ls -l "$dist" | sed 's/^/packaging: /'
