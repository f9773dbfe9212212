#!/bin/sh
# One cluster CA and a certificate per replica, valid for its service name and for
# the names clients use to reach the load balancer. Run once, before the first start:
#   ./make-certs.sh registry.example.com
set -eu
cd "$(dirname "$0")"
qreg tls ca --out tls
for i in 0 1 2; do
  sans="--san replica-$i --san localhost --san 127.0.0.1"
  for name in "$@"; do sans="$sans --san $name"; done
  # shellcheck disable=SC2086
  qreg tls issue --ca tls --name "replica-$i" $sans --out "tls/replica-$i"
done
# The image runs as its own user (uid 10001), which must read the keys it mounts.
if [ "$(id -u)" = 0 ]; then
  chown -R 10001:10001 tls
else
  echo "now: sudo chown -R 10001:10001 tls   (the containers' user reads the keys)"
fi
echo "clients trust tls/ca.crt (or fetch it: curl -ks https://HOST:5000/ca)"
