import glob
import os

import pytest

from replica.config import ConfigError, load


def test_file_then_environment(tmp_path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(
        '[replica]\nid = "r1"\ndata_dir = "/d"\n[http]\nport = 5001\n'
        '[raft]\naddress = "127.0.0.1:6001"\npeers = ["127.0.0.1:6002"]\n'
    )
    config = load(str(path), environ={"QREG_HTTP_PORT": "5009"})
    assert config.http_port == 5009 and config.raft_peers == ("127.0.0.1:6002",)


@pytest.mark.parametrize(
    "text, key",
    [
        ('[replica]\nid = "r"\ndata_dir = "/d"\n[http]\nprot = 1\n', "http.prot"),
        ('[replica]\nid = "r"\ndata_dir = "/d"\n[http]\nport = "x"\n', "http.port"),
        ('[replica]\ndata_dir = "/d"\n', "replica.id"),
        ('[replica]\nid = "r"\ndata_dir = "/d"\n[raft]\naddress = "nope"\n', "raft.address"),
    ],
)
def test_errors_name_the_key(tmp_path, text: str, key: str) -> None:
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load(str(path), environ={})


def test_the_cluster_examples_configs_load() -> None:
    paths = sorted(
        glob.glob(
            os.path.join(
                os.path.dirname(__file__), "..", "..", "..", "cluster-examples", "*", "*.toml"
            )
        )
    )
    assert paths
    for path in paths:
        if os.path.basename(path).startswith("cache-"):
            continue  # cache configs: tests/unit/cache/test_config.py
        config = load(path, environ={"QREG_RAFT_SECRET": "s"})
        assert config.http_url.startswith("https://") and config.grpc_address
        assert config.tls_cert == "/etc/qreg/tls/replica.crt"


def test_a_secret_comes_from_a_file_named_by_an_environment_variable(tmp_path) -> None:
    secret = tmp_path / "raft-secret"
    secret.write_text("from a file\n")
    base = {"QREG_REPLICA_ID": "r", "QREG_REPLICA_DATA_DIR": "/d"}
    config = load(environ={**base, "QREG_RAFT_SECRET_FILE": str(secret)})
    assert config.raft_secret == "from a file"
    with pytest.raises(ConfigError, match="QREG_RAFT_SECRET_FILE"):
        load(environ={**base, "QREG_RAFT_SECRET_FILE": str(tmp_path / "missing")})
