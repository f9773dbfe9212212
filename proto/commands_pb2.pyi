from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LinkBlob(_message.Message):
    __slots__ = ("repository", "digest", "size", "replica_id", "holders")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    HOLDERS_FIELD_NUMBER: _ClassVar[int]
    repository: str
    digest: str
    size: int
    replica_id: str
    holders: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, repository: _Optional[str] = ..., digest: _Optional[str] = ..., size: _Optional[int] = ..., replica_id: _Optional[str] = ..., holders: _Optional[_Iterable[str]] = ...) -> None: ...

class UnlinkBlob(_message.Message):
    __slots__ = ("repository", "digest")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    repository: str
    digest: str
    def __init__(self, repository: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class Descriptor(_message.Message):
    __slots__ = ("media_type", "digest", "size", "artifact_type", "annotations_json")
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_JSON_FIELD_NUMBER: _ClassVar[int]
    media_type: str
    digest: str
    size: int
    artifact_type: str
    annotations_json: str
    def __init__(self, media_type: _Optional[str] = ..., digest: _Optional[str] = ..., size: _Optional[int] = ..., artifact_type: _Optional[str] = ..., annotations_json: _Optional[str] = ...) -> None: ...

class PutManifest(_message.Message):
    __slots__ = ("repository", "digest", "media_type", "body", "tag", "blob_digests", "manifest_digests", "subject_digest", "referrer", "pushed_at_ms")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    BLOB_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    REFERRER_FIELD_NUMBER: _ClassVar[int]
    PUSHED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    repository: str
    digest: str
    media_type: str
    body: bytes
    tag: str
    blob_digests: _containers.RepeatedScalarFieldContainer[str]
    manifest_digests: _containers.RepeatedScalarFieldContainer[str]
    subject_digest: str
    referrer: Descriptor
    pushed_at_ms: int
    def __init__(self, repository: _Optional[str] = ..., digest: _Optional[str] = ..., media_type: _Optional[str] = ..., body: _Optional[bytes] = ..., tag: _Optional[str] = ..., blob_digests: _Optional[_Iterable[str]] = ..., manifest_digests: _Optional[_Iterable[str]] = ..., subject_digest: _Optional[str] = ..., referrer: _Optional[_Union[Descriptor, _Mapping]] = ..., pushed_at_ms: _Optional[int] = ...) -> None: ...

class DeleteManifest(_message.Message):
    __slots__ = ("repository", "digest")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    repository: str
    digest: str
    def __init__(self, repository: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class DeleteTag(_message.Message):
    __slots__ = ("repository", "tag")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    repository: str
    tag: str
    def __init__(self, repository: _Optional[str] = ..., tag: _Optional[str] = ...) -> None: ...

class RegisterReplica(_message.Message):
    __slots__ = ("replica_id", "raft_address", "http_url", "grpc_address")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    RAFT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HTTP_URL_FIELD_NUMBER: _ClassVar[int]
    GRPC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    raft_address: str
    http_url: str
    grpc_address: str
    def __init__(self, replica_id: _Optional[str] = ..., raft_address: _Optional[str] = ..., http_url: _Optional[str] = ..., grpc_address: _Optional[str] = ...) -> None: ...

class UnregisterReplica(_message.Message):
    __slots__ = ("replica_id",)
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    def __init__(self, replica_id: _Optional[str] = ...) -> None: ...

class Command(_message.Message):
    __slots__ = ("version", "link_blob", "unlink_blob", "put_manifest", "delete_manifest", "delete_tag", "register_replica", "unregister_replica")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LINK_BLOB_FIELD_NUMBER: _ClassVar[int]
    UNLINK_BLOB_FIELD_NUMBER: _ClassVar[int]
    PUT_MANIFEST_FIELD_NUMBER: _ClassVar[int]
    DELETE_MANIFEST_FIELD_NUMBER: _ClassVar[int]
    DELETE_TAG_FIELD_NUMBER: _ClassVar[int]
    REGISTER_REPLICA_FIELD_NUMBER: _ClassVar[int]
    UNREGISTER_REPLICA_FIELD_NUMBER: _ClassVar[int]
    version: int
    link_blob: LinkBlob
    unlink_blob: UnlinkBlob
    put_manifest: PutManifest
    delete_manifest: DeleteManifest
    delete_tag: DeleteTag
    register_replica: RegisterReplica
    unregister_replica: UnregisterReplica
    def __init__(self, version: _Optional[int] = ..., link_blob: _Optional[_Union[LinkBlob, _Mapping]] = ..., unlink_blob: _Optional[_Union[UnlinkBlob, _Mapping]] = ..., put_manifest: _Optional[_Union[PutManifest, _Mapping]] = ..., delete_manifest: _Optional[_Union[DeleteManifest, _Mapping]] = ..., delete_tag: _Optional[_Union[DeleteTag, _Mapping]] = ..., register_replica: _Optional[_Union[RegisterReplica, _Mapping]] = ..., unregister_replica: _Optional[_Union[UnregisterReplica, _Mapping]] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("error_code", "message", "index")
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    error_code: str
    message: str
    index: int
    def __init__(self, error_code: _Optional[str] = ..., message: _Optional[str] = ..., index: _Optional[int] = ...) -> None: ...

class BlobRecord(_message.Message):
    __slots__ = ("size", "replicas")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    size: int
    replicas: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, size: _Optional[int] = ..., replicas: _Optional[_Iterable[str]] = ...) -> None: ...

class ManifestRecord(_message.Message):
    __slots__ = ("media_type", "body", "subject_digest", "referrer", "pushed_at_ms")
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    REFERRER_FIELD_NUMBER: _ClassVar[int]
    PUSHED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    media_type: str
    body: bytes
    subject_digest: str
    referrer: Descriptor
    pushed_at_ms: int
    def __init__(self, media_type: _Optional[str] = ..., body: _Optional[bytes] = ..., subject_digest: _Optional[str] = ..., referrer: _Optional[_Union[Descriptor, _Mapping]] = ..., pushed_at_ms: _Optional[int] = ...) -> None: ...
