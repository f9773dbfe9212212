# One replica per container: docker build -t quorum-registry . &&
# docker run -v qreg:/data -p 5000:5000 quorum-registry
# Without a mounted config, its first start creates a new cluster in /data
# (scripts/docker-entrypoint.sh); cluster-examples/ mount configs and certificates.
# Secrets come from files (QREG_RAFT_SECRET_FILE=/run/secrets/…, replica/config.py),
# never from the command line. BASE is any Debian-like image with python3 >= 3.11 and
# venv (the tests build one with debootstrap: no registry is reachable there).
ARG BASE=python:3.11-slim
FROM ${BASE}
# Metadata first and the big layer (the venv) last: with dockerd's vfs driver every
# step after it copies the whole filesystem again.
ENV PATH=/opt/venv/bin:$PATH
EXPOSE 5000 6000 7000
# Healthy: this replica answers /health with 200 (it is in a cluster that has a quorum).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "/usr/local/bin/qreg-healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["qreg-entrypoint"]
CMD ["serve", "--config", "/etc/qreg/replica.toml"]
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin qreg \
    && mkdir -p /data /etc/qreg && chown qreg:qreg /data
VOLUME /data
COPY scripts/docker-entrypoint.sh /usr/local/bin/qreg-entrypoint
COPY scripts/docker-healthcheck.py /usr/local/bin/qreg-healthcheck
WORKDIR /opt/quorum-registry
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY consensus ./consensus
COPY replica ./replica
COPY cache ./cache
COPY cli ./cli
# A virtualenv: Debian's python refuses system-wide pip installs (PEP 668).
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check . \
    && cd / && rm -rf /opt/quorum-registry
WORKDIR /data
USER qreg
