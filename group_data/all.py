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

# --- coding harnesses -------------------------------------------------------------------
# User whose coding harnesses (OpenCode, Continue, Aider, Cline) get a config for this
# server. None: no harness config is written on this host.
harness_user = None
# That user's home. None: from the host's passwd entry.
harness_home = None
# Harnesses to configure: any of "opencode", "continue", "aider", "cline".
harness_tools = ["opencode", "continue", "aider", "cline"]
# The Ollama the harnesses talk to. None: this host's own (ollama_listen). An inventory host
# name: that host's Ollama (its ollama_listen, models and context). A URL such as
# "http://gpu.lan:11434": that server, described by this host's ollama_* settings.
harness_endpoint = None
# Model for chat and agent work. None: the first of the server's ollama_models.
harness_chat_model = None
# Fill-in-the-middle model for editor autocomplete; also Aider's weak model and OpenCode's
# small_model. None: the smallest FIM-capable model (sizing/catalog.yaml) of ollama_models.
harness_autocomplete_model = None
# Context (tokens) the harnesses ask for. None: what the server gives the chat model
# (ollama_context_length, or its variant's num_ctx, capped at the model's trained context).
harness_context_length = None
# Also write the legacy Cline keys (~/.cline/data/globalState.json, Cline 3.70-3.89).
harness_cline_legacy = False

# --- docker topology --------------------------------------------------------------------
# Where the Docker engine comes from if none is installed and working: "distro" (the
# distribution's docker.io) or "docker" (Docker's apt repo: docker-ce). A working one is kept.
docker_engine_source = "distro"
# apt version of that engine package (docker.io or docker-ce), e.g. "5:27.5.1-1~debian.12~bookworm".
# None: the repository's current one.
docker_engine_version = None
# NVIDIA Container Toolkit version from NVIDIA's apt repo, e.g. "1.17.8-1". None: the newest.
docker_nvidia_toolkit_version = None
# How the container gets the GPU: "runtime" (nvidia runtime in daemon.json, a device request
# like `--gpus`) or "cdi" (`nvidia-ctk cdi generate`, `--device nvidia.com/gpu=...`; Docker 25+).
docker_gpu_mode = "runtime"
# GPUs the container gets: "all", or a list of nvidia-smi indexes or UUIDs (["0"], ["GPU-3c1b..."]).
docker_gpus = "all"
# Make nvidia Docker's default runtime ("default-runtime" in daemon.json). False: the current
# default is left as it is.
docker_default_runtime_nvidia = False
# Run Docker with the cgroupfs cgroup driver: the fix for containers that lose the GPU after a
# `systemctl daemon-reload` under the systemd driver (FACTS.md section 6).
docker_cgroupfs = False
# The Ollama image, pinned by tag or digest; "{version}" is filled in with ollama_version.
docker_image = "ollama/ollama:{version}"
# A `docker save` archive of docker_image on the machine running pyinfra, for hosts that cannot
# pull: copied over and `docker load`ed when the image is missing. None: `docker pull`.
docker_image_archive = None
# Name of the Ollama container.
docker_container = "ollama"
# Where the container keeps models (and Ollama's key pair, /root/.ollama): a named volume
# ("ollama") or an absolute host path. Recreating the container keeps it.
docker_models = "ollama"
# Restart policy: "unless-stopped", "always", "on-failure" or "no".
docker_restart = "unless-stopped"
# Extra container environment (HTTPS_PROXY for pulls behind a proxy, OLLAMA_DEBUG). The
# OLLAMA_* variables set by the ollama_* settings above are refused here.
docker_env: dict[str, str] = {}

# --- kvm topology -----------------------------------------------------------------------
# PCI address of the GPU to pass through, e.g. "0000:01:00.0" (`lspci -D`). None: the only
# NVIDIA GPU on the host. Every function of its slot (the audio one too) goes to the VM.
kvm_gpu_address = None
# Bind the GPU even when it is the boot VGA device (it drives the host console, which then
# goes dark). Off: refused, with the reason.
kvm_allow_boot_vga = False
# Reboot when passthrough needs it: the hypervisor for the kernel parameters or the vfio
# binding; with kvm_guest the VM for its new NVIDIA driver. Off: the run stops with
# "reboot required"; reboot yourself and run again.
kvm_allow_reboot = False
# The way back: remove the vfio binding files and rebuild the initramfs, so the host driver
# (nvidia) takes the GPU again at the next boot. The IOMMU kernel parameters are kept.
kvm_restore_host_driver = False
# What defines the VM: "libvirt" (templates/kvm/domain.xml.j2) or "proxmox" (`qm set`).
kvm_vm_manager = "libvirt"
# Name of the VM (libvirt domain name; the Proxmox VM's name).
kvm_vm_name = "ollama"
# Proxmox VM id (`qm list`); needed with kvm_vm_manager="proxmox". None with libvirt.
kvm_vm_id = None
# Memory of the VM in MiB; the models live in the GPU, this holds the OS and Ollama.
kvm_vm_memory_mib = 16384
# vCPUs of the VM (CPU model always host-passthrough / "host": AVX for Ollama).
kvm_vm_vcpus = 8
# The VM's disk image (qcow2) for libvirt.
kvm_vm_disk = "/var/lib/libvirt/images/ollama.qcow2"
# The libvirt network the VM's virtio NIC joins.
kvm_vm_network = "default"
# OVMF firmware file for libvirt, e.g. "/usr/share/OVMF/OVMF_CODE_4M.fd". None: libvirt picks
# the UEFI firmware itself (`<os firmware='efi'>`).
kvm_ovmf_loader = None
# Define the VM (libvirt: `virsh define` of the rendered domain; proxmox: `qm set` on the
# existing VM kvm_vm_id) once vfio-pci holds the GPU. Off: the host is prepared, the VM is yours.
kvm_define_vm = True
# This host is the VM of the kvm topology (an inventory entry of its own, topology "native"):
# the NVIDIA driver is installed from the distribution's packages (Debian: contrib non-free
# non-free-firmware merged into the APT sources; Ubuntu: restricted), then Ollama. A driver
# already in use (nvidia-smi sees the GPU) is kept unless kvm_guest_driver_version is set.
kvm_guest = False
# Ubuntu guests: the server driver branch (nvidia-headless-<branch>-server). 580: the server
# branch Ubuntu 22.04 and 24.04 now ship (535 and 565 became transitional packages to it).
kvm_guest_driver_branch = "580"
# apt version of the guest's driver metapackage (nvidia-driver on Debian, the branch's
# packages on Ubuntu), e.g. "535.261.03-1". None: the repository's current one.
kvm_guest_driver_version = None

# --- lxc topology -----------------------------------------------------------------------
# Which container manager: "proxmox" (/etc/pve/lxc/<id>.conf, pct) or "lxd" (LXD or Incus,
# through pylxd).
lxc_platform = "proxmox"
# Proxmox: the container's id (`pct list`). Needed with topology "lxc" on Proxmox.
lxc_vmid = None
# LXD/Incus: the instance's name. Needed with topology "lxc" on LXD/Incus.
lxc_instance = None
# LXD/Incus: where pylxd reaches it, a unix socket path (Incus: "/var/lib/incus/unix.socket") or
# "https://host:8443". None: the socket of the machine running pyinfra (run the host as @local).
lxc_lxd_endpoint = None
# How Proxmox passes the devices: "mount" (cgroup2 rules + lxc.mount.entry), "dev" (devN
# entries, Proxmox VE 8.1+), or "auto" (dev where the node's pve-manager is 8.1+, else mount).
lxc_device_style = "auto"
# GPUs the container gets: "all", or a list: /dev/nvidiaN indexes on Proxmox (["0"]); DRM card
# ids or PCI addresses on LXD/Incus (["0000:01:00.0"]).
lxc_gpus = "all"
# Also pass /dev/nvidia-caps and its major (MIG instances need it).
lxc_mig = False
# Proxmox "dev" style: group id the device nodes get inside the container. None: as on the host.
lxc_dev_gid = None
# Proxmox: create the container from this template if it does not exist, e.g.
# "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst". None: it must exist already.
lxc_create_template = None
# Further `pct create` options, names without "--": {"hostname": "ollama", "memory": "8192",
# "rootfs": "local-lvm:16", "net0": "name=eth0,bridge=vmbr0,ip=dhcp"}.
lxc_create_options: dict[str, str] = {}
# Where the container gets NVIDIA-Linux-x86_64-<version>.run; {version} = the host's driver.
lxc_driver_run_url = (
    "https://download.nvidia.com/XFree86/Linux-x86_64/{version}/NVIDIA-Linux-x86_64-{version}.run"
)
# sha256 of that .run file; required to install the container's libraries (no checksum, no
# install).
lxc_driver_run_sha256 = None
# A downloaded NVIDIA-Linux-<arch>-<version>.run on the machine running pyinfra, copied into
# the container instead of downloading lxc_driver_run_url (offline containers). None: download.
lxc_driver_run_path = None
# This host is the container of the lxc topology (an inventory entry of its own, topology
# "native"): preflight accepts that it sees no GPU PCI function, and the NVIDIA libraries of
# the host's driver version are installed before Ollama.
lxc_guest = False
