# One replica per container: docker build -t quorum-registry . &&
# docker run -v qreg:/data -p 5000:5000 quorum-registry
FROM python:3.11-slim
WORKDIR /opt/quorum-registry
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY consensus ./consensus
COPY replica ./replica
COPY cache ./cache
COPY cli ./cli
RUN pip install --no-cache-dir . && mkdir -p /data /etc/qreg && printf '%s\n' \
    '[replica]' 'id = "replica-0"' 'data_dir = "/data"' '' \
    '[http]' 'host = "0.0.0.0"' 'port = 5000' '' \
    '[raft]' 'address = "127.0.0.1:6000"' 'peers = []' > /etc/qreg/replica.toml
VOLUME /data
EXPOSE 5000 6000
STOPSIGNAL SIGTERM
ENTRYPOINT ["qreg", "serve", "--config", "/etc/qreg/replica.toml"]
