#!/usr/bin/env bash
# Builds and runs Tests/SamplePackage, which depends on Chorus through a git URL and a version tag,
# as another team's package would. SwiftPM refuses such a dependency if any of its targets uses
# unsafeFlags ("contains unsafe build flags"), so this is the check that Chorus stays usable by
# version.
#
#   scripts/sample-package.sh
#
# The working tree's Package.swift and Sources/ are committed to a throwaway clone of this
# repository (so uncommitted changes are checked too), tagged 0.0.0-ci; a copy of the sample package
# points its dependency URL at that clone. The build is a debug build of the sample's products
# only (ChorusServer and what it needs: swift-crypto, swift-log), not SwiftNIO and the rest; its
# scratch path .build/sample-package is kept, so later runs rebuild only Chorus's own targets.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/chorus-sample.XXXXXX")
trap 'rm -rf "$work"' EXIT

git clone -q --no-hardlinks "$root" "$work/chorus"
rm -rf "$work/chorus/Sources"
cp -R "$root/Sources" "$root/Package.swift" "$work/chorus/"
git -C "$work/chorus" add -A Package.swift Sources
git -C "$work/chorus" -c user.name=ci -c user.email=ci@localhost commit -q --allow-empty -m "working tree"
git -C "$work/chorus" tag 0.0.0-ci

cp -R "$root/Tests/SamplePackage" "$work/sample"
sed -i "s|https://github.com/chorus-server/chorus.git|$work/chorus|" "$work/sample/Package.swift"
grep -q "$work/chorus" "$work/sample/Package.swift" || { echo "sample-package: dependency URL not rewritten" >&2; exit 1; }

cd "$work/sample"
swift build --scratch-path "$root/.build/sample-package" --product Sample
"$root/.build/sample-package/debug/Sample"
