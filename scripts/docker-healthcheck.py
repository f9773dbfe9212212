"""The container's HEALTHCHECK: exit 0 if this replica's /health answers 200 (it is
in a cluster that has a quorum).

The address comes from QREG_HEALTH_URL, else from the replica's config (the mounted
/etc/qreg/replica.toml, else the one `install`/`join` wrote in /data): its [http] host
(0.0.0.0 means loopback) and port. The certificate is checked against the cluster CA
found beside it; the replica's certificate names its public host, not the one dialled.
"""

import os
import ssl
import sys
import tomllib
import urllib.error
import urllib.request

CONFIGS = ("/etc/qreg/replica.toml", "/data/replica.toml")


def _target() -> tuple[str, str | None]:
    config_path = next((p for p in CONFIGS if os.path.isfile(p)), None)
    if config_path is None:
        return os.environ.get("QREG_HEALTH_URL", "https://127.0.0.1:5000/health"), None
    with open(config_path, "rb") as f:
        config = tomllib.load(f)
    http = config.get("http", {})
    host = http.get("host", "127.0.0.1")
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    scheme = "http" if http.get("insecure") else "https"
    url = f"{scheme}://{host}:{http.get('port', 5000)}/health"
    tls = config.get("tls", {})
    data = config.get("replica", {}).get("data_dir", "/data")
    ca = tls.get("ca") or os.path.join(data, "tls", "ca.crt")
    return os.environ.get("QREG_HEALTH_URL", url), ca if os.path.isfile(ca) else None


def main() -> int:
    url, ca = _target()
    context = ssl.create_default_context(cafile=ca) if ca else ssl._create_unverified_context()
    context.check_hostname = False
    try:
        with urllib.request.urlopen(url, timeout=4, context=context) as answer:
            return 0 if answer.status == 200 else 1
    except (urllib.error.URLError, OSError) as e:
        print(f"unhealthy: {url}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
