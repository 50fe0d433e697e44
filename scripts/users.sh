#!/bin/sh
# users.sh -- create the system users portcullis runs its children as,
# when they are missing.  Root only; for anyone else there is nothing
# to drop to, and nothing is done.

set -eu

[ "$(id -u)" -eq 0 ] || exit 0

nologin=/usr/sbin/nologin
[ -x "$nologin" ] || nologin=/sbin/nologin

for u in _portcullis _portcullis_auth _portcullis_keys; do
	if ! getent passwd "$u" >/dev/null; then
		echo "users: creating system user $u"
		useradd --system --no-create-home --home-dir /var/empty \
		    --shell "$nologin" --user-group "$u"
	fi
done
