#!/bin/sh
# The Debian package, without the debhelper toolchain: a tree staged in build/deb/ and
# `dpkg-deb --build`. The agent lives in a self-contained venv under /opt/phonediag made
# with the system's Python (the package depends on that python3.X), holding the wheel and
# its dependencies from the wheelhouse (packaging/build.sh made both, offline here).
#
#   sh packaging/deb/build.sh WHEEL WHEELHOUSE OUTDIR
#
# Needs: /usr/bin/python3 (python3-venv), a pip that knows --python (the build venv's),
# dpkg-deb. Writes OUTDIR/phonediag_VERSION-1_ARCH.deb.
set -eu

wheel=$1 wheelhouse=$2 outdir=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=$(readlink -f "${PHONEDIAG_DEB_PYTHON:-/usr/bin/python3}")  # python3.X itself: the dependency
pip=${PHONEDIAG_BUILD_PIP:-$root/.venv-build/bin/pip}

pyver=$($python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
version=$(basename "$wheel" | cut -d- -f2)-1
arch=$(dpkg --print-architecture)
stage=$root/build/deb/phonediag_${version}_$arch
prefix=/opt/phonediag

rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$stage/usr/bin" "$stage/etc/phonediag" \
    "$stage/lib/systemd/system" "$stage/usr/share/doc/phonediag"

# The venv, at its final path inside the stage; no pip in it (nothing installs there later).
"$python" -m venv --without-pip "$stage$prefix"
"$pip" --quiet --python "$stage$prefix/bin/python" install --no-index \
    --find-links "$wheelhouse" --no-compile --no-warn-script-location "$wheel"
# Every mention of the stage becomes the real path (scripts' #!, pyvenv.cfg, activate*).
grep -rlI --null "$stage" "$stage$prefix" | xargs -0 -r sed -i "s#$stage##g"
rm -f "$stage$prefix"/bin/activate* "$stage$prefix"/bin/Activate.ps1
find "$stage$prefix" -name direct_url.json -delete
# Byte-code compiled now, for the paths it will have: nothing is ever written under /opt.
"$python" -m compileall -q -j 0 -s "$stage" -p / "$stage$prefix/lib" >/dev/null
ln -s "$prefix/bin/phonediag" "$stage/usr/bin/phonediag"

install -m 0644 "$here/phonediag.toml" "$stage/etc/phonediag/phonediag.toml"
install -m 0644 "$here/phonediag.service" "$stage/lib/systemd/system/phonediag.service"
install -m 0644 "$root/README.md" "$root/docs/install.md" "$stage/usr/share/doc/phonediag/"
install -m 0644 "$here/conffiles" "$stage/DEBIAN/conffiles"
install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$stage/DEBIAN/"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    -e "s/@PYTHON@/python$pyver/" "$here/control.in" > "$stage/DEBIAN/control"

mkdir -p "$outdir"
rm -f "$outdir"/phonediag_*.deb
# gzip: xz would take ~4x longer on 2 CPUs for a package of this size
dpkg-deb --root-owner-group -Zgzip --build "$stage" "$outdir/" >/dev/null
echo "$outdir/phonediag_${version}_$arch.deb"
