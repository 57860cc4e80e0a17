"""How much memory is free for new tensors on a device.

CUDA: the driver's free memory plus what torch's caching allocator holds unused. CPU:
the system's available memory, capped by a container's memory limit (cgroup v2 or v1)
when that is lower.
"""

from __future__ import annotations

import os

import torch


def free_bytes(device: torch.device | str) -> int | None:
    """Memory free for new tensors on ``device`` (CUDA: the driver's free memory plus what
    torch's caching allocator holds unused; CPU: the system's available memory)."""
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return None
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + cached)
    if device.type == "cpu":
        return _host_available()
    return None


def _host_available() -> int | None:
    """Available system memory, capped by a container's memory limit (cgroup) if lower."""
    found = _system_available()
    headroom = _cgroup_headroom()
    if headroom is not None:
        found = headroom if found is None else min(found, headroom)
    return found


def _system_available() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


# cgroup v2, then v1: (limit file, usage file)
_CGROUP_FILES = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


def _cgroup_headroom() -> int | None:
    for limit_file, usage_file in _CGROUP_FILES:
        try:
            with open(limit_file) as f:
                limit = f.read().strip()
            with open(usage_file) as f:
                usage = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:  # "max" or a huge number: no limit
            return max(0, int(limit) - usage)
    return None
