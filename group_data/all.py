"""Every setting ollama-rig reads, with its default. pyinfra loads this file as data for all hosts.

Override per host in the inventory (`("box", {"ollama_models": [...]})`) or per group in
group_data/<group>.py. settings/ validates the merged result before any host changes; a key
that is not listed here is refused, so a typo never passes silently. README.md has the table.
"""

# --- topology and GPU -------------------------------------------------------------------
# What to build: "native" (systemd service on the host), "docker", "lxc" or "kvm".
topology = "native"
# GPU expectation: "auto" (use NVIDIA, stop if none is found), "nvidia" (require one and a
# working driver), "none" (a CPU-only install, on purpose; GPU checks are skipped).
gpu = "auto"

# --- the Ollama release -----------------------------------------------------------------
# Release to install. Changing it upgrades or downgrades on the next run.
ollama_version = "0.32.7"
# Where the release archive is downloaded from; {version} and {arch} (amd64|arm64) are filled in.
ollama_archive_url = (
    "https://github.com/ollama/ollama/releases/download/v{version}/ollama-linux-{arch}.tar.zst"
)
# sha256 of that archive. None: taken from roles/native/releases.py for known releases; an
# unknown release without a checksum is refused.
ollama_archive_sha256 = None
# A release archive on the machine running pyinfra, for hosts without internet. When set it
# is copied to the host instead of downloading ollama_archive_url; ollama_archive_sha256 still
# applies.
ollama_archive_path = None
# Install prefix: the archive's bin/ollama and lib/ollama/ land under it.
ollama_prefix = "/usr/local"

# --- the server -------------------------------------------------------------------------
# Address Ollama listens on (OLLAMA_HOST). Ollama has no authentication: anything but
# loopback needs ollama_allow_from.
ollama_listen = "127.0.0.1:11434"
# Client networks (CIDRs) admitted to the port when ollama_listen is not loopback.
ollama_allow_from: list[str] = []
# Firewall that enforces ollama_allow_from: "nftables" (its own table) or "ufw".
ollama_firewall = "nftables"
# Extra browser origins (OLLAMA_ORIGINS). "*" is refused.
ollama_origins: list[str] = []
# Context length the server gives each request (OLLAMA_CONTEXT_LENGTH). Coding agents need
# 64K; Ollama's own default on a small GPU is 4096.
ollama_context_length = 65536
# How long a model stays loaded after use (OLLAMA_KEEP_ALIVE): "30m", "2h", or "-1" for ever.
ollama_keep_alive = "30m"
# KV cache element type (OLLAMA_KV_CACHE_TYPE): "f16", "q8_0" or "q4_0". q8_0 halves the
# cache of f16 at 64K tokens; the quantized types need flash attention.
ollama_kv_cache_type = "q8_0"
# Flash attention (OLLAMA_FLASH_ATTENTION): True, False, or None for Ollama's own choice.
ollama_flash_attention = True
# Requests served at once per model (OLLAMA_NUM_PARALLEL); each gets its own KV cache.
ollama_num_parallel = 1
# Where models are stored (OLLAMA_MODELS); the official installer's place by default.
ollama_models_dir = "/usr/share/ollama/.ollama/models"
# Seconds to wait for /api/version to answer the pinned version after a (re)start.
ollama_start_timeout = 90

# --- models -----------------------------------------------------------------------------
# False: when a model would not be 100% GPU at these settings, preflight applies the sizing
# planner's fix (KV cache type, context, a smaller model) and says so. True: keep the
# settings as written and stop instead, with the reason and the options.
ollama_pinned = False
# Models to pull (Ollama tags).
ollama_models = ["qwen2.5-coder:7b"]
# Modelfile variants with a fixed context, made with `ollama create`:
# {"qwen2.5-coder-64k": {"from": "qwen2.5-coder:7b", "num_ctx": 65536}}.
ollama_model_variants: dict[str, dict] = {}
# Remove models that are on the host but not listed above. Off: nothing unlisted is deleted.
ollama_prune_models = False
# Attempts for each pull; a failed pull resumes from what was already downloaded.
ollama_pull_retries = 3
