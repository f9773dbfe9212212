# One replica per container: docker build -t quorum-registry . &&
# docker run -v qreg:/data -p 5000:5000 quorum-registry
# Without a mounted config, its first start creates a new cluster in /data
# (scripts/docker-entrypoint.sh); cluster-examples/ mount configs and certificates.
FROM python:3.11-slim
WORKDIR /opt/quorum-registry
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY consensus ./consensus
COPY replica ./replica
COPY cache ./cache
COPY cli ./cli
COPY scripts/docker-entrypoint.sh /usr/local/bin/qreg-entrypoint
RUN pip install --no-cache-dir . && mkdir -p /data /etc/qreg
VOLUME /data
EXPOSE 5000 6000 7000
STOPSIGNAL SIGTERM
ENTRYPOINT ["qreg-entrypoint"]
CMD ["serve", "--config", "/etc/qreg/replica.toml"]
