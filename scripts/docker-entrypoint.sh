#!/bin/sh
# The container's entrypoint. `serve` with a mounted /etc/qreg/replica.toml runs
# that replica (cluster-examples/). Without one, the first start creates a new
# cluster of one in /data (qreg install: secret, CA, an HTTPS certificate for
# localhost, 127.0.0.1 and $QREG_SAN; the admin password and a join token in
# /data/first-run-secrets.txt, mode 0600) and later starts reuse it. Anything else
# is a qreg command: docker run IMAGE status --url ...
set -e
if [ "${1:-serve}" = serve ] && [ ! -f /etc/qreg/replica.toml ]; then
  if [ ! -f /data/replica.toml ]; then
    # The admin password and the join token go to a file only root can read in the
    # volume, never to the container log: docker logs GET /containers/…/logs.
    qreg install --data /data --host 0.0.0.0 --san "${QREG_SAN:-localhost}" \
      --raft-address 127.0.0.1:6000 --grpc-address 127.0.0.1:7000 \
      --secrets-file /data/first-run-secrets.txt
  fi
  exec qreg serve --config /data/replica.toml
fi
exec qreg "$@"
