from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LinkBlob(_message.Message):
    __slots__ = ("repository", "digest", "size", "replica_id", "holders", "at_ms", "seen")
    class SeenEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    HOLDERS_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    SEEN_FIELD_NUMBER: _ClassVar[int]
    repository: str
    digest: str
    size: int
    replica_id: str
    holders: _containers.RepeatedScalarFieldContainer[str]
    at_ms: int
    seen: _containers.ScalarMap[str, int]
    def __init__(self, repository: _Optional[str] = ..., digest: _Optional[str] = ..., size: _Optional[int] = ..., replica_id: _Optional[str] = ..., holders: _Optional[_Iterable[str]] = ..., at_ms: _Optional[int] = ..., seen: _Optional[_Mapping[str, int]] = ...) -> None: ...

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
    __slots__ = ("repository", "digest", "media_type", "body", "tag", "blob_digests", "manifest_digests", "subject_digest", "referrer", "pushed_at_ms", "pushed_by")
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
    PUSHED_BY_FIELD_NUMBER: _ClassVar[int]
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
    pushed_by: str
    def __init__(self, repository: _Optional[str] = ..., digest: _Optional[str] = ..., media_type: _Optional[str] = ..., body: _Optional[bytes] = ..., tag: _Optional[str] = ..., blob_digests: _Optional[_Iterable[str]] = ..., manifest_digests: _Optional[_Iterable[str]] = ..., subject_digest: _Optional[str] = ..., referrer: _Optional[_Union[Descriptor, _Mapping]] = ..., pushed_at_ms: _Optional[int] = ..., pushed_by: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("replica_id", "raft_address", "http_url", "grpc_address", "features")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    RAFT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HTTP_URL_FIELD_NUMBER: _ClassVar[int]
    GRPC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    raft_address: str
    http_url: str
    grpc_address: str
    features: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, replica_id: _Optional[str] = ..., raft_address: _Optional[str] = ..., http_url: _Optional[str] = ..., grpc_address: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ...) -> None: ...

class UnregisterReplica(_message.Message):
    __slots__ = ("replica_id", "forget_copies")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    FORGET_COPIES_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    forget_copies: bool
    def __init__(self, replica_id: _Optional[str] = ..., forget_copies: _Optional[bool] = ...) -> None: ...

class PutAccount(_message.Message):
    __slots__ = ("name", "is_org", "password_hash", "global_role", "create_only", "at_ms", "set_role", "keep_access_tokens", "bootstrap")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IS_ORG_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_HASH_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_ROLE_FIELD_NUMBER: _ClassVar[int]
    CREATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    SET_ROLE_FIELD_NUMBER: _ClassVar[int]
    KEEP_ACCESS_TOKENS_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_FIELD_NUMBER: _ClassVar[int]
    name: str
    is_org: bool
    password_hash: str
    global_role: str
    create_only: bool
    at_ms: int
    set_role: bool
    keep_access_tokens: bool
    bootstrap: bool
    def __init__(self, name: _Optional[str] = ..., is_org: _Optional[bool] = ..., password_hash: _Optional[str] = ..., global_role: _Optional[str] = ..., create_only: _Optional[bool] = ..., at_ms: _Optional[int] = ..., set_role: _Optional[bool] = ..., keep_access_tokens: _Optional[bool] = ..., bootstrap: _Optional[bool] = ...) -> None: ...

class DeleteAccount(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Account(_message.Message):
    __slots__ = ("name", "is_org", "password_hash", "global_role", "created_ms", "password_changed_ms", "source", "directory_dn", "deactivated")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IS_ORG_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_HASH_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_ROLE_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_CHANGED_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DIRECTORY_DN_FIELD_NUMBER: _ClassVar[int]
    DEACTIVATED_FIELD_NUMBER: _ClassVar[int]
    name: str
    is_org: bool
    password_hash: str
    global_role: str
    created_ms: int
    password_changed_ms: int
    source: str
    directory_dn: str
    deactivated: bool
    def __init__(self, name: _Optional[str] = ..., is_org: _Optional[bool] = ..., password_hash: _Optional[str] = ..., global_role: _Optional[str] = ..., created_ms: _Optional[int] = ..., password_changed_ms: _Optional[int] = ..., source: _Optional[str] = ..., directory_dn: _Optional[str] = ..., deactivated: _Optional[bool] = ...) -> None: ...

class PutTeam(_message.Message):
    __slots__ = ("org", "team", "create_only")
    ORG_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    CREATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    org: str
    team: str
    create_only: bool
    def __init__(self, org: _Optional[str] = ..., team: _Optional[str] = ..., create_only: _Optional[bool] = ...) -> None: ...

class DeleteTeam(_message.Message):
    __slots__ = ("org", "team")
    ORG_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    org: str
    team: str
    def __init__(self, org: _Optional[str] = ..., team: _Optional[str] = ...) -> None: ...

class SetTeamMember(_message.Message):
    __slots__ = ("org", "team", "user", "member")
    ORG_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    org: str
    team: str
    user: str
    member: bool
    def __init__(self, org: _Optional[str] = ..., team: _Optional[str] = ..., user: _Optional[str] = ..., member: _Optional[bool] = ...) -> None: ...

class PutRepository(_message.Message):
    __slots__ = ("repository", "visibility", "create_only", "at_ms")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    CREATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    repository: str
    visibility: str
    create_only: bool
    at_ms: int
    def __init__(self, repository: _Optional[str] = ..., visibility: _Optional[str] = ..., create_only: _Optional[bool] = ..., at_ms: _Optional[int] = ...) -> None: ...

class DeleteRepository(_message.Message):
    __slots__ = ("repository",)
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    repository: str
    def __init__(self, repository: _Optional[str] = ...) -> None: ...

class SetTeamAccess(_message.Message):
    __slots__ = ("repository", "org", "team", "access")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    ORG_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    ACCESS_FIELD_NUMBER: _ClassVar[int]
    repository: str
    org: str
    team: str
    access: str
    def __init__(self, repository: _Optional[str] = ..., org: _Optional[str] = ..., team: _Optional[str] = ..., access: _Optional[str] = ...) -> None: ...

class PutAccessToken(_message.Message):
    __slots__ = ("user", "token_id", "name", "secret_hash", "created_ms", "expires_ms")
    USER_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SECRET_HASH_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_MS_FIELD_NUMBER: _ClassVar[int]
    user: str
    token_id: str
    name: str
    secret_hash: str
    created_ms: int
    expires_ms: int
    def __init__(self, user: _Optional[str] = ..., token_id: _Optional[str] = ..., name: _Optional[str] = ..., secret_hash: _Optional[str] = ..., created_ms: _Optional[int] = ..., expires_ms: _Optional[int] = ...) -> None: ...

class RevokeAccessToken(_message.Message):
    __slots__ = ("user", "token_id")
    USER_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    user: str
    token_id: str
    def __init__(self, user: _Optional[str] = ..., token_id: _Optional[str] = ...) -> None: ...

class PutCache(_message.Message):
    __slots__ = ("name", "url", "region", "upstream", "create_only")
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_FIELD_NUMBER: _ClassVar[int]
    CREATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    name: str
    url: str
    region: str
    upstream: str
    create_only: bool
    def __init__(self, name: _Optional[str] = ..., url: _Optional[str] = ..., region: _Optional[str] = ..., upstream: _Optional[str] = ..., create_only: _Optional[bool] = ...) -> None: ...

class DeleteCache(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class SetCachePreference(_message.Message):
    __slots__ = ("user", "cache")
    USER_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    user: str
    cache: str
    def __init__(self, user: _Optional[str] = ..., cache: _Optional[str] = ...) -> None: ...

class RevokeJoinTokens(_message.Message):
    __slots__ = ("before_ms",)
    BEFORE_MS_FIELD_NUMBER: _ClassVar[int]
    before_ms: int
    def __init__(self, before_ms: _Optional[int] = ...) -> None: ...

class BeginCollection(_message.Message):
    __slots__ = ("at_ms", "replica_id", "time_limit_s")
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_S_FIELD_NUMBER: _ClassVar[int]
    at_ms: int
    replica_id: str
    time_limit_s: int
    def __init__(self, at_ms: _Optional[int] = ..., replica_id: _Optional[str] = ..., time_limit_s: _Optional[int] = ...) -> None: ...

class CollectedBlob(_message.Message):
    __slots__ = ("digest", "repositories", "size")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    REPOSITORIES_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    digest: str
    repositories: _containers.RepeatedScalarFieldContainer[str]
    size: int
    def __init__(self, digest: _Optional[str] = ..., repositories: _Optional[_Iterable[str]] = ..., size: _Optional[int] = ...) -> None: ...

class CollectBlobs(_message.Message):
    __slots__ = ("epoch", "blobs", "at_ms")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    BLOBS_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    blobs: _containers.RepeatedCompositeFieldContainer[CollectedBlob]
    at_ms: int
    def __init__(self, epoch: _Optional[int] = ..., blobs: _Optional[_Iterable[_Union[CollectedBlob, _Mapping]]] = ..., at_ms: _Optional[int] = ...) -> None: ...

class FinishCollection(_message.Message):
    __slots__ = ("epoch", "at_ms", "outcome", "blobs_marked", "blobs_collected", "bytes_collected", "manifests_scanned", "mark_ms", "tags_pruned", "manifests_collected")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    BLOBS_MARKED_FIELD_NUMBER: _ClassVar[int]
    BLOBS_COLLECTED_FIELD_NUMBER: _ClassVar[int]
    BYTES_COLLECTED_FIELD_NUMBER: _ClassVar[int]
    MANIFESTS_SCANNED_FIELD_NUMBER: _ClassVar[int]
    MARK_MS_FIELD_NUMBER: _ClassVar[int]
    TAGS_PRUNED_FIELD_NUMBER: _ClassVar[int]
    MANIFESTS_COLLECTED_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    at_ms: int
    outcome: str
    blobs_marked: int
    blobs_collected: int
    bytes_collected: int
    manifests_scanned: int
    mark_ms: int
    tags_pruned: int
    manifests_collected: int
    def __init__(self, epoch: _Optional[int] = ..., at_ms: _Optional[int] = ..., outcome: _Optional[str] = ..., blobs_marked: _Optional[int] = ..., blobs_collected: _Optional[int] = ..., bytes_collected: _Optional[int] = ..., manifests_scanned: _Optional[int] = ..., mark_ms: _Optional[int] = ..., tags_pruned: _Optional[int] = ..., manifests_collected: _Optional[int] = ...) -> None: ...

class RecordSweep(_message.Message):
    __slots__ = ("epoch", "replica_id", "at_ms", "files", "bytes", "errors", "last_error")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    replica_id: str
    at_ms: int
    files: int
    bytes: int
    errors: int
    last_error: str
    def __init__(self, epoch: _Optional[int] = ..., replica_id: _Optional[str] = ..., at_ms: _Optional[int] = ..., files: _Optional[int] = ..., bytes: _Optional[int] = ..., errors: _Optional[int] = ..., last_error: _Optional[str] = ...) -> None: ...

class ClaimCollector(_message.Message):
    __slots__ = ("replica_id", "at_ms", "until_ms")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    at_ms: int
    until_ms: int
    def __init__(self, replica_id: _Optional[str] = ..., at_ms: _Optional[int] = ..., until_ms: _Optional[int] = ...) -> None: ...

class SetCollectionSchedule(_message.Message):
    __slots__ = ("cron", "time_limit_s", "untagged_after_s")
    CRON_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_S_FIELD_NUMBER: _ClassVar[int]
    UNTAGGED_AFTER_S_FIELD_NUMBER: _ClassVar[int]
    cron: str
    time_limit_s: int
    untagged_after_s: int
    def __init__(self, cron: _Optional[str] = ..., time_limit_s: _Optional[int] = ..., untagged_after_s: _Optional[int] = ...) -> None: ...

class CollectManifests(_message.Message):
    __slots__ = ("epoch", "repository", "digests")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    repository: str
    digests: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, epoch: _Optional[int] = ..., repository: _Optional[str] = ..., digests: _Optional[_Iterable[str]] = ...) -> None: ...

class CollectionRun(_message.Message):
    __slots__ = ("epoch", "replica_id", "started_ms", "time_limit_s", "finish", "sweeps")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_MS_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_S_FIELD_NUMBER: _ClassVar[int]
    FINISH_FIELD_NUMBER: _ClassVar[int]
    SWEEPS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    replica_id: str
    started_ms: int
    time_limit_s: int
    finish: FinishCollection
    sweeps: _containers.RepeatedCompositeFieldContainer[RecordSweep]
    def __init__(self, epoch: _Optional[int] = ..., replica_id: _Optional[str] = ..., started_ms: _Optional[int] = ..., time_limit_s: _Optional[int] = ..., finish: _Optional[_Union[FinishCollection, _Mapping]] = ..., sweeps: _Optional[_Iterable[_Union[RecordSweep, _Mapping]]] = ...) -> None: ...

class RepositoryPolicy(_message.Message):
    __slots__ = ("repository", "immutable_tags", "immutable_pattern", "keep_newest", "max_age_days", "prune_pattern", "keep_pattern", "block_severity", "allowed_vulnerabilities", "signed_only", "accepted_signers")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    IMMUTABLE_TAGS_FIELD_NUMBER: _ClassVar[int]
    IMMUTABLE_PATTERN_FIELD_NUMBER: _ClassVar[int]
    KEEP_NEWEST_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_DAYS_FIELD_NUMBER: _ClassVar[int]
    PRUNE_PATTERN_FIELD_NUMBER: _ClassVar[int]
    KEEP_PATTERN_FIELD_NUMBER: _ClassVar[int]
    BLOCK_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_VULNERABILITIES_FIELD_NUMBER: _ClassVar[int]
    SIGNED_ONLY_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_SIGNERS_FIELD_NUMBER: _ClassVar[int]
    repository: str
    immutable_tags: bool
    immutable_pattern: str
    keep_newest: int
    max_age_days: int
    prune_pattern: str
    keep_pattern: str
    block_severity: str
    allowed_vulnerabilities: _containers.RepeatedScalarFieldContainer[str]
    signed_only: bool
    accepted_signers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, repository: _Optional[str] = ..., immutable_tags: _Optional[bool] = ..., immutable_pattern: _Optional[str] = ..., keep_newest: _Optional[int] = ..., max_age_days: _Optional[int] = ..., prune_pattern: _Optional[str] = ..., keep_pattern: _Optional[str] = ..., block_severity: _Optional[str] = ..., allowed_vulnerabilities: _Optional[_Iterable[str]] = ..., signed_only: _Optional[bool] = ..., accepted_signers: _Optional[_Iterable[str]] = ...) -> None: ...

class SetRepositoryPolicy(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: RepositoryPolicy
    def __init__(self, policy: _Optional[_Union[RepositoryPolicy, _Mapping]] = ...) -> None: ...

class SetNamespaceQuota(_message.Message):
    __slots__ = ("namespace", "bytes")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    bytes: int
    def __init__(self, namespace: _Optional[str] = ..., bytes: _Optional[int] = ...) -> None: ...

class PrunedTag(_message.Message):
    __slots__ = ("tag", "digest")
    TAG_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    tag: str
    digest: str
    def __init__(self, tag: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class PruneTags(_message.Message):
    __slots__ = ("repository", "tags", "reason")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    repository: str
    tags: _containers.RepeatedCompositeFieldContainer[PrunedTag]
    reason: str
    def __init__(self, repository: _Optional[str] = ..., tags: _Optional[_Iterable[_Union[PrunedTag, _Mapping]]] = ..., reason: _Optional[str] = ...) -> None: ...

class PutInventory(_message.Message):
    __slots__ = ("layer", "data")
    LAYER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    layer: str
    data: bytes
    def __init__(self, layer: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class ScanArchive(_message.Message):
    __slots__ = ("name", "digest", "size", "records", "newest_modified")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    NEWEST_MODIFIED_FIELD_NUMBER: _ClassVar[int]
    name: str
    digest: str
    size: int
    records: int
    newest_modified: str
    def __init__(self, name: _Optional[str] = ..., digest: _Optional[str] = ..., size: _Optional[int] = ..., records: _Optional[int] = ..., newest_modified: _Optional[str] = ...) -> None: ...

class SetScanArchive(_message.Message):
    __slots__ = ("archive", "at_ms", "copies")
    class CopiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ARCHIVE_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    COPIES_FIELD_NUMBER: _ClassVar[int]
    archive: ScanArchive
    at_ms: int
    copies: _containers.ScalarMap[str, int]
    def __init__(self, archive: _Optional[_Union[ScanArchive, _Mapping]] = ..., at_ms: _Optional[int] = ..., copies: _Optional[_Mapping[str, int]] = ...) -> None: ...

class ScanDatabase(_message.Message):
    __slots__ = ("version", "updated_ms", "archives")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_MS_FIELD_NUMBER: _ClassVar[int]
    ARCHIVES_FIELD_NUMBER: _ClassVar[int]
    version: int
    updated_ms: int
    archives: _containers.RepeatedCompositeFieldContainer[ScanArchive]
    def __init__(self, version: _Optional[int] = ..., updated_ms: _Optional[int] = ..., archives: _Optional[_Iterable[_Union[ScanArchive, _Mapping]]] = ...) -> None: ...

class PutScanReport(_message.Message):
    __slots__ = ("manifest", "db_version", "at_ms", "summary", "findings", "error", "scanned_by", "repository")
    class SummaryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    DB_VERSION_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SCANNED_BY_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    manifest: str
    db_version: int
    at_ms: int
    summary: _containers.ScalarMap[str, int]
    findings: bytes
    error: str
    scanned_by: str
    repository: str
    def __init__(self, manifest: _Optional[str] = ..., db_version: _Optional[int] = ..., at_ms: _Optional[int] = ..., summary: _Optional[_Mapping[str, int]] = ..., findings: _Optional[bytes] = ..., error: _Optional[str] = ..., scanned_by: _Optional[str] = ..., repository: _Optional[str] = ...) -> None: ...

class Command(_message.Message):
    __slots__ = ("version", "actor", "at_ms", "link_blob", "unlink_blob", "put_manifest", "delete_manifest", "delete_tag", "register_replica", "unregister_replica", "put_account", "delete_account", "put_team", "delete_team", "set_team_member", "put_repository", "delete_repository", "set_team_access", "put_access_token", "revoke_access_token", "put_cache", "delete_cache", "set_cache_preference", "revoke_join_tokens", "begin_collection", "collect_blobs", "finish_collection", "record_sweep", "claim_collector", "set_collection_schedule", "set_repository_policy", "set_namespace_quota", "prune_tags", "collect_manifests", "put_inventory", "set_scan_archive", "put_scan_report", "publish_trust", "put_trust_key", "delete_trust", "set_auth_settings", "sync_directory", "set_team_directory_group", "set_event_retention", "record_event", "put_webhook", "delete_webhook", "claim_webhook", "record_deliveries")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    LINK_BLOB_FIELD_NUMBER: _ClassVar[int]
    UNLINK_BLOB_FIELD_NUMBER: _ClassVar[int]
    PUT_MANIFEST_FIELD_NUMBER: _ClassVar[int]
    DELETE_MANIFEST_FIELD_NUMBER: _ClassVar[int]
    DELETE_TAG_FIELD_NUMBER: _ClassVar[int]
    REGISTER_REPLICA_FIELD_NUMBER: _ClassVar[int]
    UNREGISTER_REPLICA_FIELD_NUMBER: _ClassVar[int]
    PUT_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    DELETE_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PUT_TEAM_FIELD_NUMBER: _ClassVar[int]
    DELETE_TEAM_FIELD_NUMBER: _ClassVar[int]
    SET_TEAM_MEMBER_FIELD_NUMBER: _ClassVar[int]
    PUT_REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    DELETE_REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    SET_TEAM_ACCESS_FIELD_NUMBER: _ClassVar[int]
    PUT_ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REVOKE_ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PUT_CACHE_FIELD_NUMBER: _ClassVar[int]
    DELETE_CACHE_FIELD_NUMBER: _ClassVar[int]
    SET_CACHE_PREFERENCE_FIELD_NUMBER: _ClassVar[int]
    REVOKE_JOIN_TOKENS_FIELD_NUMBER: _ClassVar[int]
    BEGIN_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    COLLECT_BLOBS_FIELD_NUMBER: _ClassVar[int]
    FINISH_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    RECORD_SWEEP_FIELD_NUMBER: _ClassVar[int]
    CLAIM_COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    SET_COLLECTION_SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    SET_REPOSITORY_POLICY_FIELD_NUMBER: _ClassVar[int]
    SET_NAMESPACE_QUOTA_FIELD_NUMBER: _ClassVar[int]
    PRUNE_TAGS_FIELD_NUMBER: _ClassVar[int]
    COLLECT_MANIFESTS_FIELD_NUMBER: _ClassVar[int]
    PUT_INVENTORY_FIELD_NUMBER: _ClassVar[int]
    SET_SCAN_ARCHIVE_FIELD_NUMBER: _ClassVar[int]
    PUT_SCAN_REPORT_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_TRUST_FIELD_NUMBER: _ClassVar[int]
    PUT_TRUST_KEY_FIELD_NUMBER: _ClassVar[int]
    DELETE_TRUST_FIELD_NUMBER: _ClassVar[int]
    SET_AUTH_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    SYNC_DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    SET_TEAM_DIRECTORY_GROUP_FIELD_NUMBER: _ClassVar[int]
    SET_EVENT_RETENTION_FIELD_NUMBER: _ClassVar[int]
    RECORD_EVENT_FIELD_NUMBER: _ClassVar[int]
    PUT_WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    DELETE_WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    CLAIM_WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    RECORD_DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    version: int
    actor: str
    at_ms: int
    link_blob: LinkBlob
    unlink_blob: UnlinkBlob
    put_manifest: PutManifest
    delete_manifest: DeleteManifest
    delete_tag: DeleteTag
    register_replica: RegisterReplica
    unregister_replica: UnregisterReplica
    put_account: PutAccount
    delete_account: DeleteAccount
    put_team: PutTeam
    delete_team: DeleteTeam
    set_team_member: SetTeamMember
    put_repository: PutRepository
    delete_repository: DeleteRepository
    set_team_access: SetTeamAccess
    put_access_token: PutAccessToken
    revoke_access_token: RevokeAccessToken
    put_cache: PutCache
    delete_cache: DeleteCache
    set_cache_preference: SetCachePreference
    revoke_join_tokens: RevokeJoinTokens
    begin_collection: BeginCollection
    collect_blobs: CollectBlobs
    finish_collection: FinishCollection
    record_sweep: RecordSweep
    claim_collector: ClaimCollector
    set_collection_schedule: SetCollectionSchedule
    set_repository_policy: SetRepositoryPolicy
    set_namespace_quota: SetNamespaceQuota
    prune_tags: PruneTags
    collect_manifests: CollectManifests
    put_inventory: PutInventory
    set_scan_archive: SetScanArchive
    put_scan_report: PutScanReport
    publish_trust: PublishTrust
    put_trust_key: PutTrustKey
    delete_trust: DeleteTrust
    set_auth_settings: SetAuthSettings
    sync_directory: SyncDirectory
    set_team_directory_group: SetTeamDirectoryGroup
    set_event_retention: SetEventRetention
    record_event: RecordEvent
    put_webhook: PutWebhook
    delete_webhook: DeleteWebhook
    claim_webhook: ClaimWebhook
    record_deliveries: RecordDeliveries
    def __init__(self, version: _Optional[int] = ..., actor: _Optional[str] = ..., at_ms: _Optional[int] = ..., link_blob: _Optional[_Union[LinkBlob, _Mapping]] = ..., unlink_blob: _Optional[_Union[UnlinkBlob, _Mapping]] = ..., put_manifest: _Optional[_Union[PutManifest, _Mapping]] = ..., delete_manifest: _Optional[_Union[DeleteManifest, _Mapping]] = ..., delete_tag: _Optional[_Union[DeleteTag, _Mapping]] = ..., register_replica: _Optional[_Union[RegisterReplica, _Mapping]] = ..., unregister_replica: _Optional[_Union[UnregisterReplica, _Mapping]] = ..., put_account: _Optional[_Union[PutAccount, _Mapping]] = ..., delete_account: _Optional[_Union[DeleteAccount, _Mapping]] = ..., put_team: _Optional[_Union[PutTeam, _Mapping]] = ..., delete_team: _Optional[_Union[DeleteTeam, _Mapping]] = ..., set_team_member: _Optional[_Union[SetTeamMember, _Mapping]] = ..., put_repository: _Optional[_Union[PutRepository, _Mapping]] = ..., delete_repository: _Optional[_Union[DeleteRepository, _Mapping]] = ..., set_team_access: _Optional[_Union[SetTeamAccess, _Mapping]] = ..., put_access_token: _Optional[_Union[PutAccessToken, _Mapping]] = ..., revoke_access_token: _Optional[_Union[RevokeAccessToken, _Mapping]] = ..., put_cache: _Optional[_Union[PutCache, _Mapping]] = ..., delete_cache: _Optional[_Union[DeleteCache, _Mapping]] = ..., set_cache_preference: _Optional[_Union[SetCachePreference, _Mapping]] = ..., revoke_join_tokens: _Optional[_Union[RevokeJoinTokens, _Mapping]] = ..., begin_collection: _Optional[_Union[BeginCollection, _Mapping]] = ..., collect_blobs: _Optional[_Union[CollectBlobs, _Mapping]] = ..., finish_collection: _Optional[_Union[FinishCollection, _Mapping]] = ..., record_sweep: _Optional[_Union[RecordSweep, _Mapping]] = ..., claim_collector: _Optional[_Union[ClaimCollector, _Mapping]] = ..., set_collection_schedule: _Optional[_Union[SetCollectionSchedule, _Mapping]] = ..., set_repository_policy: _Optional[_Union[SetRepositoryPolicy, _Mapping]] = ..., set_namespace_quota: _Optional[_Union[SetNamespaceQuota, _Mapping]] = ..., prune_tags: _Optional[_Union[PruneTags, _Mapping]] = ..., collect_manifests: _Optional[_Union[CollectManifests, _Mapping]] = ..., put_inventory: _Optional[_Union[PutInventory, _Mapping]] = ..., set_scan_archive: _Optional[_Union[SetScanArchive, _Mapping]] = ..., put_scan_report: _Optional[_Union[PutScanReport, _Mapping]] = ..., publish_trust: _Optional[_Union[PublishTrust, _Mapping]] = ..., put_trust_key: _Optional[_Union[PutTrustKey, _Mapping]] = ..., delete_trust: _Optional[_Union[DeleteTrust, _Mapping]] = ..., set_auth_settings: _Optional[_Union[SetAuthSettings, _Mapping]] = ..., sync_directory: _Optional[_Union[SyncDirectory, _Mapping]] = ..., set_team_directory_group: _Optional[_Union[SetTeamDirectoryGroup, _Mapping]] = ..., set_event_retention: _Optional[_Union[SetEventRetention, _Mapping]] = ..., record_event: _Optional[_Union[RecordEvent, _Mapping]] = ..., put_webhook: _Optional[_Union[PutWebhook, _Mapping]] = ..., delete_webhook: _Optional[_Union[DeleteWebhook, _Mapping]] = ..., claim_webhook: _Optional[_Union[ClaimWebhook, _Mapping]] = ..., record_deliveries: _Optional[_Union[RecordDeliveries, _Mapping]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("id", "at_ms", "type", "repository", "tag", "digest", "media_type", "actor", "detail")
    ID_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    id: int
    at_ms: int
    type: str
    repository: str
    tag: str
    digest: str
    media_type: str
    actor: str
    detail: str
    def __init__(self, id: _Optional[int] = ..., at_ms: _Optional[int] = ..., type: _Optional[str] = ..., repository: _Optional[str] = ..., tag: _Optional[str] = ..., digest: _Optional[str] = ..., media_type: _Optional[str] = ..., actor: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class SetEventRetention(_message.Message):
    __slots__ = ("max_events", "days")
    MAX_EVENTS_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    max_events: int
    days: int
    def __init__(self, max_events: _Optional[int] = ..., days: _Optional[int] = ...) -> None: ...

class RecordEvent(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: Event
    def __init__(self, event: _Optional[_Union[Event, _Mapping]] = ...) -> None: ...

class Webhook(_message.Message):
    __slots__ = ("id", "scope", "url", "event_types", "sealed_secret", "ca_pem", "allow_private", "active", "created_by", "created_ms", "after_event", "kind", "username", "sealed_password", "tag_pattern", "interval_s")
    ID_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    SEALED_SECRET_FIELD_NUMBER: _ClassVar[int]
    CA_PEM_FIELD_NUMBER: _ClassVar[int]
    ALLOW_PRIVATE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    AFTER_EVENT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    SEALED_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    TAG_PATTERN_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    id: str
    scope: str
    url: str
    event_types: _containers.RepeatedScalarFieldContainer[str]
    sealed_secret: bytes
    ca_pem: str
    allow_private: bool
    active: bool
    created_by: str
    created_ms: int
    after_event: int
    kind: str
    username: str
    sealed_password: bytes
    tag_pattern: str
    interval_s: int
    def __init__(self, id: _Optional[str] = ..., scope: _Optional[str] = ..., url: _Optional[str] = ..., event_types: _Optional[_Iterable[str]] = ..., sealed_secret: _Optional[bytes] = ..., ca_pem: _Optional[str] = ..., allow_private: _Optional[bool] = ..., active: _Optional[bool] = ..., created_by: _Optional[str] = ..., created_ms: _Optional[int] = ..., after_event: _Optional[int] = ..., kind: _Optional[str] = ..., username: _Optional[str] = ..., sealed_password: _Optional[bytes] = ..., tag_pattern: _Optional[str] = ..., interval_s: _Optional[int] = ...) -> None: ...

class PutWebhook(_message.Message):
    __slots__ = ("webhook", "create_only")
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    CREATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    webhook: Webhook
    create_only: bool
    def __init__(self, webhook: _Optional[_Union[Webhook, _Mapping]] = ..., create_only: _Optional[bool] = ...) -> None: ...

class DeleteWebhook(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ClaimWebhook(_message.Message):
    __slots__ = ("id", "replica_id", "at_ms", "until_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    replica_id: str
    at_ms: int
    until_ms: int
    def __init__(self, id: _Optional[str] = ..., replica_id: _Optional[str] = ..., at_ms: _Optional[int] = ..., until_ms: _Optional[int] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("event", "status", "code", "attempts", "at_ms", "replica_id", "excerpt", "millis", "tag")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    EXCERPT_FIELD_NUMBER: _ClassVar[int]
    MILLIS_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    event: int
    status: str
    code: int
    attempts: int
    at_ms: int
    replica_id: str
    excerpt: str
    millis: int
    tag: str
    def __init__(self, event: _Optional[int] = ..., status: _Optional[str] = ..., code: _Optional[int] = ..., attempts: _Optional[int] = ..., at_ms: _Optional[int] = ..., replica_id: _Optional[str] = ..., excerpt: _Optional[str] = ..., millis: _Optional[int] = ..., tag: _Optional[str] = ...) -> None: ...

class RecordDeliveries(_message.Message):
    __slots__ = ("id", "replica_id", "deliveries", "settled", "redeliver")
    ID_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    SETTLED_FIELD_NUMBER: _ClassVar[int]
    REDELIVER_FIELD_NUMBER: _ClassVar[int]
    id: str
    replica_id: str
    deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
    settled: int
    redeliver: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, id: _Optional[str] = ..., replica_id: _Optional[str] = ..., deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ..., settled: _Optional[int] = ..., redeliver: _Optional[_Iterable[int]] = ...) -> None: ...

class LdapSettings(_message.Message):
    __slots__ = ("url", "start_tls", "allow_plain", "ca_pem", "bind_dn", "sealed_bind_password", "user_base_dn", "user_filter", "username_attribute", "admin_group_dn", "member_attribute", "keep_managed", "sync_interval_s")
    URL_FIELD_NUMBER: _ClassVar[int]
    START_TLS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_PLAIN_FIELD_NUMBER: _ClassVar[int]
    CA_PEM_FIELD_NUMBER: _ClassVar[int]
    BIND_DN_FIELD_NUMBER: _ClassVar[int]
    SEALED_BIND_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    USER_BASE_DN_FIELD_NUMBER: _ClassVar[int]
    USER_FILTER_FIELD_NUMBER: _ClassVar[int]
    USERNAME_ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    ADMIN_GROUP_DN_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    KEEP_MANAGED_FIELD_NUMBER: _ClassVar[int]
    SYNC_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    url: str
    start_tls: bool
    allow_plain: bool
    ca_pem: str
    bind_dn: str
    sealed_bind_password: bytes
    user_base_dn: str
    user_filter: str
    username_attribute: str
    admin_group_dn: str
    member_attribute: str
    keep_managed: bool
    sync_interval_s: int
    def __init__(self, url: _Optional[str] = ..., start_tls: _Optional[bool] = ..., allow_plain: _Optional[bool] = ..., ca_pem: _Optional[str] = ..., bind_dn: _Optional[str] = ..., sealed_bind_password: _Optional[bytes] = ..., user_base_dn: _Optional[str] = ..., user_filter: _Optional[str] = ..., username_attribute: _Optional[str] = ..., admin_group_dn: _Optional[str] = ..., member_attribute: _Optional[str] = ..., keep_managed: _Optional[bool] = ..., sync_interval_s: _Optional[int] = ...) -> None: ...

class ClientCa(_message.Message):
    __slots__ = ("name", "pem", "added_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PEM_FIELD_NUMBER: _ClassVar[int]
    ADDED_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    pem: str
    added_ms: int
    def __init__(self, name: _Optional[str] = ..., pem: _Optional[str] = ..., added_ms: _Optional[int] = ...) -> None: ...

class AuthSettings(_message.Message):
    __slots__ = ("mode", "ldap", "client_cas", "certificate_identity", "revoked_serials", "crl_pem", "revision")
    MODE_FIELD_NUMBER: _ClassVar[int]
    LDAP_FIELD_NUMBER: _ClassVar[int]
    CLIENT_CAS_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_IDENTITY_FIELD_NUMBER: _ClassVar[int]
    REVOKED_SERIALS_FIELD_NUMBER: _ClassVar[int]
    CRL_PEM_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    mode: str
    ldap: LdapSettings
    client_cas: _containers.RepeatedCompositeFieldContainer[ClientCa]
    certificate_identity: str
    revoked_serials: _containers.RepeatedScalarFieldContainer[str]
    crl_pem: str
    revision: int
    def __init__(self, mode: _Optional[str] = ..., ldap: _Optional[_Union[LdapSettings, _Mapping]] = ..., client_cas: _Optional[_Iterable[_Union[ClientCa, _Mapping]]] = ..., certificate_identity: _Optional[str] = ..., revoked_serials: _Optional[_Iterable[str]] = ..., crl_pem: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class SetAuthSettings(_message.Message):
    __slots__ = ("settings", "expected_revision")
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    settings: AuthSettings
    expected_revision: int
    def __init__(self, settings: _Optional[_Union[AuthSettings, _Mapping]] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class DirectoryUser(_message.Message):
    __slots__ = ("name", "dn", "active", "set_role", "admin")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DN_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    SET_ROLE_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    name: str
    dn: str
    active: bool
    set_role: bool
    admin: bool
    def __init__(self, name: _Optional[str] = ..., dn: _Optional[str] = ..., active: _Optional[bool] = ..., set_role: _Optional[bool] = ..., admin: _Optional[bool] = ...) -> None: ...

class DirectoryTeam(_message.Message):
    __slots__ = ("org", "team", "members")
    ORG_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    org: str
    team: str
    members: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, org: _Optional[str] = ..., team: _Optional[str] = ..., members: _Optional[_Iterable[str]] = ...) -> None: ...

class SyncDirectory(_message.Message):
    __slots__ = ("users", "teams", "at_ms")
    USERS_FIELD_NUMBER: _ClassVar[int]
    TEAMS_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[DirectoryUser]
    teams: _containers.RepeatedCompositeFieldContainer[DirectoryTeam]
    at_ms: int
    def __init__(self, users: _Optional[_Iterable[_Union[DirectoryUser, _Mapping]]] = ..., teams: _Optional[_Iterable[_Union[DirectoryTeam, _Mapping]]] = ..., at_ms: _Optional[int] = ...) -> None: ...

class SetTeamDirectoryGroup(_message.Message):
    __slots__ = ("org", "team", "group_dn")
    ORG_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_DN_FIELD_NUMBER: _ClassVar[int]
    org: str
    team: str
    group_dn: str
    def __init__(self, org: _Optional[str] = ..., team: _Optional[str] = ..., group_dn: _Optional[str] = ...) -> None: ...

class TrustFile(_message.Message):
    __slots__ = ("role", "version", "data")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    role: str
    version: int
    data: bytes
    def __init__(self, role: _Optional[str] = ..., version: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class PublishTrust(_message.Message):
    __slots__ = ("gun", "repository", "expected_timestamp", "files", "signers", "at_ms")
    GUN_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    SIGNERS_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    gun: str
    repository: str
    expected_timestamp: int
    files: _containers.RepeatedCompositeFieldContainer[TrustFile]
    signers: _containers.RepeatedScalarFieldContainer[str]
    at_ms: int
    def __init__(self, gun: _Optional[str] = ..., repository: _Optional[str] = ..., expected_timestamp: _Optional[int] = ..., files: _Optional[_Iterable[_Union[TrustFile, _Mapping]]] = ..., signers: _Optional[_Iterable[str]] = ..., at_ms: _Optional[int] = ...) -> None: ...

class PutTrustKey(_message.Message):
    __slots__ = ("gun", "repository", "role", "key_id", "key_type", "public", "sealed_private", "rotate")
    GUN_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_TYPE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    SEALED_PRIVATE_FIELD_NUMBER: _ClassVar[int]
    ROTATE_FIELD_NUMBER: _ClassVar[int]
    gun: str
    repository: str
    role: str
    key_id: str
    key_type: str
    public: bytes
    sealed_private: bytes
    rotate: bool
    def __init__(self, gun: _Optional[str] = ..., repository: _Optional[str] = ..., role: _Optional[str] = ..., key_id: _Optional[str] = ..., key_type: _Optional[str] = ..., public: _Optional[bytes] = ..., sealed_private: _Optional[bytes] = ..., rotate: _Optional[bool] = ...) -> None: ...

class DeleteTrust(_message.Message):
    __slots__ = ("gun", "repository", "at_ms")
    GUN_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    gun: str
    repository: str
    at_ms: int
    def __init__(self, gun: _Optional[str] = ..., repository: _Optional[str] = ..., at_ms: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("size", "replicas", "linked_ms")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    LINKED_MS_FIELD_NUMBER: _ClassVar[int]
    size: int
    replicas: _containers.RepeatedScalarFieldContainer[str]
    linked_ms: int
    def __init__(self, size: _Optional[int] = ..., replicas: _Optional[_Iterable[str]] = ..., linked_ms: _Optional[int] = ...) -> None: ...

class ManifestRecord(_message.Message):
    __slots__ = ("media_type", "body", "subject_digest", "referrer", "pushed_at_ms", "blob_digests", "pushed_by")
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    REFERRER_FIELD_NUMBER: _ClassVar[int]
    PUSHED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    BLOB_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    PUSHED_BY_FIELD_NUMBER: _ClassVar[int]
    media_type: str
    body: bytes
    subject_digest: str
    referrer: Descriptor
    pushed_at_ms: int
    blob_digests: _containers.RepeatedScalarFieldContainer[str]
    pushed_by: str
    def __init__(self, media_type: _Optional[str] = ..., body: _Optional[bytes] = ..., subject_digest: _Optional[str] = ..., referrer: _Optional[_Union[Descriptor, _Mapping]] = ..., pushed_at_ms: _Optional[int] = ..., blob_digests: _Optional[_Iterable[str]] = ..., pushed_by: _Optional[str] = ...) -> None: ...
