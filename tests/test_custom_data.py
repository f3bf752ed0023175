"""Bring your own data: what files read_labelled_file accepts (encodings, quoting, line breaks) and the
drop_empty switch of prepare_custom."""

import json

import numpy as np
import pytest
import yaml

from dltm.cli import UserError
from dltm.data import DataFileError, prepare_custom, read_labelled_file, read_labelled_texts
from dltm.params import ParamError

from .conftest import REPO

CUSTOM = {"text_field": "text", "label_field": "label", "encoding": "utf-8", "clean": "none", "max_length": 0,
          "test_size": 0.25, "split_seed": 10, "cv_folds": 2}
BOM = b"\xef\xbb\xbf"


def write(tmp_path, name, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


# ---- 9: byte-order marks ----


@pytest.mark.parametrize("name, content", [
    ("d.csv", "text,label\ngood film,pos\nbad film,neg\n"),
    ("d.tsv", "text\tlabel\ngood film\tpos\nbad film\tneg\n"),
    ("d.jsonl", '{"text": "good film", "label": "pos"}\n{"text": "bad film", "label": "neg"}\n'),
])
@pytest.mark.parametrize("bom", [b"", BOM])
def test_utf8_with_or_without_a_byte_order_mark(tmp_path, name, content, bom):
    path = write(tmp_path, name, bom + content.encode("utf-8"))
    assert read_labelled_texts(path) == (["good film", "bad film"], ["pos", "neg"])
    assert read_labelled_texts(path, encoding="UTF8") == (["good film", "bad film"], ["pos", "neg"])


def test_other_encodings_and_a_mark_that_contradicts_the_encoding(tmp_path):
    content = "text,label\ncafé crème,food\n"
    utf16 = write(tmp_path, "u16.csv", content.encode("utf-16"))  # with its BOM, as Excel's "Unicode text"
    assert read_labelled_texts(utf16, encoding="utf-16") == (["café crème"], ["food"])
    assert read_labelled_texts(write(tmp_path, "le.csv", b"\xff\xfe" + content.encode("utf-16-le")),
                               encoding="utf-16-le") == (["café crème"], ["food"])
    with pytest.raises(DataFileError, match=r"u16.csv:1: the file starts with a UTF-16 byte-order mark but is read "
                                            r"as utf-8; set prepare.custom.encoding to utf-16"):
        read_labelled_texts(utf16)
    with pytest.raises(DataFileError, match=r"bom.csv:1: the file starts with a UTF-8 byte-order mark but is read "
                                            r"as cp1252"):
        read_labelled_texts(write(tmp_path, "bom.csv", BOM + content.encode("utf-8")), encoding="cp1252")
    latin = write(tmp_path, "latin.csv", "text,label\nfine,a\ncafé,b\n".encode("cp1252"))
    assert read_labelled_texts(latin, encoding="cp1252") == (["fine", "café"], ["a", "b"])
    with pytest.raises(DataFileError, match=r"latin.csv:3: cannot decode as utf-8 \(invalid continuation byte\)"):
        read_labelled_texts(latin)
    with pytest.raises(ParamError, match=r"prepare.custom.encoding: unknown encoding 'utf9'"):
        read_labelled_texts(latin, encoding="utf9")


# ---- 10: quoting, and line breaks inside a text ----


def test_a_quoted_line_break_is_part_of_the_text_and_becomes_a_space(tmp_path):
    path = write(tmp_path, "d.csv", 'text,label\n"great match\ntoday",sport\n"a ""quoted"", text, with commas",x\n'
                                    '"three\r\nline\n\nrecord",y\nplain,z\n,missing\n')
    with pytest.raises(DataFileError, match=r"d.csv:10: field 'text' is empty"):  # the line where the record starts
        read_labelled_file(path)
    path.write_text(path.read_text().replace(",missing\n", "last,w\n"))
    f = read_labelled_file(path)
    assert f.texts == ["great match today", 'a "quoted", text, with commas', "three line record", "plain", "last"]
    assert f.labels == ["sport", "x", "y", "z", "w"] and f.lines == [2, 4, 5, 9, 10]


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\x1c", "\x1e"])
@pytest.mark.parametrize("name", ["d.csv", "d.tsv", "d.jsonl"])
def test_unicode_line_separators_inside_a_text_do_not_split_the_row(tmp_path, name, sep):
    rows = [(f"one{sep}two", "a"), ("three", f"b{sep}"), ("four", "c")]
    if name == "d.jsonl":
        content = "\n".join(json.dumps({"text": t, "label": lab}, ensure_ascii=False) for t, lab in rows) + "\n"
    else:
        d = "," if name == "d.csv" else "\t"
        content = f"text{d}label\n" + "".join(f"{t}{d}{lab}\n" for t, lab in rows)
    f = read_labelled_file(write(tmp_path, name, content))
    assert f.texts == ["one two", "three", "four"] and f.labels == ["a", "b", "c"]
    assert f.lines == ([1, 2, 3] if name == "d.jsonl" else [2, 3, 4])


def test_jsonl_records_split_at_line_feeds_only_and_escaped_breaks_are_spaces(tmp_path):
    path = write(tmp_path, "d.jsonl", '{"text": "a\\nb\\r\\nc", "label": 1}\r\n\r\n{"text": "d\u2028e", "label": "x"}\n'
                                      '{"text": "f", "label": 2')
    with pytest.raises(DataFileError, match=r"d.jsonl:4: not valid JSON \(Expecting ',' delimiter"):
        read_labelled_file(path)
    path.write_text(path.read_text(encoding="utf-8") + "}\n", encoding="utf-8")
    f = read_labelled_file(path)
    assert f.texts == ["a b c", "d e", "f"] and f.labels == ["1", "x", "2"] and f.lines == [1, 3, 4]
    with pytest.raises(DataFileError, match=r"arr.json:1: not valid JSON .*one object per line, not a JSON array"):
        read_labelled_file(write(tmp_path, "arr.json", '[\n{"text": "a", "label": 1}\n]\n'))


@pytest.mark.parametrize("content, match", [
    ('text,label\nok,a\n"never closed,b\nc,d\n', r"d.csv:3: bad quoting \(unexpected end of data\)"),
    ('text,label\nok,a\n"half" quoted,b\n', r"d.csv:3: bad quoting \(',' expected after '\"'\).*\"say \"\"hi\"\"\""),
    ('text,label\n"two\nlines",a,extra\n', r"d.csv:2: more fields than the header's 2"),
    ('text,label\n"two\nlines"\n', r"d.csv:2: field 'label' is missing"),
    ("\n\ntext,label\n\n", r"d.csv: no examples$"),
    ("\n\nsentence,label\nx,y\n", r"d.csv:3: no column 'text' in the header \(columns: sentence, label\)"),
])
def test_bad_quoting_names_the_line_where_the_record_starts(tmp_path, content, match):
    with pytest.raises(DataFileError, match=match) as e:
        read_labelled_file(write(tmp_path, "d.csv", content))
    assert isinstance(e.value, UserError) and isinstance(e.value, ValueError)


def test_header_names_are_stripped_and_crlf_files_read(tmp_path):
    f = read_labelled_file(write(tmp_path, "d.csv", " text , label \r\nx,1\r\n\r\n\"y\r\nz\",2\r\n"))
    assert f.texts == ["x", "y z"] and f.labels == ["1", "2"] and f.lines == [2, 4]


# ---- 11: rows whose text (or label) is empty ----


def test_empty_rows_are_an_error_by_default_and_drop_empty_leaves_them_out(tmp_path):
    path = write(tmp_path, "d.csv", 'text,label\ngood,a\n,b\n  ,c\n"multi\nline",d\nok,\n"",e\nfine,f\n')
    with pytest.raises(DataFileError, match=r"d.csv:3: field 'text' is empty \(prepare.custom.drop_empty: true "
                                            r"leaves such rows out\)"):
        read_labelled_file(path)
    f = read_labelled_file(path, drop_empty=True)
    assert f.texts == ["good", "multi line", "fine"] and f.lines == [2, 5, 9] and f.dropped == [3, 4, 7, 8]
    jsonl = write(tmp_path, "d.jsonl", '{"text": "", "label": 1}\n{"text": null, "label": 1}\n{"text": "x", '
                                       '"label": " "}\n{"text": "y", "label": 0}\n{"label": 1}\n')
    with pytest.raises(DataFileError, match=r"d.jsonl:5: field 'text' is missing"):  # a missing key is no empty row
        read_labelled_file(jsonl, drop_empty=True)
    jsonl.write_text(jsonl.read_text().rsplit("\n", 2)[0] + "\n")
    f = read_labelled_file(jsonl, drop_empty=True)
    assert f.texts == ["y"] and f.labels == ["0"] and f.dropped == [1, 2, 3]
    with pytest.raises(DataFileError, match=r"e.csv: no examples \(2 rows with an empty text or label left out\)"):
        read_labelled_file(write(tmp_path, "e.csv", "text,label\n,a\nb,\n"), drop_empty=True)


def custom_rows(n=8):
    return "".join(f"the striker scored goal {i},sport\nsoup with rice {i},food\n" for i in range(n))


def test_prepare_custom_reports_the_dropped_rows_in_info_json(tmp_path):
    (tmp_path / "own").mkdir()
    write(tmp_path, "own/train.csv", "text,label\n" + custom_rows() + ",sport\n\"\",food\n")  # lines 18, 19
    write(tmp_path, "own/test.csv", "text,label\nrain again,\nthe keeper saved,sport\nhot soup,food\n")
    with pytest.raises(DataFileError, match=r"train.csv:18: field 'text' is empty"):
        prepare_custom(tmp_path / "own", tmp_path / "out", CUSTOM)
    with pytest.raises(ParamError, match=r"prepare.custom.drop_empty should be true or false, got 'yes'"):
        prepare_custom(tmp_path / "own", tmp_path / "out", CUSTOM | {"drop_empty": "yes"})
    info = prepare_custom(tmp_path / "own", tmp_path / "out", CUSTOM | {"drop_empty": True})
    assert info["dropped_empty"] == 3
    assert info["dropped_empty_lines"] == {"train.csv": [18, 19], "test.csv": [2]}
    assert info["train"] == 16 and info["dev"] == 2 and info["examples"] == 18
    assert json.loads((tmp_path / "out" / "info.json").read_text()) == info
    texts = (tmp_path / "out" / "texts.txt").read_text(encoding="utf-8").splitlines()
    assert len(texts) == len(np.load(tmp_path / "out" / "labels.npy")) == 18 and texts[-2] == "the keeper saved"


def test_the_prepare_stage_prints_what_it_dropped_and_a_bad_file_in_one_line(tmp_path, monkeypatch, capsys):
    from dltm import cli
    from stages import prepare

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert params["prepare"]["custom"]["drop_empty"] is False  # the documented default
    write(tmp_path, "own.csv", "text,label\n" + custom_rows() + ",food\n" + ",x\n" * 12)
    params["prepare"]["custom"] |= {"path": "own.csv", "drop_empty": True, "cv_folds": 2}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    assert cli.run(prepare.main, ["custom"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["dropped_empty_lines"] == {"own.csv": list(range(18, 31))}
    assert err == ("prepare_custom: left out 13 rows with an empty text or label: own.csv lines 18, 19, 20, 21, 22, "
                   "23, 24, 25, 26, 27 and 3 more (prepare.custom.drop_empty; all lines in info.json)\n")
    assert json.loads((tmp_path / "data" / "prepared" / "custom" / "info.json").read_text())["dropped_empty"] == 13
    params["prepare"]["custom"]["drop_empty"] = False
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert cli.run(prepare.main, ["custom"]) == cli.EXIT_USER_ERROR
    assert capsys.readouterr().err == ("error: own.csv:18: field 'text' is empty (prepare.custom.drop_empty: true "
                                       "leaves such rows out)\n")
