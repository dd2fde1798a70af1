"""Dead-letter contract: one rejected record on ``consent.deadletter``, kept intact."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class FieldError(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    loc: str = Field(description="Dotted path of the offending field; empty for the whole record")
    msg: str


class RecordSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str
    partition: int
    offset: int


class RecordHeader(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    value_b64: str | None = Field(description="The header's value bytes, base64; null if none")


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, title="DeadLetter")

    payload_b64: str = Field(
        description="The original value bytes, base64; lossless (empty if the value was null)"
    )
    tombstone: bool = Field(
        default=False,
        description="Since 1.1: true if the record had no value at all (null, not empty bytes)",
    )
    key_b64: str | None = Field(description="The original key bytes, base64; null if keyless")
    headers: list[RecordHeader] | None = Field(
        default=None,
        description="Since 1.1: the original record's headers, in order; absent if not recorded",
    )
    errors: list[FieldError] = Field(min_length=1)
    source: RecordSource
    received_at: AwareDatetime
