"""Atomic file output: a reader never sees a half-written file, a crash never leaves one."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from dltm.cli import UserError


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


@contextlib.contextmanager
def staged(root: str | os.PathLike, outputs: Sequence[str | os.PathLike]) -> Iterator[Path]:
    """Write several output folders, each replaced whole or not at all.

    Yields a new scratch folder laid out like ``root``. If the block succeeds, each ``root/<output>`` (a path
    relative to ``root``, e.g. ``models/ch07_cnn1d``) is replaced by what the block wrote at
    ``<scratch>/<output>``, in the order given, by renames; an output the block did not write is removed from
    ``root``, so nothing of an earlier run stays beside it. If the block fails, ``root`` keeps its earlier
    outputs untouched. The scratch folder, ``<parent of the last output>/.<its name>.stage-<pid>-...``, is
    removed at the end; one a killed process left is removed by the next ``staged`` for the same last output.
    """
    root = Path(root)
    outputs = [Path(o) for o in outputs]
    if not outputs or any(o.is_absolute() or ".." in o.parts for o in outputs):
        raise ValueError(f"staged: outputs must be relative paths inside {root}, got {outputs}")
    last = root / outputs[-1]
    area = scratch_path(last.parent, f".{last.name}.stage-")
    area.mkdir()
    try:
        yield area
        for out in outputs:
            src, dst = area / out, root / out
            if src.exists():
                with atomic_path(dst) as tmp:
                    src.rename(tmp)
            else:
                _remove(dst)
    finally:
        _remove(area)


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


class NonFiniteValueError(UserError, ValueError):
    """A value to be written as JSON is NaN or infinite: JSON has no such numbers (Python would write ``NaN``,
    which no JSON reader accepts), and a metric that is NaN says the run went wrong."""


def non_finite(obj: Any, where: str = "") -> list[str]:
    """The keys (dotted, with ``[i]`` for list items) of the NaN and infinite floats in ``obj``."""
    if isinstance(obj, float):
        return [] if math.isfinite(obj) else [f"{where or 'value'} = {obj}"]
    if isinstance(obj, dict):
        return [k for key, v in obj.items() for k in non_finite(v, f"{where}.{key}" if where else str(key))]
    if isinstance(obj, (list, tuple)):
        return [k for i, v in enumerate(obj) for k in non_finite(v, f"{where}[{i}]")]
    return []


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as JSON, atomically. Raises :class:`NonFiniteValueError` (naming the file and the keys)
    for a NaN or infinite float anywhere in it, and writes nothing then."""
    bad = non_finite(obj)
    if bad:
        raise NonFiniteValueError(f"{path}: not written: {', '.join(bad)} (JSON has no NaN or infinity; a metric "
                                  f"that is not a finite number means the model or its data went wrong)")
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: not found (has the stage that writes it run?)") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from None
