"""Images the tests build themselves, as OCI layouts on disk (no hub is ever asked)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


@dataclass
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256(self.data)

    def descriptor(self, **extra: object) -> dict[str, object]:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.data),
            **extra,
        }


def layer(seed: str, size: int = 4096) -> Blob:
    """A gzipped tar layer of one file of random bytes (`seed` names the file)."""
    return Blob(OCI_LAYER, layer_tar({f"{seed}/file": os.urandom(size)}))


def image_of(layer_blobs: list[Blob], arch: str = "amd64", label: str = "") -> tuple[Blob, Blob]:
    """(config, manifest) of an image made of these layers (shared with others, say)."""
    config = Blob(
        OCI_CONFIG,
        json.dumps(
            {
                "architecture": arch,
                "os": "linux",
                "config": {"Cmd": ["/bin/true"], "Labels": {"seed": label}},
                "rootfs": {
                    "type": "layers",
                    "diff_ids": [sha256(gzip.decompress(b.data)) for b in layer_blobs],
                },
            }
        ).encode(),
    )
    manifest = Blob(
        OCI_MANIFEST,
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config.descriptor(),
                "layers": [b.descriptor() for b in layer_blobs],
            }
        ).encode(),
    )
    return config, manifest


def image(
    seed: str, layers: int = 2, layer_size: int = 4096, arch: str = "amd64"
) -> tuple[Blob, list[Blob], Blob]:
    """(config, layers, manifest) of a small image whose content depends on `seed`."""
    layer_blobs = [
        Blob(OCI_LAYER, layer_tar({f"{seed}/file{i}": os.urandom(layer_size)}))
        for i in range(layers)
    ]
    config, manifest = image_of(layer_blobs, arch)
    return config, layer_blobs, manifest


def write_layout(path: str, blobs: list[Blob], top: Blob, tag: str) -> str:
    """An OCI image layout at `path` whose index names `top` as `tag`; returns path."""
    os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    for blob in blobs + [top]:
        with open(os.path.join(path, "blobs", "sha256", blob.digest.split(":")[1]), "wb") as f:
            f.write(blob.data)
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump(
            {
                "schemaVersion": 2,
                "manifests": [
                    top.descriptor(annotations={"org.opencontainers.image.ref.name": tag})
                ],
            },
            f,
        )
    return path


def image_layout(path: str, seed: str, tag: str = "latest", **kw: int) -> tuple[str, Blob]:
    config, layers, manifest = image(seed, **kw)
    return write_layout(path, [config, *layers], manifest, tag), manifest


def multi_platform_layout(path: str, seed: str, tag: str = "latest") -> tuple[str, Blob]:
    blobs: list[Blob] = []
    entries = []
    for arch in ("amd64", "arm64"):
        config, layers, manifest = image(f"{seed}-{arch}", arch=arch)
        blobs += [config, *layers, manifest]
        entries.append(manifest.descriptor(platform={"architecture": arch, "os": "linux"}))
    index = Blob(
        OCI_INDEX,
        json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode(),
    )
    return write_layout(path, blobs, index, tag), index
