"""Atomic file output: a reader never sees a half-written file, a crash never leaves one."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return False
    return True


def remove_stale(parent: str | os.PathLike, prefix: str) -> list[Path]:
    """Remove the leftovers of killed writers: entries of ``parent`` named ``<prefix><pid>-...`` whose process
    no longer runs (see :func:`scratch_path`). Entries of live processes are kept. Returns what was removed."""
    parent = Path(parent)
    removed = []
    if not parent.is_dir():
        return removed
    for entry in parent.iterdir():
        if not entry.name.startswith(prefix):
            continue
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            _remove(entry)
            removed.append(entry)
    return removed


def scratch_path(parent: str | os.PathLike, prefix: str, suffix: str = "") -> Path:
    """A new, unused path ``parent/<prefix><pid>-<random><suffix>`` (not created), after removing what killed
    processes left under the same prefix. The pid in the name tells a live writer's scratch from a dead one's."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale(parent, prefix)
    fd, name = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}-", suffix=suffix, dir=parent)
    os.close(fd)
    os.unlink(name)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    Works for files and for directories (the block creates whichever it needs). What a killed process left
    beside ``path`` is removed the next time ``path`` is written.
    """
    path = Path(path)
    tmp = scratch_path(path.parent, f".{path.name}.tmp-", suffix or ".tmp")
    _remove(path.with_name(f".{path.name}.old"))  # a replace() killed between its two renames
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written for {path}")
        replace(tmp, path)
    finally:
        _remove(tmp)


def replace(src: Path, dst: Path) -> None:
    """Move ``src`` onto ``dst``, replacing a file or a whole directory."""
    if dst.is_dir() and not dst.is_symlink():
        old = dst.with_name(f".{dst.name}.old")
        _remove(old)
        dst.rename(old)
        src.rename(dst)
        _remove(old)
    else:
        os.replace(src, dst)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink()


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    with atomic_path(path, suffix=Path(path).suffix) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: not found (has the stage that writes it run?)") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from None
