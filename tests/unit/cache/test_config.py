import glob
import os

import pytest
import yaml

from cache.config import ConfigError, load

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "cluster-examples")


def test_a_cache_config_needs_a_certificate_unless_insecure(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[cache]\nname = "eu"\ndata_dir = "/d"\nca = "/ca.crt"\nupstreams = ["https://r0:5000"]\n'
    )
    with pytest.raises(ConfigError, match="http.cert"):
        load(str(path))
    path.write_text(path.read_text() + "[http]\ninsecure = true\n")
    assert load(str(path)).upstreams == ("https://r0:5000",)


@pytest.mark.parametrize(
    "text, key",
    [
        ('[cache]\ndata_dir = "/d"\nca = "c"\nupstreams = ["https://r"]\n', "cache.name"),
        (
            '[cache]\nname = "eu"\ndata_dir = "/d"\nca = "c"\nupstreams = ["r0:5000"]\n',
            "cache.upstreams",
        ),
        (
            '[cache]\nname = "eu"\ndata_dir = "/d"\nca = "c"\nupstreams = ["https://r"]\n'
            "max_bytes = -1\n",
            "cache.max_bytes",
        ),
    ],
)
def test_errors_name_the_key(tmp_path, text: str, key: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text + "[http]\ninsecure = true\n")
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load(str(path))


def test_the_cluster_examples_cache_configs_load() -> None:
    paths = sorted(glob.glob(os.path.join(EXAMPLES, "*", "cache-*.toml")))
    assert len(paths) >= 2
    for path in paths:
        config = load(path)
        assert config.cert == "/etc/qreg/tls/cache.crt" and config.ca == "/etc/qreg/tls/ca.crt"
        assert all(u.startswith("https://") for u in config.upstreams)


def test_the_cluster_examples_compose_files_mount_what_exists() -> None:
    """Every file a compose file mounts is in the example (tls/ is made by make-certs.sh),
    and every compose file it includes exists."""
    for compose in glob.glob(os.path.join(EXAMPLES, "*", "compose.yaml")):
        here = os.path.dirname(compose)
        with open(compose) as f:
            document = yaml.safe_load(f)
        for included in document.get("include", []):
            assert os.path.isfile(os.path.join(here, included)), (compose, included)
        for name, service in document["services"].items():
            for volume in service.get("volumes", []):
                source = volume.split(":")[0]
                if source.startswith(".") and "/tls/" not in source + "/":
                    assert os.path.exists(os.path.join(here, source)), (compose, name, source)
