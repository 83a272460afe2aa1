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
# apt versions: [epoch:]upstream[-revision] ("5:27.5.1-1~debian.12~bookworm", "1.17.8-1").
APT_VERSION_RE = re.compile(r"^([0-9]+:)?[0-9][A-Za-z0-9.+~-]*$")
# nvidia-smi's index or UUID (GPU-..., MIG-...), as `--gpus device=` and CDI names take them.
GPU_ID_RE = re.compile(r"^([0-9]+|(GPU|MIG)-[0-9a-fA-F-]+)$")
# [registry[:port]/]path[:tag][@sha256:digest]; "{version}" in the tag is filled in later.
IMAGE_RE = re.compile(
    r"^(?P<name>[a-z0-9]+([._/-][a-z0-9]+)*|[A-Za-z0-9.-]+(:[0-9]+)?/[a-z0-9]+([._/-][a-z0-9]+)*)"
    r"(:(?P<tag>[A-Za-z0-9_{}][A-Za-z0-9_.{}-]{0,127}))?(?P<digest>@sha256:[0-9a-f]{64})?$"
)
# Docker's container and volume names.
CONTAINER_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A PCI function with its domain, as `lspci -D` and sysfs name it.
PCI_ADDRESS_RE = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")
# The container's environment that the ollama_* settings set (roles/native/plan.py).
DOCKER_MANAGED_ENV = frozenset(
    {
        "OLLAMA_HOST",
        "OLLAMA_CONTEXT_LENGTH",
        "OLLAMA_KEEP_ALIVE",
        "OLLAMA_KV_CACHE_TYPE",
        "OLLAMA_NUM_PARALLEL",
        "OLLAMA_MODELS",
        "OLLAMA_FLASH_ATTENTION",
        "OLLAMA_ORIGINS",
    }
)


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

    docker_engine_source: Literal["distro", "docker"]
    docker_engine_version: str | None
    docker_nvidia_toolkit_version: str | None
    docker_gpu_mode: Literal["runtime", "cdi"]
    docker_gpus: str | list[str]
    docker_default_runtime_nvidia: bool
    docker_cgroupfs: bool
    docker_image: str
    docker_image_archive: str | None
    docker_container: str
    docker_models: str
    docker_restart: Literal["unless-stopped", "always", "on-failure", "no"]
    docker_env: dict[str, str]

    harness_user: str | None
    harness_home: str | None
    harness_tools: list[Literal["opencode", "continue", "aider", "cline"]]
    harness_endpoint: str | None
    harness_chat_model: str | None
    harness_autocomplete_model: str | None
    harness_context_length: Annotated[int, Field(ge=2048, le=1048576)] | None
    harness_cline_legacy: bool

    kvm_gpu_address: str | None
    kvm_allow_boot_vga: bool
    kvm_allow_reboot: bool
    kvm_restore_host_driver: bool
    kvm_vm_manager: Literal["libvirt", "proxmox"]
    kvm_vm_name: str
    kvm_vm_id: Annotated[int, Field(ge=100, le=999999999)] | None
    kvm_vm_memory_mib: Annotated[int, Field(ge=1024, le=16777216)]
    kvm_vm_vcpus: Annotated[int, Field(ge=1, le=512)]
    kvm_vm_disk: str
    kvm_vm_network: str
    kvm_ovmf_loader: str | None
    kvm_define_vm: bool

    lxc_platform: Literal["proxmox", "lxd"]
    lxc_vmid: Annotated[int, Field(ge=100, le=999999999)] | None
    lxc_instance: str | None
    lxc_lxd_endpoint: str | None
    lxc_device_style: Literal["auto", "mount", "dev"]
    lxc_gpus: Literal["all"] | list[str]
    lxc_mig: bool
    lxc_dev_gid: Annotated[int, Field(ge=0, le=4294967294)] | None
    lxc_create_template: str | None
    lxc_create_options: dict[str, str]
    lxc_driver_run_url: str
    lxc_driver_run_sha256: str | None
    lxc_driver_run_path: str | None
    lxc_guest: bool

    kvm_guest: bool
    kvm_guest_driver_branch: str
    kvm_guest_driver_version: str | None

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

    @field_validator("harness_user")
    @classmethod
    def _harness_user(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[a-z_][a-z0-9_.-]*$", value):
            raise ValueError("must be a login name like 'dev'")
        return value

    @field_validator("harness_home")
    @classmethod
    def _harness_home(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("/") or value.rstrip("/") == ""):
            raise ValueError("must be an absolute path other than /")
        return None if value is None else value.rstrip("/")

    @field_validator("harness_tools")
    @classmethod
    def _harness_tools(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists a harness twice")
        return value

    @field_validator("harness_endpoint")
    @classmethod
    def _harness_endpoint(cls, value: str | None) -> str | None:
        """None, a base URL (http://gpu.lan:11434), or the inventory name of the Ollama host."""
        if value is None:
            return value
        if "://" not in value:
            if not re.match(r"^@?[A-Za-z0-9][A-Za-z0-9._/:@-]*$", value):
                raise ValueError("must be a URL like http://gpu.lan:11434 or an inventory host")
            return value
        if not re.match(r"^https?://[^/\s]+/?$", value):
            raise ValueError(
                "must be the server's base URL like http://gpu.lan:11434"
                " (no path: /v1 is added for OpenCode)"
            )
        return value.rstrip("/")

    @field_validator("harness_chat_model", "harness_autocomplete_model")
    @classmethod
    def _harness_model(cls, value: str | None) -> str | None:
        if value is not None and not MODEL_RE.match(value):
            raise ValueError(f"{value!r} is not an Ollama model name like qwen2.5-coder:7b")
        return value

    @field_validator("docker_engine_version", "docker_nvidia_toolkit_version")
    @classmethod
    def _apt_version(cls, value: str | None) -> str | None:
        if value is not None and not APT_VERSION_RE.match(value):
            raise ValueError("must be an apt version as `apt-cache policy` shows it, e.g. 1.17.8-1")
        return value

    @field_validator("docker_gpus")
    @classmethod
    def _docker_gpus(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str) or not value or len(set(value)) != len(value):
            if value == "all":
                return value
            raise ValueError('must be "all" or a list of distinct GPU indexes or UUIDs')
        for gpu in value:
            if not GPU_ID_RE.match(gpu):
                raise ValueError(f"{gpu!r} is not a GPU index (0) or UUID (GPU-3c1b...)")
        return value

    @field_validator("docker_image")
    @classmethod
    def _docker_image(cls, value: str) -> str:
        match = IMAGE_RE.match(value)
        if not match:
            raise ValueError("must be an image reference like ollama/ollama:{version}")
        if not match.group("digest") and match.group("tag") in (None, "latest"):
            raise ValueError("must be pinned: a version tag or @sha256:<digest>, never latest")
        return value

    @field_validator("docker_container")
    @classmethod
    def _docker_container(cls, value: str) -> str:
        if not CONTAINER_RE.match(value):
            raise ValueError("must be a container name like ollama (letters, digits, _ . -)")
        return value

    @field_validator("docker_models")
    @classmethod
    def _docker_models(cls, value: str) -> str:
        if value.startswith("/"):
            if value.rstrip("/") == "":
                raise ValueError("must be a volume name or an absolute path other than /")
            return value.rstrip("/")
        if not CONTAINER_RE.match(value):
            raise ValueError("must be a volume name like ollama or an absolute host path")
        return value

    @field_validator("docker_env")
    @classmethod
    def _docker_env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not ENV_NAME_RE.match(key):
                raise ValueError(f"{key!r} is not an environment variable name")
            if key in DOCKER_MANAGED_ENV:
                raise ValueError(f"{key} comes from the ollama_* settings: set it there")
        return value

    @model_validator(mode="after")
    def _docker_consistent(self) -> Settings:
        if self.topology != "docker":
            return self
        try:
            ipaddress.ip_address(self.listen_host)
        except ValueError:
            raise ValueError(
                f"ollama_listen={self.ollama_listen!r}: Docker publishes ports on an IP address:"
                " use 127.0.0.1:PORT (or an address of this host)"
            ) from None
        if self.exposed and self.ollama_firewall == "ufw":
            raise ValueError(
                "ollama_firewall='ufw' does not filter ports Docker publishes (they bypass ufw's"
                " chains): use ollama_firewall='nftables' with topology='docker'"
            )
        if self.docker_image_archive is not None and "@" in self.docker_image:
            raise ValueError(
                f"docker_image={self.docker_image!r} pins a digest, which `docker load` does not"
                " restore: with docker_image_archive pin a tag (ollama/ollama:{version})"
            )
        return self

    @field_validator("kvm_gpu_address")
    @classmethod
    def _kvm_gpu_address(cls, value: str | None) -> str | None:
        if value is not None and not PCI_ADDRESS_RE.match(value):
            raise ValueError("must be a PCI address like 0000:01:00.0 (as `lspci -D` shows it)")
        return None if value is None else value.lower()

    @field_validator("kvm_vm_name", "kvm_vm_network")
    @classmethod
    def _kvm_name(cls, value: str) -> str:
        if not CONTAINER_RE.match(value):
            raise ValueError("must be a libvirt name like ollama (letters, digits, _ . -)")
        return value

    @field_validator("kvm_vm_disk", "kvm_ovmf_loader")
    @classmethod
    def _kvm_path(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^/[A-Za-z0-9._/+-]+$", value):
            raise ValueError("must be an absolute path (letters, digits, . _ / + -)")
        return value

    @model_validator(mode="after")
    def _kvm_consistent(self) -> Settings:
        if self.topology == "kvm" and self.kvm_vm_manager == "proxmox" and self.kvm_vm_id is None:
            raise ValueError("kvm_vm_manager='proxmox' needs kvm_vm_id, the VM's id (qm list)")
        return self

    @field_validator("kvm_guest_driver_branch")
    @classmethod
    def _kvm_guest_driver_branch(cls, value: str) -> str:
        # Ubuntu names its server driver packages by branch: nvidia-headless-580-server.
        if not re.fullmatch(r"[0-9]{3}", value):
            raise ValueError('must be an NVIDIA driver branch like "580" (three digits)')
        return value

    @field_validator("kvm_guest_driver_version")
    @classmethod
    def _kvm_guest_driver_version(cls, value: str | None) -> str | None:
        if value is not None and not APT_VERSION_RE.match(value):
            raise ValueError(
                "must be an apt version as `apt-cache policy` shows it, e.g. 535.261.03-1"
            )
        return value

    @model_validator(mode="after")
    def _kvm_guest_consistent(self) -> Settings:
        if not self.kvm_guest:
            return self
        if self.topology != "native":
            raise ValueError(
                "kvm_guest=True marks the VM of the kvm topology, which runs Ollama the native"
                " way: set topology='native' on it (topology='kvm' is its hypervisor's)"
            )
        if self.lxc_guest:
            raise ValueError("kvm_guest and lxc_guest are both True: a host is one or the other")
        if self.gpu == "none":
            raise ValueError(
                "kvm_guest=True installs the NVIDIA driver for the GPU passed through to this VM,"
                " and gpu='none' asks for no GPU: set gpu='nvidia' (or kvm_guest=False)"
            )
        return self

    @field_validator("lxc_gpus")
    @classmethod
    def _lxc_gpus(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list):
            if not value:
                raise ValueError('must be "all" or a non-empty list of GPUs')
            for gpu in value:
                if not (gpu.isdigit() or PCI_ADDRESS_RE.match(gpu)):
                    raise ValueError(f"{gpu!r} is neither a GPU index nor a PCI address")
        return value

    @field_validator("lxc_instance")
    @classmethod
    def _lxc_instance(cls, value: str | None) -> str | None:
        # LXD instance names: letters, digits and dashes, not starting with a digit or dash.
        if value is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,62}", value):
            raise ValueError("must be an LXD/Incus instance name (letters, digits, -)")
        return value

    @field_validator("lxc_lxd_endpoint")
    @classmethod
    def _lxc_lxd_endpoint(cls, value: str | None) -> str | None:
        # pylxd's Client(endpoint=...): a unix socket path, or an https:// URL (pylxd client.py).
        if value is not None and not (value.startswith("/") or value.startswith("https://")):
            raise ValueError("must be LXD's unix socket path (/...) or its https:// URL")
        return value

    @field_validator("lxc_create_options")
    @classmethod
    def _lxc_create_options(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.fullmatch(r"[a-z][a-z0-9-]*", key) or key in ("vmid", "ostemplate"):
                raise ValueError(f"{key!r} is not a `pct create` option name (without --)")
        return value

    @field_validator("lxc_driver_run_url")
    @classmethod
    def _lxc_driver_run_url(cls, value: str) -> str:
        if not value.startswith("https://") or "{version}" not in value:
            raise ValueError("must be an https:// URL with {version} in it")
        return value

    @field_validator("lxc_driver_run_sha256")
    @classmethod
    def _lxc_driver_run_sha256(cls, value: str | None) -> str | None:
        if value is not None and not SHA256_RE.match(value):
            raise ValueError("must be 64 lowercase hex digits (sha256sum of the .run file)")
        return value

    @model_validator(mode="after")
    def _lxc_consistent(self) -> Settings:
        if self.lxc_guest and self.topology != "native":
            raise ValueError(
                "lxc_guest=True marks the container of the lxc topology, which runs Ollama the"
                " native way: set topology='native' on it (topology='lxc' is its host's)"
            )
        if self.topology != "lxc":
            return self
        if self.lxc_platform == "proxmox" and self.lxc_vmid is None:
            raise ValueError("lxc_platform='proxmox' needs lxc_vmid, the container's id (pct list)")
        if self.lxc_platform == "lxd" and self.lxc_instance is None:
            raise ValueError("lxc_platform='lxd' needs lxc_instance, the instance's name")
        if self.lxc_platform == "proxmox" and isinstance(self.lxc_gpus, list):
            if not all(gpu.isdigit() for gpu in self.lxc_gpus):
                raise ValueError("on Proxmox, lxc_gpus are /dev/nvidiaN indexes such as ['0']")
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
