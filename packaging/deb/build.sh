#!/bin/sh
# Builds the .deb from binaries already built: packaging/deb/build.sh BIN VERSION
# (make deb). BIN holds guard and, when built, guard-etcd; the package is
# written to BIN/guard_DEBVERSION_ARCH.deb and its path printed.
set -eu
bin=$1 version=$2
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
umask 022

# Debian's version from git describe: v1.2.3 -> 1.2.3, v1.2.3-4-gabc ->
# 1.2.3+4.gabc (after 1.2.3), v1.2.3-rc1 -> 1.2.3~rc1 (before 1.2.3), an
# untagged abc1234 -> 0.0.0~gitabc1234.
v=${version#v}
if ! printf '%s\n' "$v" | grep -Eq '^[0-9]+\.[0-9]+'; then
	v=0.0.0~git$v
fi
debversion=$(printf '%s\n' "$v" | sed -e 's/-\([0-9][0-9]*\)-g\([0-9a-f]*\)/+\1.g\2/' -e 's/-/~/g')
case $(go env GOARCH) in
386) arch=i386 ;;
arm) arch=armhf ;;
*) arch=$(go env GOARCH) ;;
esac

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
pkg=$root/guard
doc=$pkg/usr/share/doc/guard
install -d "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/usr/share/man/man1" \
	"$pkg/usr/share/bash-completion/completions" "$pkg/usr/share/zsh/vendor-completions" \
	"$pkg/usr/share/fish/vendor_completions.d" "$doc/examples/systemd" "$doc/examples/cron"

progs=guard
[ -x "$bin/guard-etcd" ] && progs="guard guard-etcd"
for p in $progs; do
	install -m 0755 "$bin/$p" "$pkg/usr/bin/$p"
	# Generated from the flag sets of the binary being packaged.
	"$bin/$p" man | gzip -9n >"$pkg/usr/share/man/man1/$p.1.gz"
	"$bin/$p" completion bash >"$pkg/usr/share/bash-completion/completions/$p"
	"$bin/$p" completion zsh >"$pkg/usr/share/zsh/vendor-completions/_$p"
	"$bin/$p" completion fish >"$pkg/usr/share/fish/vendor_completions.d/$p.fish"
done

# The examples as shipped in deploy/, with guard where this package puts it.
for f in "$repo"/deploy/systemd/*.service "$repo"/deploy/systemd/*.timer \
	"$repo"/deploy/systemd/*.conf "$repo"/deploy/systemd/README.md; do
	sed 's#/usr/local/bin/guard\b#/usr/bin/guard#g' "$f" >"$doc/examples/systemd/${f##*/}"
done
for f in "$repo"/deploy/cron/guard.cron "$repo"/deploy/cron/README.md; do
	sed 's#/usr/local/bin/guard\b#/usr/bin/guard#g' "$f" >"$doc/examples/cron/${f##*/}"
done
chmod 0644 "$doc"/examples/*/*
install -m 0644 "$here/copyright" "$doc/copyright"
gzip -9n <"$repo/README.md" >"$doc/README.md.gz"
install -d -m 0755 "$doc/docs"
gzip -9n <"$repo/docs/run.md" >"$doc/docs/run.md.gz" # README's guard run reference
gzip -9n <"$repo/CHANGELOG.md" >"$doc/changelog.gz"
# Reproducible: file times and the changelog's date are the last commit's.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH
date=$(date -R -u -d "@$SOURCE_DATE_EPOCH")
printf 'guard (%s) unstable; urgency=medium\n\n  * Built from guard %s; see changelog.gz.\n\n -- guard maintainers <guard@guardkit.dev>  %s\n' \
	"$debversion" "$version" "$date" | gzip -9n >"$doc/changelog.Debian.gz"

# Go programs are static by design (CGO_ENABLED=0). lintian exempts them
# only when it sees a Debian source package that build-depends on golang-go;
# this .deb is made by dpkg-deb from the Go build, so say it here.
install -d "$pkg/usr/share/lintian/overrides"
for p in $progs; do
	echo "guard: statically-linked-binary [usr/bin/$p]"
done >"$pkg/usr/share/lintian/overrides/guard"
chmod 0644 "$pkg/usr/share/lintian/overrides/guard"

size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s/@VERSION@/$debversion/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
	"$here/control" >"$pkg/DEBIAN/control"
(cd "$pkg" && find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum) >"$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/md5sums"

out=$bin/guard_${debversion}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$out" >/dev/null
echo "$out"
