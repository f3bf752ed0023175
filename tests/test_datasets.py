import gzip
import hashlib
import http.server
import io
import json
import re
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from dltm import datasets
from dltm.datasets import ChecksumError, Dataset, DatasetError, Source, UnsafeArchiveError, safe_extract

from .conftest import MIRROR, REPO, needs_mirror, synthetic_mr

TASKS_MD = REPO.parent / "shared" / "book" / "TASKS.md"
SHA = re.compile(r"^[0-9a-f]{64}$")


def test_every_dataset_of_tasks_md_is_registered():
    ids = {"breakfast", "ionosphere", "iris", "housing", "mnist", "har", "text8", "mr", "imdb", "ptb", "charlm",
           "cmn", "fra", "titles", "authors", "r8", "analogies", "fashion_mnist", "babi", "cmrc2018", "squad"}
    assert ids <= set(datasets.REGISTRY)
    assert {"glove6b", "glove_twitter"} <= set(datasets.REGISTRY)
    if TASKS_MD.is_file():  # the catalogue's own table, when the book folder is beside the repo
        table_ids = set(re.findall(r"^\| (\w+) \|", TASKS_MD.read_text(encoding="utf-8"), re.M)) - {"id"}
        assert table_ids - {"glove"} <= set(datasets.REGISTRY)


@pytest.mark.parametrize("ds", list(datasets.REGISTRY.values()), ids=list(datasets.REGISTRY))
def test_registry_entries_are_complete(ds: Dataset):
    assert ds.title and ds.license and ds.citation and ds.format
    for src in ds.sources:
        assert src.url.startswith(("http://", "https://"))
        assert src.sha256 is None or SHA.match(src.sha256)
        assert not src.is_archive or src.extract is not None
    for sha in ds.files.values():
        assert sha is None or SHA.match(sha)
    if ds.sources:  # something verifies every download: a file checksum or the source's
        assert any(ds.files.values()) or any(s.sha256 for s in ds.sources) or "checksum" in ds.notes
    for src in ds.mirror:
        assert not src.url.startswith(("/", "http"))
    assert ds.gunzipped <= {rel for rel, sha in ds.files.items() if sha and rel.endswith(".gz")}


def _fake_registry(monkeypatch, ds: Dataset):
    monkeypatch.setitem(datasets.REGISTRY, ds.id, ds)


def _tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return path


def test_fetch_from_mirror_verifies_and_writes_atomically(tmp_path, monkeypatch):
    files = synthetic_mr(tmp_path / "mirror" / "toy")
    shas = {n: datasets.sha256_file(p) for n, p in files.items()}
    ds = Dataset("toy", "toy", sources=(), files=shas, mirror=tuple(Source(f"toy/{n}") for n in shas),
                 format="x", license="x", citation="x")
    _fake_registry(monkeypatch, ds)
    sums = datasets.fetch("toy", tmp_path / "raw" / "toy", mirror=tmp_path / "mirror")
    assert sums == shas
    assert (tmp_path / "raw" / "toy" / "rt-polarity.pos").read_bytes() == files["rt-polarity.pos"].read_bytes()
    assert [p.name for p in (tmp_path / "raw").iterdir()] == ["toy"]  # no temporary folders left


def test_checksum_mismatch_names_dataset_file_and_both_sums(tmp_path, monkeypatch):
    synthetic_mr(tmp_path / "mirror" / "toy")
    ds = Dataset("toy", "toy", sources=(), files={"rt-polarity.pos": "0" * 64},
                 mirror=(Source("toy/rt-polarity.pos"),), format="x", license="x", citation="x")
    _fake_registry(monkeypatch, ds)
    dest = tmp_path / "raw" / "toy"
    dest.mkdir(parents=True)
    (dest / "old.txt").write_text("previous good download")
    with pytest.raises(ChecksumError) as e:
        datasets.fetch("toy", dest, mirror=tmp_path / "mirror")
    msg = str(e.value)
    assert "toy" in msg and "rt-polarity.pos" in msg and "0" * 64 in msg
    assert re.search(r"got [0-9a-f]{64}", msg)
    # the previous folder is untouched and nothing half-written is left beside it
    assert (dest / "old.txt").read_text() == "previous good download"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["toy"]


def test_expected_sha256_override_file(tmp_path, monkeypatch):
    files = synthetic_mr(tmp_path / "mirror" / "mr")
    override = tmp_path / "sums.json"
    override.write_text(json.dumps({"mr": {n: datasets.sha256_file(p) for n, p in files.items()}}))
    monkeypatch.setenv(datasets.EXPECTED_ENV, str(override))
    datasets.fetch("mr", tmp_path / "raw" / "mr", mirror=tmp_path / "mirror")
    monkeypatch.delenv(datasets.EXPECTED_ENV)
    with pytest.raises(ChecksumError, match="mr"):
        datasets.fetch("mr", tmp_path / "raw2" / "mr", mirror=tmp_path / "mirror")


def test_missing_mirror_file_is_named(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(DatasetError, match=r"mr: .*rt-polarity\.pos is not in the mirror"):
        datasets.fetch("mr", tmp_path / "raw" / "mr", mirror=tmp_path / "m")


@pytest.mark.parametrize("members, links, match", [
    ({"/etc/evil": b"x"}, None, "absolute path"),
    ({"ok/../../evil": b"x"}, None, r"'\.\.'"),
    ({"a/b": b"x"}, {"a/link": "../../outside"}, "'a/link' is a symbolic link"),
    ({"a/b": b"x"}, {"a/abs": "/etc/passwd"}, "'a/abs' is a symbolic link"),
])
def test_unsafe_tar_members_are_rejected_before_anything_is_written(tmp_path, members, links, match):
    archive = _tar(tmp_path / "bad.tar.gz", members, links)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UnsafeArchiveError, match=match):
        safe_extract(archive, out, {"": ""})
    assert list(out.iterdir()) == []


def test_unsafe_zip_is_rejected(tmp_path):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("good.txt", "x")
        zf.writestr("../evil.txt", "x")
    with pytest.raises(UnsafeArchiveError, match=r"\.\."):
        safe_extract(archive, tmp_path / "out", {"": ""})


def test_safe_extract_maps_prefixes(tmp_path):
    archive = _tar(tmp_path / "ok.tar.gz", {"./rt-polaritydata/rt-polarity.pos": b"p\n",
                                            "rt-polaritydata/rt-polarity.neg": b"n\n", "README": b"r"})
    out = tmp_path / "out"
    written = safe_extract(archive, out, {"rt-polaritydata/": ""})
    assert sorted(written) == ["rt-polarity.neg", "rt-polarity.pos"]
    assert (out / "rt-polarity.pos").read_bytes() == b"p\n" and not (out / "README").exists()
    # links, even inside the archive, are refused: tests/test_archive_safety.py


class _Flaky(http.server.BaseHTTPRequestHandler):
    payload = b""
    fails = 0

    def do_GET(self):  # noqa: N802
        if _Flaky.fails > 0:
            _Flaky.fails -= 1
            self.send_error(503)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args):
        pass


def test_download_retries_then_verifies_and_extracts(tmp_path, monkeypatch):
    archive = _tar(tmp_path / "rt-polaritydata.tar.gz", {"rt-polaritydata/rt-polarity.pos": b"good film\n"})
    _Flaky.payload = archive.read_bytes()
    _Flaky.fails = 2
    server = http.server.HTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/rt-polaritydata.tar.gz"
        ds = Dataset("toy", "toy", sources=(Source(url, sha256=datasets.sha256_file(archive),
                                                   extract={"rt-polaritydata/": ""}),),
                     files={"rt-polarity.pos": hashlib.sha256(b"good film\n").hexdigest()}, format="x",
                     license="x", citation="x")
        _fake_registry(monkeypatch, ds)
        monkeypatch.delenv(datasets.MIRROR_ENV, raising=False)
        monkeypatch.setattr(datasets.time, "sleep", lambda s: None)
        datasets.fetch("toy", tmp_path / "raw" / "toy")
        assert (tmp_path / "raw" / "toy" / "rt-polarity.pos").read_bytes() == b"good film\n"
        assert _Flaky.fails == 0
    finally:
        server.shutdown()


def test_network_failure_names_url_and_mirror_option(tmp_path, monkeypatch):
    ds = Dataset("toy", "toy", sources=(Source("http://127.0.0.1:9/none.txt"),), files={"none.txt": None},
                 format="x", license="x", citation="x")
    _fake_registry(monkeypatch, ds)
    monkeypatch.delenv(datasets.MIRROR_ENV, raising=False)
    monkeypatch.setattr(datasets.time, "sleep", lambda s: None)
    with pytest.raises(DatasetError) as e:
        datasets.fetch("toy", tmp_path / "raw" / "toy")
    assert "http://127.0.0.1:9/none.txt" in str(e.value) and datasets.MIRROR_ENV in str(e.value)
    assert not (tmp_path / "raw" / "toy").exists()


@needs_mirror
def test_real_mirror_mr_matches_the_registry(tmp_path):
    sums = datasets.fetch("mr", tmp_path / "mr", mirror=MIRROR)
    assert sums == datasets.get("mr").files


@needs_mirror
@pytest.mark.parametrize("dataset_id", ["ionosphere", "iris", "housing", "ptb", "charlm", "cmn", "titles", "r8",
                                        "analogies", "nietzsche"])
def test_real_mirror_files_match_the_registry(tmp_path, dataset_id):
    ds = datasets.get(dataset_id)
    for src in ds.mirror:
        name = Path(src.url).name
        assert datasets.sha256_file(MIRROR / src.url) == ds.files[name]


# ---- checksums of gunzipped content (fashion_mnist: the mirror's .gz were recompressed, the idx content is not)


def _gz_dataset(shas: dict[str, str], gunzipped: bool = True) -> Dataset:
    return Dataset("toy", "toy", sources=(), files=shas, mirror=tuple(Source(f"toy/{n}") for n in shas),
                   gunzipped=frozenset(shas) if gunzipped else frozenset(), format="x", license="x", citation="x")


def test_gunzipped_files_verify_the_content_not_the_gzip_bytes(tmp_path, monkeypatch):
    content = bytes(range(256)) * 40
    one = gzip.compress(content, compresslevel=9, mtime=0)
    other = gzip.compress(content, compresslevel=1, mtime=1_500_000_000)  # a recompression: other gzip bytes
    assert one != other
    _fake_registry(monkeypatch, _gz_dataset({"a.gz": hashlib.sha256(content).hexdigest()}))
    for i, data in enumerate((one, other)):
        (tmp_path / f"m{i}" / "toy").mkdir(parents=True)
        (tmp_path / f"m{i}" / "toy" / "a.gz").write_bytes(data)
        raw = tmp_path / f"raw{i}"
        assert datasets.fetch("toy", raw / "toy", mirror=tmp_path / f"m{i}") == {"a.gz": hashlib.sha256(content)
                                                                                  .hexdigest()}
        assert (raw / "toy" / "a.gz").read_bytes() == data  # kept compressed, as fetched
        assert datasets.checksums("toy", raw) == {"a.gz": hashlib.sha256(content).hexdigest()}

    (tmp_path / "m0" / "toy" / "a.gz").write_bytes(gzip.compress(content[:-1] + b"!", mtime=0))
    with pytest.raises(ChecksumError, match=r"toy: sha256 mismatch for a\.gz .*\(gunzipped content\)"):
        datasets.fetch("toy", tmp_path / "raw2" / "toy", mirror=tmp_path / "m0")
    for bad in (content, one[: len(one) // 2]):  # not gzip at all; a truncated gzip
        (tmp_path / "m0" / "toy" / "a.gz").write_bytes(bad)
        with pytest.raises(ChecksumError, match=r"toy: a\.gz .*is not a readable gzip file"):
            datasets.fetch("toy", tmp_path / "raw2" / "toy", mirror=tmp_path / "m0")
    assert not (tmp_path / "raw2").exists() or list((tmp_path / "raw2").iterdir()) == []


def test_without_gunzipped_the_gzip_bytes_are_what_is_verified(tmp_path, monkeypatch):
    """The default is unchanged (mnist and every other dataset): a recompressed copy fails."""
    content = b"idx" * 1000
    one, other = gzip.compress(content, mtime=0), gzip.compress(content, mtime=1)
    _fake_registry(monkeypatch, _gz_dataset({"a.gz": hashlib.sha256(one).hexdigest()}, gunzipped=False))
    (tmp_path / "m" / "toy").mkdir(parents=True)
    (tmp_path / "m" / "toy" / "a.gz").write_bytes(one)
    datasets.fetch("toy", tmp_path / "raw" / "toy", mirror=tmp_path / "m")
    (tmp_path / "m" / "toy" / "a.gz").write_bytes(other)
    with pytest.raises(ChecksumError, match=r"sha256 mismatch for a\.gz \(from"):
        datasets.fetch("toy", tmp_path / "raw2" / "toy", mirror=tmp_path / "m")
    assert datasets.get("mnist").gunzipped == frozenset()


def test_babi_download_extracts_en_and_en_10k_only(tmp_path):
    (src,) = datasets.get("babi").sources
    members = {f"tasks_1-20_v1-2/{lang}/qa1_single-supporting-fact_{split}.txt": f"{lang} {split}\n".encode()
               for lang in ("en", "en-10k", "hn", "en-valid") for split in ("train", "test")}
    members["tasks_1-20_v1-2/README.txt"] = b"readme"
    written = safe_extract(_tar(tmp_path / "babi.tar.gz", members), tmp_path / "out", src.extract)
    assert set(written) == {f"tasks_1-20_v1-2/{lang}/qa1_single-supporting-fact_{split}.txt"
                            for lang in ("en", "en-10k") for split in ("test", "train")}
    assert set(written) <= set(datasets.get("babi").files) | {"tasks_1-20_v1-2/en-10k/"
                                                              "qa3_three-supporting-facts_train.txt"}


@needs_mirror
@pytest.mark.parametrize("dataset_id", ["babi", "cmrc2018", "squad", "fashion_mnist"])
def test_real_mirror_fetch_verifies(tmp_path, dataset_id):
    ds = datasets.get(dataset_id)
    sums = datasets.fetch(dataset_id, tmp_path / dataset_id, mirror=MIRROR)
    assert sums == ds.files and all(ds.files.values())
    for src in ds.mirror:  # saved unchanged, where the loaders look for them
        assert (tmp_path / dataset_id / (src.save_as or src.name)).read_bytes() == (MIRROR / src.url).read_bytes()


def test_babi_registers_every_file_but_en_10k_task_3_training():
    files = datasets.get("babi").files
    assert len(files) == 79 and "tasks_1-20_v1-2/en-10k/qa3_three-supporting-facts_test.txt" in files
    assert "tasks_1-20_v1-2/en-10k/qa3_three-supporting-facts_train.txt" not in files
    assert "en-10k/qa3_three-supporting-facts_train.txt" in datasets.get("babi").notes
    for rel, sha in files.items():  # en-10k test files are en's, byte for byte
        if "/en-10k/" in rel and rel.endswith("_test.txt"):
            assert files[rel.replace("/en-10k/", "/en/")] == sha


@needs_mirror
def test_real_fashion_mnist_recompressed_passes_and_changed_content_fails(tmp_path):
    mirror = tmp_path / "mirror" / "fashion_mnist"
    mirror.mkdir(parents=True)
    for name in datasets.IDX_FILES:
        (mirror / name).symlink_to(MIRROR / "fashion_mnist" / name)
    name = "t10k-labels-idx1-ubyte.gz"
    labels = gzip.decompress((MIRROR / "fashion_mnist" / name).read_bytes())
    (mirror / name).unlink()
    (mirror / name).write_bytes(gzip.compress(labels, compresslevel=1, mtime=0))
    assert (mirror / name).read_bytes() != (MIRROR / "fashion_mnist" / name).read_bytes()
    sums = datasets.fetch("fashion_mnist", tmp_path / "raw" / "fashion_mnist", mirror=tmp_path / "mirror")
    assert sums == datasets.get("fashion_mnist").files

    changed = labels[:-1] + bytes([(labels[-1] + 1) % 10])  # one test label differs
    (mirror / name).write_bytes(gzip.compress(changed, compresslevel=1, mtime=0))
    with pytest.raises(ChecksumError, match=rf"fashion_mnist: sha256 mismatch for {name} .*\(gunzipped content\)"):
        datasets.fetch("fashion_mnist", tmp_path / "raw2" / "fashion_mnist", mirror=tmp_path / "mirror")
