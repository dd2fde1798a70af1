"""One typed, frozen settings object read from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from streams.security.apikeys import ApiKeyError, parse_file, parse_inline
from streams.security.receipts import ReceiptSigner
from streams.security.shredding import IdentifierHasher, KeyMaterialError, Keyring, new_key
from streams.security.tokens import split_secrets

DEFAULT_WEB_PORT = 6066
#: The embedded broker holds every fetch for the whole wait, so this is the latency floor per
#: hop there; Apache Kafka answers as soon as records arrive (see README, Configuration).
DEFAULT_FETCH_WAIT_MS = 20
_URL = r"^https?://[^\s/?#]+(/[^\s?#]*)?$"


class SettingsError(ValueError):
    """The environment does not describe a valid configuration."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str | None = Field(
        default=None, description="unset = start the embedded broker"
    )
    policy_file: Path | None = Field(default=None, description="unset = the shipped example policy")
    data_dir: Path = Field(default=Path(".consent-data"), description="RocksDB tables")
    web_host: str = Field(default="127.0.0.1", description="HTTP bind address")
    web_port: int = Field(default=DEFAULT_WEB_PORT, ge=0, le=65535, description="HTTP port")
    app_id: str = Field(
        default="consent-streams",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
        description="consumer group and internal topic prefix",
    )

    topic_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]{0,64}$",
        description="prepended to every topic name (e.g. 'staging.')",
    )
    session_timeout: float = Field(
        default=30.0, gt=0, description="consumer group session, seconds"
    )
    # A produce request carries one batch per partition, and a partition has one request in
    # flight: a batch's ~1 KB ledger entries in 16 KB batches took ~10 round trips per partition.
    # Below Kafka's default message.max.bytes (1 MB).
    producer_max_batch_size: int = Field(
        default=256 * 1024, gt=0, description="bytes per produce batch"
    )
    broker_wait: float = Field(
        default=60.0,
        gt=0,
        allow_inf_nan=False,
        description="seconds to wait for an unreachable broker, then exit 75",
    )
    fetch_wait_ms: int = Field(
        default=DEFAULT_FETCH_WAIT_MS,
        ge=1,
        le=60_000,
        description="longest a fetch waits for records (latency vs CPU)",
    )
    batch_max: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="records a fetched batch holds at most (throughput vs responsiveness)",
    )
    state_cache: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description="subjects whose decoded state, data key and due work stay in memory "
        "(memory vs reads: ~5.5 KB each)",
    )
    replication_factor: int = Field(
        default=1,
        ge=1,
        le=32,
        description="replicas of every topic the worker creates",
    )
    log_level: str = Field(
        default="INFO",
        pattern=r"^(DEBUG|INFO|WARNING|ERROR)$",
        description="DEBUG, INFO, WARNING or ERROR",
    )
    api_keys: str = Field(
        default="",
        description="name:scope+scope:sha256hex,... (unset = HTTP API closed)",
    )
    api_keys_file: Path | None = Field(default=None, description="the same entries, one per line")
    token_secret: SecretStr | None = Field(
        default=None,
        description="signs link tokens; several comma-separated = rotation",
    )
    public_url: str | None = Field(
        default=None,
        pattern=_URL,
        description="base URL of links in e-mails (default: the web address)",
    )
    allow_insecure_links: bool = Field(
        default=False,
        description="mint links to a non-HTTPS address "
        "(development and tests only; RFC 8058 requires HTTPS)",
    )
    advertised_url: str | None = Field(
        default=None,
        pattern=_URL,
        description="URL other workers reach this one at",
    )
    receipt_keys: SecretStr | None = Field(
        default=None,
        description="signs consent receipts: Ed25519 keys, newest first, retired ones as "
        "public:... (unset: an ephemeral key with the embedded broker, else receipts 503)",
    )

    data_keys: SecretStr | None = Field(
        default=None,
        description="id:base64url-key,... newest first: wrap the per-subject data keys "
        "(make one: consent-streams keys new-kek)",
    )
    identifier_key: SecretStr | None = Field(
        default=None,
        description="base64url HMAC key of identifier hashes; never change it "
        "(make one: consent-streams keys new-identifier-key)",
    )
    timers: bool = Field(
        default=True,
        description="run the clocks: consent expiry, lapsed double opt-ins, renewal reminders "
        "and retention ends",
    )
    timer_interval: float = Field(
        default=1.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="seconds between looks for due timers (the firing latency bound)",
    )
    ledger: bool = Field(
        default=True,
        description="record every accepted event in the consent ledger (false: benchmarks only)",
    )

    @field_validator("api_keys")
    @classmethod
    def _api_keys_parse(cls, value: str) -> str:
        try:
            parse_inline(value)
        except ApiKeyError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("api_keys_file")
    @classmethod
    def _api_keys_file_parses(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                parse_file(value)
            except ApiKeyError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("token_secret")
    @classmethod
    def _secrets_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            split_secrets(value.get_secret_value())
        return value

    @field_validator("receipt_keys")
    @classmethod
    def _receipt_keys_parse(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            ReceiptSigner.parse(value.get_secret_value())  # ValueError says what is wrong
        return value

    @field_validator("data_keys")
    @classmethod
    def _keyring_parses(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                Keyring.parse(value.get_secret_value())
            except KeyMaterialError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("identifier_key")
    @classmethod
    def _identifier_key_parses(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                IdentifierHasher.parse(value.get_secret_value())
            except KeyMaterialError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("public_url", "advertised_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return None if value is None else value.rstrip("/")

    @property
    def links_base_url(self) -> str:
        """Where links in e-mails point: CONSENT_PUBLIC_URL, else this worker's own address."""
        return self.public_url or f"http://{self.web_host}:{self.web_port}"

    def personal_keys(self) -> tuple[Keyring, IdentifierHasher]:
        """The KEK keyring and the identifier hasher; :class:`SettingsError` when one is unset.

        With the embedded broker (no KAFKA_BOOTSTRAP_SERVERS) keys are made up for the run:
        its broker and tables do not outlive it either. Against a cluster they must be
        configured: keys made up at start would be gone at the next, and with them every
        sealed entry and every identifier hash.
        """
        data_keys, identifier_key = self.data_keys, self.identifier_key
        if self.bootstrap_servers is None:
            data_keys = data_keys or SecretStr(f"run:{new_key()}")
            identifier_key = identifier_key or SecretStr(new_key())
        missing = [
            _variable(name)
            for name, value in (("data_keys", data_keys), ("identifier_key", identifier_key))
            if value is None
        ]
        if data_keys is None or identifier_key is None:
            raise SettingsError(
                f"{' and '.join(missing)} must be set with a Kafka cluster (personal data is "
                "sealed under them): make them with 'consent-streams keys new-kek' and "
                "'consent-streams keys new-identifier-key', and keep them as safe as the data"
            )
        return (
            Keyring.parse(data_keys.get_secret_value()),
            IdentifierHasher.parse(identifier_key.get_secret_value()),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        raw: dict[str, str] = {
            field: env[var] for var, field in ENVIRONMENT.items() if env.get(var, "").strip()
        }
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{_variable(str(err['loc'][0]))}: {err['msg']}" for err in exc.errors()
            )
            raise SettingsError(f"invalid configuration: {problems}") from None


#: Fields whose variable is not CONSENT_<FIELD>: the Kafka clients' usual name.
_VARIABLES = {"bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS"}


def _variable(field: str) -> str:
    return _VARIABLES.get(field) or f"CONSENT_{field.upper()}"


#: Environment variable -> settings field, in field order. The compose file and docs are checked
#: against it.
ENVIRONMENT: dict[str, str] = {_variable(field): field for field in Settings.model_fields}
