#!/bin/sh
# The cluster CA and the replicas' certificates (../three-replicas/make-certs.sh),
# then one certificate per cache from the same CA, without the CA key:
#   ./make-certs.sh registry.example.com eu.registry.example.com ap.registry.example.com
# The first name is the cluster's public name; the next two, the caches'.
set -eu
cd "$(dirname "$0")"
cluster=${1:-localhost}
eu=${2:-localhost}
ap=${3:-localhost}
[ -f ../three-replicas/tls/ca.key ] || ../three-replicas/make-certs.sh "$cluster"
qreg tls issue --ca ../three-replicas/tls --for cache --name cache-eu \
  --san cache-eu --san "$eu" --san localhost --san 127.0.0.1 --out tls/cache-eu
qreg tls issue --ca ../three-replicas/tls --for cache --name cache-ap \
  --san cache-ap --san "$ap" --san localhost --san 127.0.0.1 --out tls/cache-ap
# The image runs as its own user (uid 10001), which must read the keys it mounts.
if [ "$(id -u)" = 0 ]; then
  chown -R 10001:10001 tls
else
  echo "now: sudo chown -R 10001:10001 tls   (the containers' user reads the keys)"
fi
