"""The settings model: types and rules. Defaults and their comments live in group_data/all.py."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(-rc\d+)?$")
# Ollama model names: [namespace/]name[:tag] (letters, digits, . _ -).
MODEL_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?(:[A-Za-z0-9._-]+)?$")
# OLLAMA_KEEP_ALIVE takes a Go duration or a number of seconds; negative means forever.
KEEP_ALIVE_RE = re.compile(r"^-?\d+(\.\d+)?(ns|us|ms|s|m|h)?$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class ModelVariant(BaseModel):
    """A Modelfile variant: `FROM <from>` + `PARAMETER num_ctx <num_ctx>`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)

    from_: str = Field(alias="from")
    num_ctx: Annotated[int, Field(ge=2048, le=1048576)]


def split_listen(value: str) -> tuple[str, int]:
    """Split "host:port" ("[::1]:11434" for IPv6) into its parts; raise ValueError if malformed."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError("must be host:port, e.g. 127.0.0.1:11434")
    host = host.strip("[]")
    if not 1 <= int(port) <= 65535:
        raise ValueError("port must be between 1 and 65535")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseModel):
    """Validated settings of one host. Field docs: group_data/all.py."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    topology: Literal["native", "docker", "lxc", "kvm"]
    gpu: Literal["auto", "nvidia", "none"]

    ollama_version: str
    ollama_archive_url: str
    ollama_archive_sha256: str | None
    ollama_archive_path: str | None
    ollama_prefix: str

    ollama_listen: str
    ollama_allow_from: list[str]
    ollama_firewall: Literal["nftables", "ufw"]
    ollama_origins: list[str]
    ollama_context_length: Annotated[int, Field(ge=2048, le=1048576)]
    ollama_keep_alive: str
    ollama_kv_cache_type: Literal["f16", "q8_0", "q4_0"]
    ollama_flash_attention: bool | None
    ollama_num_parallel: Annotated[int, Field(ge=1, le=64)]
    ollama_models_dir: str
    ollama_start_timeout: Annotated[int, Field(ge=5, le=3600)]

    ollama_pinned: bool
    ollama_models: list[str]
    ollama_model_variants: dict[str, ModelVariant]
    ollama_prune_models: bool
    ollama_pull_retries: Annotated[int, Field(ge=1, le=20)]

    @field_validator("ollama_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not VERSION_RE.match(value):
            raise ValueError("must be a release number like 0.32.7 (no leading v)")
        return value

    @field_validator("ollama_archive_sha256")
    @classmethod
    def _sha256(cls, value: str | None) -> str | None:
        if value is not None and not SHA256_RE.match(value):
            raise ValueError("must be 64 lowercase hex digits, as in the release's sha256sum.txt")
        return value

    @field_validator("ollama_archive_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("ollama_prefix", "ollama_models_dir")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or value.rstrip("/") == "":
            raise ValueError("must be an absolute path other than /")
        return value.rstrip("/")

    @field_validator("ollama_listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        split_listen(value)
        return value

    @field_validator("ollama_allow_from")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not a network like 192.168.1.0/24") from None
        return value

    @field_validator("ollama_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        if any("*" == origin.strip() for origin in value):
            raise ValueError('"*" lets any web page drive the API: list the origins you trust')
        return value

    @field_validator("ollama_keep_alive")
    @classmethod
    def _keep_alive(cls, value: str) -> str:
        if not KEEP_ALIVE_RE.match(value):
            raise ValueError('must be a duration like "30m", "2h", "300" (seconds) or "-1"')
        return value

    @field_validator("ollama_models")
    @classmethod
    def _models(cls, value: list[str]) -> list[str]:
        for model in value:
            if not MODEL_RE.match(model):
                raise ValueError(f"{model!r} is not an Ollama model name like qwen2.5-coder:7b")
        if len(set(value)) != len(value):
            raise ValueError("lists a model twice")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.ollama_kv_cache_type != "f16" and self.ollama_flash_attention is False:
            raise ValueError(
                f"ollama_kv_cache_type={self.ollama_kv_cache_type!r} needs flash attention:"
                " set ollama_flash_attention=True (or None), or ollama_kv_cache_type='f16'"
            )
        host, _ = split_listen(self.ollama_listen)
        if not is_loopback(host) and not self.ollama_allow_from:
            raise ValueError(
                f"ollama_listen={self.ollama_listen!r} exposes Ollama, which has no"
                " authentication: set ollama_allow_from to your client networks"
                " (e.g. ['192.168.1.0/24']) or listen on 127.0.0.1"
            )
        for name, variant in self.ollama_model_variants.items():
            if not MODEL_RE.match(name):
                raise ValueError(f"ollama_model_variants: {name!r} is not a valid model name")
            if variant.from_ not in self.ollama_models:
                raise ValueError(
                    f"ollama_model_variants[{name!r}] is made from {variant.from_!r},"
                    " which is not in ollama_models: add it there"
                )
        return self

    @property
    def listen_host(self) -> str:
        return split_listen(self.ollama_listen)[0]

    @property
    def listen_port(self) -> int:
        return split_listen(self.ollama_listen)[1]

    @property
    def api_url(self) -> str:
        """Where this host's own tools reach the API (loopback when listening on all addresses)."""
        host = self.listen_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.listen_port}"

    @property
    def exposed(self) -> bool:
        return not is_loopback(self.listen_host)
