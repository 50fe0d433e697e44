#!/bin/sh
# conf.sh -- the package's /etc/portcullis.conf: etc/portcullis.conf
# with its pki pointed at the self-signed pair the postinst makes, so
# that a fresh installation starts (on 587 and 465, every address)
# without a certificate error.  Fails if the example's pki statement
# changed shape, rather than ship a file that does not start.
set -eu
out=$(awk '
/^pki "mx\.example\.org" cert / {
	print "# The package made this self-signed pair when it was installed"
	print "# (/etc/portcullis/tls, removed on purge), so that the server starts."
	print "# Clients will not trust it: point these at your real certificate."
	print "pki \"mx.example.org\" cert \"/etc/portcullis/tls/cert.pem\" \\"
	print "\tkey \"/etc/portcullis/tls/key.pem\""
	skip = 1; n++; next
}
skip && /^[ \t]+key / { skip = 0; next }
{ skip = 0; print }
END { if (n != 1) exit 1 }
' "$1")
printf '%s\n' "$out"
