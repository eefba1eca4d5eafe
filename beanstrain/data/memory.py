"""How much memory this process can still allocate, so a draw too large for it is refused up front.

    >>> available_memory() > 0
    True
    >>> format_bytes(32 * 2**30), format_bytes(3 * 2**20)
    ('32.0 GiB', '3.0 MiB')
"""

from __future__ import annotations

import contextlib
import os

# Where Linux says how much memory a new allocation can get without swapping or killing anything.
MEMINFO = "/proc/meminfo"
# A cgroup v2 limit (a container's memory) can be lower than what the machine has free.
CGROUP_MEMORY = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current")


def available_memory() -> int | None:
    """Bytes this process can still allocate: MemAvailable, within any cgroup limit; None when unknown."""
    candidates = [_meminfo_available(), _cgroup_headroom()]
    if candidates[0] is None:
        # Not Linux: the free physical pages, where the system reports them.
        with contextlib.suppress(AttributeError, ValueError, OSError):
            candidates[0] = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    known = [value for value in candidates if value is not None and value > 0]
    return min(known) if known else None


def _meminfo_available() -> int | None:
    try:
        with open(MEMINFO, encoding="ascii") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the number is in kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_headroom() -> int | None:
    try:
        with open(CGROUP_MEMORY[0], encoding="ascii") as limit, open(CGROUP_MEMORY[1], encoding="ascii") as used:
            limit_text, used_text = limit.read().strip(), used.read().strip()
        return None if limit_text == "max" else int(limit_text) - int(used_text)
    except (OSError, ValueError):
        return None


def format_bytes(size: int) -> str:
    """A size as a person reads it: in GiB from one GiB up, else in MiB."""
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.1f} MiB"
