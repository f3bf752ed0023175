"""What a hostile or broken download cannot do: write outside the target (links, '..', links on disk), leave a
killed fetch's scratch folder behind, or hide which mirror file or URL was at fault."""

import hashlib
import http.server
import io
import json
import os
import signal
import stat
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest

from dltm import cli, datasets
from dltm.datasets import ChecksumError, Dataset, DatasetError, Source, UnsafeArchiveError, safe_extract
from stages import download

from .conftest import REPO

IMDB_MIRROR = "imdb/aclImdb_v1_labeled.tar.gz"  # the registry's mirror entry for imdb
IMDB_FILES = [("aclImdb/README", "file", b"readme\n"), ("aclImdb/imdb.vocab", "file", b"the\nfilm\n")]


def _tar(path: Path, members: list[tuple[str, str, bytes | str]]) -> Path:
    """A tar.gz of (name, kind, data or link target) in this order; kind is file, dir, sym, hard or fifo."""
    types = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE}
    with tarfile.open(path, "w:gz") as tf:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                tf.addfile(info, io.BytesIO(value))
                continue
            info.type = types[kind]
            if kind in ("sym", "hard"):
                info.linkname = value
            tf.addfile(info)
    return path


def _zip(path: Path, members: list[tuple[str, str, bytes | str]]) -> Path:
    """A zip of (name, kind, data or link target); kind is file or sym (a Unix symlink entry)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, kind, value in members:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            mode = stat.S_IFLNK | 0o777 if kind == "sym" else stat.S_IFREG | 0o644
            info.external_attr = mode << 16
            zf.writestr(info, value)
    return path


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _imdb_mirror(tmp_path: Path, monkeypatch, members) -> Path:
    """A mirror holding ``members`` as imdb's archive, its checksum given through DLTM_EXPECTED_SHA256."""
    mirror = tmp_path / "mirror"
    (mirror / "imdb").mkdir(parents=True)
    archive = _tar(mirror / IMDB_MIRROR, members)
    sums = tmp_path / "sums.json"
    sums.write_text(json.dumps({"imdb": {IMDB_MIRROR: datasets.sha256_file(archive)}}))
    monkeypatch.setenv(datasets.EXPECTED_ENV, str(sums))
    return mirror


# ------------------------------------------------------------------ 1. links: refused, never followed on disk


ATTACK = [("aclImdb/a", "sym", "."), ("aclImdb/a/a/a/a/a/a/b", "sym", "../../../../../../.."),
          ("aclImdb/a/a/a/a/a/a/b/x.txt", "file", b"outside\n")]


def test_link_chain_through_fetch_writes_nothing_outside_and_names_the_link(tmp_path, monkeypatch):
    mirror = _imdb_mirror(tmp_path, monkeypatch, IMDB_FILES + ATTACK)
    raw = tmp_path / "d1" / "d2" / "d3" / "d4" / "d5" / "d6" / "d7" / "raw"  # deep: every '..' stays in tmp_path
    with pytest.raises(UnsafeArchiveError) as e:
        datasets.fetch("imdb", raw / "imdb", mirror=mirror)
    assert "'aclImdb/a'" in str(e.value) and str(mirror / IMDB_MIRROR) in str(e.value)
    assert list(tmp_path.rglob("x.txt")) == []
    assert list(raw.iterdir()) == []  # no dataset folder, no scratch folder


def test_stage_refuses_the_link_chain_with_one_line_and_status_2(tmp_path, monkeypatch, capsys):
    mirror = _imdb_mirror(tmp_path, monkeypatch, IMDB_FILES + ATTACK)
    out = tmp_path / "d1" / "d2" / "d3" / "d4" / "d5" / "d6" / "d7" / "raw" / "imdb"
    assert cli.run(download.main, ["imdb", "--mirror", str(mirror), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: imdb: ") and "'aclImdb/a'" in err and err.count("\n") == 1
    assert list(tmp_path.rglob("x.txt")) == []


@pytest.mark.parametrize("members, link", [
    (ATTACK, "aclImdb/a"),  # a chain: each link looks harmless on its own
    ([("d/x", "file", b"x"), ("d/l1", "sym", "l2"), ("d/l2", "sym", "../..")], "d/l1"),  # a link to a link
    ([("d/l", "sym", "../../outside"), ("d/l", "file", b"x")], "d/l"),  # a link replaced by a file of its name
    ([("d/f", "file", b"x"), ("d/l", "sym", "f"), ("d/l", "file", b"y")], "d/l"),
    ([("d/sub/f", "file", b"x"), ("d/l", "sym", "sub"), ("d/l/g", "file", b"y")], "d/l"),  # a file through one
    ([("d/f", "file", b"x"), ("d/h", "hard", "d/f")], "d/h"),  # a hard link, even to a member
    ([("d/f", "file", b"x"), ("d/alias", "sym", "f")], "d/alias"),  # an inner link: no dataset needs one
    ([("d/p", "fifo", "")], "d/p"),
])
def test_tar_with_any_link_is_refused_before_anything_is_written(tmp_path, members, link):
    archive = _tar(tmp_path / "bad.tar.gz", members)
    out = tmp_path / "a" / "b" / "out"
    out.mkdir(parents=True)
    with pytest.raises(UnsafeArchiveError) as e:
        safe_extract(archive, out, {"": ""}, "toy", origin="http://example.org/bad.tar.gz")
    assert f"member {link!r}" in str(e.value) and "toy: http://example.org/bad.tar.gz" in str(e.value)
    assert _files_under(tmp_path) == ["a", "a/b", "a/b/out", "bad.tar.gz"]


@pytest.mark.parametrize("members, link", [
    ([("d/f", "file", b"x"), ("d/l", "sym", "../../outside")], "d/l"),
    ([("d/l", "sym", "."), ("d/l/l/x", "file", b"x")], "d/l"),
    ([("d/f", "file", b"x"), ("d/alias", "sym", "f")], "d/alias"),
])
def test_zip_with_any_link_is_refused_before_anything_is_written(tmp_path, members, link):
    archive = _zip(tmp_path / "bad.zip", members)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UnsafeArchiveError, match=f"member {link!r} is a symbolic link"):
        safe_extract(archive, out, {"": ""})
    assert _files_under(tmp_path) == ["bad.zip", "out"]


@pytest.mark.parametrize("make", ["tar", "zip"])
def test_a_name_that_is_both_a_file_and_a_folder_is_refused(tmp_path, make):
    members = [("d/a", "file", b"x"), ("d/a/b", "file", b"y")]
    archive = _tar(tmp_path / "bad.tar.gz", members) if make == "tar" else _zip(tmp_path / "bad.zip", members)
    (tmp_path / "out").mkdir()
    with pytest.raises(UnsafeArchiveError, match="member 'd/a' is both a file and a folder"):
        safe_extract(archive, tmp_path / "out", {"": ""})
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("on_disk, rel", [("d", "d/f.txt"), ("d/f.txt", "d/f.txt")])
def test_writing_never_follows_a_link_already_on_disk(tmp_path, on_disk, rel):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_bytes(b"victim")
    out = tmp_path / "out"
    (out / "d").mkdir(parents=True)
    if on_disk == "d":
        (out / "d").rmdir()
        (out / "d").symlink_to(outside)
    else:
        (out / "d" / "f.txt").symlink_to(outside / "f.txt")
    archive = _tar(tmp_path / "ok.tar.gz", [(rel, "file", b"written")])
    with pytest.raises(UnsafeArchiveError, match="member 'd/f.txt'.*a link"):
        safe_extract(archive, out, {"": ""})
    assert (outside / "f.txt").read_bytes() == b"victim" and _files_under(outside) == ["f.txt"]


# ------------------------------------------------------------------ 2. a killed fetch's scratch folder


def _toy_mirror(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "mirror" / "toy").mkdir(parents=True)
    (tmp_path / "mirror" / "toy" / "a.txt").write_bytes(b"a\n")
    ds = Dataset("toy", "toy", sources=(), files={"a.txt": hashlib.sha256(b"a\n").hexdigest()},
                 mirror=(Source("toy/a.txt"),), format="x", license="x", citation="x")
    monkeypatch.setitem(datasets.REGISTRY, "toy", ds)
    return tmp_path / "mirror"


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_next_fetch_removes_scratch_of_dead_fetches_and_keeps_live_ones(tmp_path, monkeypatch):
    mirror = _toy_mirror(tmp_path, monkeypatch)
    raw = tmp_path / "raw"
    live = subprocess.Popen(["sleep", "60"])
    try:
        dead = raw / f".toy.download-{_dead_pid()}-k2j3h4_x"
        kept = [raw / f".toy.download-{live.pid}-abcdefgh", raw / f".mr.download-{_dead_pid()}-abcdefgh"]
        old = raw / ".toy.download-q8w_e7r2"  # what versions before the pid in the name left
        for folder in [dead, old] + kept:
            (folder / "out").mkdir(parents=True)
            (folder / "src0").write_bytes(b"x" * 1000)
        datasets.fetch("toy", raw / "toy", mirror=mirror)
        assert sorted(p.name for p in raw.iterdir()) == sorted([p.name for p in kept] + ["toy"])
    finally:
        live.kill()
        live.wait()


KILLED_FETCH = """
import sys, time
from pathlib import Path
from dltm import datasets
real = datasets._write_inside
def write_then_hang(*args):
    real(*args)
    Path(sys.argv[3]).touch()
    time.sleep(120)
datasets._write_inside = write_then_hang
datasets.fetch("imdb", sys.argv[1], mirror=sys.argv[2])
"""


def test_fetch_killed_mid_extraction_is_cleaned_by_the_next_fetch(tmp_path, monkeypatch):
    mirror = _imdb_mirror(tmp_path, monkeypatch, IMDB_FILES)
    raw = tmp_path / "raw"
    marker = tmp_path / "one-member-written"
    child = subprocess.Popen([sys.executable, "-c", KILLED_FETCH, str(raw / "imdb"), str(mirror), str(marker)],
                             cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the child fetch never reached extraction"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    [left] = raw.iterdir()
    assert left.name.startswith(f".imdb.download-{child.pid}-")
    assert (left / "out" / "aclImdb" / "README").read_bytes() == b"readme\n"
    datasets.fetch("imdb", raw / "imdb", mirror=mirror)
    assert [p.name for p in raw.iterdir()] == ["imdb"]
    assert (raw / "imdb" / "aclImdb" / "imdb.vocab").read_bytes() == b"the\nfilm\n"


# ------------------------------------------------------------------ 3. errors name the mirror file or URL


class _Serve(http.server.BaseHTTPRequestHandler):
    payload = b""

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Serve)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()


def _payload(case: str, tmp_path: Path) -> bytes:
    good = [("d/a.txt", "file", b"a\n"), ("d/big.bin", "file", os.urandom(300_000))]
    if case == "unreadable":
        return b"<html>not found</html>"
    if case == "truncated":
        data = _tar(tmp_path / "t.tar.gz", good).read_bytes()
        return data[: len(data) // 2]
    if case == "unsafe":
        return _tar(tmp_path / "t.tar.gz", good + [("d/l", "sym", "..")]).read_bytes()
    if case == "missing":
        return _tar(tmp_path / "t.tar.gz", good[1:]).read_bytes()
    return _tar(tmp_path / "t.tar.gz", good).read_bytes()  # checksum, file checksum


@pytest.mark.parametrize("where", ["mirror", "url"])
@pytest.mark.parametrize("case, error, match", [
    ("checksum", ChecksumError, "sha256 mismatch for {origin}: expected 0000"),
    ("unreadable", DatasetError, "toy: {origin}: not a readable zip or tar archive"),
    ("truncated", DatasetError, "toy: {origin}: not a readable zip or tar archive"),
    ("unsafe", UnsafeArchiveError, "toy: {origin}: member 'd/l' is a symbolic link"),
    ("missing", DatasetError, "expected file a.txt is missing after download: it is not in {origin}"),
    ("file checksum", ChecksumError, "sha256 mismatch for a.txt \\(from {origin}\\): expected 1111"),
])
def test_errors_name_the_mirror_file_or_url_not_the_scratch_copy(tmp_path, monkeypatch, server, where, case,
                                                                 error, match):
    payload = _payload(case, tmp_path)
    (tmp_path / "mirror" / "toy").mkdir(parents=True)
    (tmp_path / "mirror" / "toy" / "d.tar.gz").write_bytes(payload)
    _Serve.payload = payload
    origin = str(tmp_path / "mirror" / "toy" / "d.tar.gz") if where == "mirror" else f"{server}/toy/d.tar.gz"
    kw = {"sha256": "0" * 64 if case == "checksum" else None, "extract": {"d/": ""}}
    ds = Dataset("toy", "toy", sources=(Source(f"{server}/toy/d.tar.gz", **kw),),
                 mirror=(Source("toy/d.tar.gz", **kw),), files={"a.txt": "1" * 64 if case == "file checksum" else None},
                 format="x", license="x", citation="x")
    monkeypatch.setitem(datasets.REGISTRY, "toy", ds)
    monkeypatch.delenv(datasets.MIRROR_ENV, raising=False)
    with pytest.raises(error, match=match.format(origin=origin.replace(".", r"\."))) as e:
        datasets.fetch("toy", tmp_path / "raw" / "toy", mirror=tmp_path / "mirror" if where == "mirror" else None)
    assert "src0" not in str(e.value) and str(e.value).startswith("toy: ")
    assert list((tmp_path / "raw").iterdir()) == []


# ------------------------------------------------------------------ the rest of fetch: mirror entries, save_as


def _one_source(monkeypatch, src: Source, files: dict[str, str | None]) -> None:
    ds = Dataset("toy", "toy", sources=(), mirror=(src,), files=files, format="x", license="x", citation="x")
    monkeypatch.setitem(datasets.REGISTRY, "toy", ds)


def test_mirror_entry_that_is_a_folder_is_named(tmp_path, monkeypatch):
    (tmp_path / "m" / "toy" / "a.txt").mkdir(parents=True)
    _one_source(monkeypatch, Source("toy/a.txt"), {"a.txt": None})
    with pytest.raises(DatasetError, match=r"toy: .*/m/toy/a\.txt in the mirror .* is a folder, not a file"):
        datasets.fetch("toy", tmp_path / "raw" / "toy", mirror=tmp_path / "m")


def test_mirror_entry_that_is_a_link_is_followed_and_a_broken_one_named(tmp_path, monkeypatch):
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "a.txt").write_bytes(b"a\n")
    (tmp_path / "m" / "toy").mkdir(parents=True)
    (tmp_path / "m" / "toy" / "a.txt").symlink_to(tmp_path / "store" / "a.txt")
    _one_source(monkeypatch, Source("toy/a.txt"), {"a.txt": hashlib.sha256(b"a\n").hexdigest()})
    datasets.fetch("toy", tmp_path / "raw" / "toy", mirror=tmp_path / "m")
    assert (tmp_path / "raw" / "toy" / "a.txt").read_bytes() == b"a\n"
    assert not (tmp_path / "raw" / "toy" / "a.txt").is_symlink()
    (tmp_path / "store" / "a.txt").unlink()
    with pytest.raises(DatasetError, match=r"m/toy/a\.txt in the mirror .* is a broken link"):
        datasets.fetch("toy", tmp_path / "raw" / "toy", mirror=tmp_path / "m")


@pytest.mark.parametrize("url", ["../outside/a.txt", "toy/../../outside/a.txt", "/etc/hostname"])
def test_mirror_entry_outside_the_mirror_is_refused(tmp_path, monkeypatch, url):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "a.txt").write_bytes(b"a\n")
    (tmp_path / "m" / "toy").mkdir(parents=True)
    _one_source(monkeypatch, Source(url), {"a.txt": None})
    with pytest.raises(DatasetError, match=f"toy: mirror entry {url!r} .* must be a path inside the mirror"):
        datasets.fetch("toy", tmp_path / "raw" / "toy", mirror=tmp_path / "m")


@pytest.mark.parametrize("save_as, reason", [("../../outside.txt", "climbs out"),
                                             ("/tmp/outside.txt", "has an absolute"), ("./", "is empty")])
def test_save_as_outside_the_dataset_folder_is_refused(tmp_path, monkeypatch, save_as, reason):
    (tmp_path / "m" / "toy").mkdir(parents=True)
    (tmp_path / "m" / "toy" / "a.txt").write_bytes(b"a\n")
    _one_source(monkeypatch, Source("toy/a.txt", save_as=save_as), {"a.txt": None})
    with pytest.raises(DatasetError, match=f"toy: .*/m/toy/a\\.txt cannot be saved as {save_as!r}: the name {reason}"):
        datasets.fetch("toy", tmp_path / "raw" / "toy", mirror=tmp_path / "m")
    assert _files_under(tmp_path) == ["m", "m/toy", "m/toy/a.txt", "raw"]


def test_save_as_in_a_subfolder_is_written_there(tmp_path, monkeypatch):
    (tmp_path / "m" / "toy").mkdir(parents=True)
    (tmp_path / "m" / "toy" / "a.txt").write_bytes(b"a\n")
    _one_source(monkeypatch, Source("toy/a.txt", save_as="sub/./b.txt"), {"sub/b.txt": None})
    assert list(datasets.fetch("toy", tmp_path / "raw" / "toy", mirror=tmp_path / "m")) == ["sub/b.txt"]
    assert (tmp_path / "raw" / "toy" / "sub" / "b.txt").read_bytes() == b"a\n"
