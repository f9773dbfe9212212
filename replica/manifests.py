"""Parsing pushed manifests into the command that records them.

Docker schema 2 manifests and manifest lists, OCI image manifests and indexes,
and artifacts (artifactType, the empty config) are accepted; what they reference
is checked by the state machine when the command is applied.
"""

from __future__ import annotations

import json
from typing import Any

from proto import commands_pb2 as pb
from replica.errors import ManifestInvalid, Unsupported
from replica.names import check_digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
IMAGE_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
MANIFEST_TYPES = IMAGE_TYPES + INDEX_TYPES
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


def parse(repository: str, digest: str, content_type: str, body: bytes) -> pb.PutManifest:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestInvalid(
            "manifest is not valid JSON", detail={"error": str(e)[:200]}
        ) from None
    if not isinstance(doc, dict):
        raise ManifestInvalid("manifest is not a JSON object")
    media_type = _media_type(doc, content_type)
    if doc.get("schemaVersion") != 2:
        raise ManifestInvalid("schemaVersion must be 2")
    command = pb.PutManifest(repository=repository, digest=digest, media_type=media_type, body=body)
    if media_type in IMAGE_TYPES:
        config = _descriptor(doc.get("config"), "config")
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise ManifestInvalid("layers must be a list")
        blobs = [config] + [_descriptor(layer, "layers[]") for layer in layers]
        # Non-distributable layers (with urls) live elsewhere by design.
        command.blob_digests.extend(dict.fromkeys(d["digest"] for d in blobs if not d.get("urls")))
        artifact_type = doc.get("artifactType") or config["mediaType"]
    else:
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise ManifestInvalid("manifests must be a list")
        command.manifest_digests.extend(
            dict.fromkeys(_descriptor(child, "manifests[]")["digest"] for child in children)
        )
        artifact_type = doc.get("artifactType", "")
    subject = doc.get("subject")
    if subject is not None:
        command.subject_digest = _descriptor(subject, "subject")["digest"]
    annotations = doc.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        raise ManifestInvalid("annotations must be an object")
    command.referrer.CopyFrom(
        pb.Descriptor(
            media_type=media_type,
            digest=digest,
            size=len(body),
            artifact_type=artifact_type if isinstance(artifact_type, str) else "",
            annotations_json=json.dumps(annotations, sort_keys=True) if annotations else "",
        )
    )
    return command


def _media_type(doc: dict[str, Any], content_type: str) -> str:
    declared = doc.get("mediaType")
    content_type = content_type.split(";", 1)[0].strip()
    if content_type in SCHEMA1 or declared in SCHEMA1:
        raise Unsupported(
            "Docker schema 1 manifests are not supported; push schema 2 or OCI", status=400
        )
    if declared is not None and content_type in MANIFEST_TYPES and declared != content_type:
        raise ManifestInvalid(
            "mediaType in the manifest differs from Content-Type",
            detail={"mediaType": declared, "contentType": content_type},
        )
    media_type = declared or (content_type if content_type in MANIFEST_TYPES else None)
    if media_type is None:
        # OCI lets mediaType be omitted; infer it from the shape.
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type not in MANIFEST_TYPES:
        raise ManifestInvalid("unsupported manifest media type", detail={"mediaType": media_type})
    return media_type


def _descriptor(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where} must be a descriptor")
    digest, size, media_type = value.get("digest"), value.get("size"), value.get("mediaType")
    if not isinstance(digest, str) or not isinstance(media_type, str):
        raise ManifestInvalid(f"{where} needs a digest and a mediaType")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where} needs a non-negative integer size")
    try:
        check_digest(digest)
    except Exception:
        raise ManifestInvalid(
            f"{where} has an invalid digest", detail={"digest": digest[:200]}
        ) from None
    return value
