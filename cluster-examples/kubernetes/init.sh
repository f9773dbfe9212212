#!/bin/sh
# The init container of each pod of the qreg StatefulSet: configures the replica in
# its volume at the first start, and does nothing at later ones.
#   - the first BOOTSTRAP_REPLICAS pods (qreg-0 .. qreg-2) form the cluster together:
#     each gets a certificate from the cluster CA (a Secret) and a config naming the
#     others as Raft peers; they elect a leader once a majority runs;
#   - a pod beyond them (after `kubectl scale`) joins the running cluster with a join
#     token it makes from the cluster secret, and starts from a snapshot.
# Secrets are read from mounted files, never from the command line.
set -eu
: "${POD_NAME:?}" "${POD_NAMESPACE:?}"
DATA=${QREG_DATA:-/data}
PEERS=${PEERS_SERVICE:-qreg-peers}
DOMAIN=${CLUSTER_DOMAIN:-cluster.local}
BOOTSTRAP=${BOOTSTRAP_REPLICAS:-3}
CA_DIR=${CA_DIR:-/etc/qreg/ca}
SET=${POD_NAME%-*}
ORDINAL=${POD_NAME##*-}
fqdn() { echo "$SET-$1.$PEERS.$POD_NAMESPACE.svc.$DOMAIN"; }
SELF=$(fqdn "$ORDINAL")

if [ -f "$DATA/replica.toml" ]; then
  echo "$POD_NAME is configured already"
  exit 0
fi

sans="--san $SELF --san $SET.$POD_NAMESPACE.svc --san $SET.$POD_NAMESPACE.svc.$DOMAIN"
for name in ${PUBLIC_NAMES:-}; do sans="$sans --san $name"; done

if [ "$ORDINAL" -lt "$BOOTSTRAP" ]; then
  mkdir -p "$DATA/tls"
  cp "$CA_DIR/ca.crt" "$CA_DIR/ca.key" "$DATA/tls/"
  # shellcheck disable=SC2086
  qreg tls issue --ca "$DATA/tls" --name "$POD_NAME" $sans --out "$DATA/tls"
  peers=""
  i=0
  while [ "$i" -lt "$BOOTSTRAP" ]; do
    if [ "$i" != "$ORDINAL" ]; then
      peers="$peers${peers:+, }\"$(fqdn "$i"):6000\""
    fi
    i=$((i + 1))
  done
  umask 077
  cat > "$DATA/replica.toml.new" <<TOML
[replica]
id = "$POD_NAME"
data_dir = "$DATA"

[http]
host = "0.0.0.0"
port = 5000
url = "https://$SELF:5000"

[raft]
address = "$SELF:6000"
peers = [$peers]
# secret: QREG_RAFT_SECRET_FILE (the qreg-cluster Secret)

[grpc]
address = "$SELF:7000"
TOML
  mv "$DATA/replica.toml.new" "$DATA/replica.toml"
  echo "$POD_NAME configured as one of the first $BOOTSTRAP replicas"
else
  # Make a join token from the cluster secret, as any member would (qreg join-token).
  mint="$DATA/.mint"
  mkdir -p "$mint/tls"
  cp "$CA_DIR/ca.crt" "$mint/tls/"
  printf '[replica]\nid = "mint"\ndata_dir = "%s"\n' "$mint" > "$mint/replica.toml"
  token=$(umask 077 && mktemp)
  qreg join-token --config "$mint/replica.toml" > "$token"
  rm -rf "$mint"
  # shellcheck disable=SC2086
  qreg join --existing "https://$(fqdn 0):5000" --token-file "$token" \
    --replica-id "$POD_NAME" --data "$DATA" --host 0.0.0.0 --port 5000 $sans \
    --raft-address "$SELF:6000" --grpc-address "$SELF:7000" --no-start
  rm -f "$token"
  echo "$POD_NAME joined the cluster"
fi
