"""The JSON export reader: arrays, JSON lines, item paths, damaged files, progress, flat memory."""
from __future__ import annotations

import codecs
import json
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from extractors import jsonfile
from extractors.jsonfile import JsonFileSource, SourceFileError, iter_json_items
from extractors.sql import SourceError

ROOT = Path(__file__).resolve().parents[1]


def partner(i: int) -> dict[str, Any]:
    """A shop B partner shaped like sources/README.md (enough text to span several read chunks)."""
    return {
        "PARTNER": f"{i:010d}", "BU_TYPE": "2", "NAME_ORG1": f"Ромашка {i}", "NAME_ORG2": "",
        "LEGAL_ENTY": "ООО", "TAXNUMS": [{"TAXTYPE": "RU1", "TAXNUM": "7707083893"}],
        "STATUS": "E0002", "XDELE": "", "SCORE": i + 0.25,
        "COMM": {"PHONE": [{"TEL_NUMBER": "8 495 123-45-67", "TEL_EXTENS": ""}]},
        "CONTACTS": [{"PARTNER": f"{i + 5:010d}", "NAME_LAST": "Петров", "NAME_FIRST": "Иван"}],
        "CHANGED_AT": "20240115103000",
    }


def write_array(path: Path, items: list[Any]) -> list[int]:
    """Write a pretty-ish JSON array; return the byte offset at which each item ends."""
    ends = []
    with open(path, "wb") as f:
        f.write(b"[\n")
        for n, item in enumerate(items):
            if n:
                f.write(b",\n")
            f.write(json.dumps(item, ensure_ascii=False).encode("utf-8"))
            ends.append(f.tell())
        f.write(b"\n]\n")
    return ends


def read_all(path: Path, **kw: Any) -> tuple[list[Any], SourceFileError | None]:
    """Consume like the pipeline does: keep every item, then the error (if any)."""
    got: list[Any] = []
    try:
        for item in iter_json_items(path, **kw):
            got.append(item)
    except SourceFileError as e:
        return got, e
    return got, None


def test_array_items_are_yielded_with_native_numbers(tmp_path: Path) -> None:
    items = [partner(i) for i in range(3)] + [{"n": 10, "f": 1.5, "big": 12345678901, "neg": -0.5e-3}]
    p = tmp_path / "export.json"
    write_array(p, items)
    got, err = read_all(p)
    assert err is None
    assert got == items
    last = got[-1]
    assert type(last["n"]) is int and type(last["f"]) is float and type(last["big"]) is int
    assert not any(isinstance(v, Decimal) for v in last.values())


def test_items_that_are_not_objects_are_yielded_as_they_are(tmp_path: Path) -> None:
    items = [partner(1), 42, "just a string", None, [1, 2], True, partner(2)]
    p = tmp_path / "mixed.json"
    write_array(p, items)
    assert read_all(p) == (items, None)


def test_utf8_bom_at_the_start_is_skipped(tmp_path: Path) -> None:
    p = tmp_path / "bom.json"
    p.write_bytes(codecs.BOM_UTF8 + json.dumps([partner(7)], ensure_ascii=False).encode("utf-8"))
    assert read_all(p) == ([partner(7)], None)


def test_json_lines_detected_by_content_and_by_suffix(tmp_path: Path) -> None:
    lines = [partner(1), partner(2), "not an object"]
    text = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines)
    by_content = tmp_path / "events.json"
    by_content.write_bytes(codecs.BOM_UTF8 + ("\n" + text.replace("\n", "\n\n") + "\n").encode("utf-8"))
    assert read_all(by_content) == (lines, None)

    by_suffix = tmp_path / "arrays.jsonl"  # first line is an array: only the suffix says "lines"
    by_suffix.write_text('[1, 2]\n{"a": 1}\r\n', encoding="utf-8")
    assert read_all(by_suffix) == ([[1, 2], {"a": 1}], None)

    empty = tmp_path / "empty.ndjson"  # no events is a valid JSON lines file
    empty.write_bytes(b"")
    assert read_all(empty) == ([], None)


def test_item_path_selects_a_nested_array(tmp_path: Path) -> None:
    p = tmp_path / "wrapped.json"
    doc = {"meta": {"count": 2, "ignored": [9, 9]}, "data": {"partners": [partner(1), partner(2)]}}
    p.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert read_all(p, item_path="data.partners.item") == ([partner(1), partner(2)], None)


def test_item_path_that_names_nothing_is_an_error_not_an_empty_load(tmp_path: Path) -> None:
    p = tmp_path / "wrapped.json"
    p.write_text(json.dumps({"data": {"partners": [partner(1)]}}), encoding="utf-8")
    got, err = read_all(p, item_path="data.item")
    assert got == [] and err is not None
    assert "data.partners.item" in str(err)  # says which path would work
    empty = tmp_path / "empty_array.json"
    empty.write_text("[ ]", encoding="utf-8")
    assert read_all(empty) == ([], None)  # an empty export is not an error


def test_truncated_file_yields_every_complete_item_then_fails_with_the_offset(tmp_path: Path) -> None:
    items = [partner(i) for i in range(2000)]  # ~600 KB: the cut lands in a later read chunk
    p = tmp_path / "export.json"
    ends = write_array(p, items)
    data = p.read_bytes()
    cut = ends[1500] - 20  # in the middle of item 1500
    p.write_bytes(data[:cut])
    got, err = read_all(p)
    assert got == items[:1500]
    assert isinstance(err, SourceError) and err.offset == cut
    assert str(p) in str(err) and str(cut) in str(err) and "truncated" in str(err)


def test_syntax_error_deep_in_the_file_names_its_offset(tmp_path: Path) -> None:
    items = [partner(i) for i in range(2000)]
    p = tmp_path / "export.json"
    ends = write_array(p, items)
    data = p.read_bytes()
    damage = data.index(b'"STATUS":', ends[1200])  # inside item 1201
    p.write_bytes(data[:damage] + b'"STATUS" "E0002"' + data[damage + len(b'"STATUS": "E0002"'):])
    got, err = read_all(p)
    assert got == items[:1201]
    assert err is not None and damage <= err.offset <= damage + 20
    assert f"at byte {err.offset}" in str(err) and str(p) in str(err)


def test_not_json_at_all(tmp_path: Path) -> None:
    p = tmp_path / "export.json"
    p.write_text("<html><body>502 Bad Gateway</body></html>\n", encoding="utf-8")
    got, err = read_all(p)
    assert got == [] and err is not None and err.offset == 0
    assert "not JSON" in str(err)


def test_compressed_file_is_named_as_such(tmp_path: Path) -> None:
    import gzip

    p = tmp_path / "export.json"
    p.write_bytes(gzip.compress(b"[1, 2]"))
    got, err = read_all(p)
    assert got == [] and err is not None and "gzip" in str(err)


def test_cp1251_file_stops_at_the_first_non_utf8_byte_with_a_fix(tmp_path: Path) -> None:
    items = [{"PARTNER": f"{i:010d}", "NAME_ORG1": "Romashka"} for i in range(5)] + [partner(5)]
    p = tmp_path / "export.json"
    p.write_bytes(json.dumps(items, ensure_ascii=False).encode("cp1251"))
    data = p.read_bytes()
    first_bad = next(i for i, b in enumerate(data) if b >= 0x80)
    got, err = read_all(p)
    assert got == items[:5]
    assert err is not None and err.offset == first_bad
    assert "Windows-1251" in str(err) and "iconv -f CP1251 -t UTF-8" in str(err)


def test_cp1251_json_lines_file_too(tmp_path: Path) -> None:
    p = tmp_path / "export.jsonl"
    p.write_bytes('{"a": "ok"}\n{"b": "ООО Ромашка"}\n'.encode("cp1251"))
    got, err = read_all(p)
    assert got == [{"a": "ok"}]
    assert err is not None and err.offset == len(b'{"a": "ok"}\n{"b": "') and "Windows-1251" in str(err)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_file_is_refused_up_front_with_a_fix(tmp_path: Path, encoding: str) -> None:
    p = tmp_path / "export.json"
    p.write_bytes(json.dumps([partner(1)], ensure_ascii=False).encode(encoding))
    got, err = read_all(p)
    assert got == [] and err is not None and err.offset == 0
    assert "UTF-16" in str(err) and "iconv -f UTF-16 -t UTF-8" in str(err)


def test_damaged_json_line_names_line_and_offset(tmp_path: Path) -> None:
    p = tmp_path / "export.jsonl"
    good = [json.dumps(partner(i), ensure_ascii=False) for i in range(3)]
    text = "\n".join(good) + '\n{"PARTNER": "0000000009", \n'
    p.write_text(text, encoding="utf-8")
    got, err = read_all(p)
    assert got == [partner(i) for i in range(3)]
    assert err is not None and "line 4" in str(err)
    assert len("\n".join(good).encode("utf-8")) + 1 < err.offset <= len(text.encode("utf-8"))


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "export.json"
    p.write_bytes(b"")
    got, err = read_all(p)
    assert got == [] and err is not None and "empty" in str(err)


def test_integers_beyond_64_bits_are_kept_exact(tmp_path: Path) -> None:
    items = [partner(i) for i in range(300)]
    items[250]["BANKN"] = 40702810938000012345  # an account number exported as a JSON number
    p = tmp_path / "export.json"
    write_array(p, items)
    got, err = read_all(p)
    assert err is None and got == items
    assert got[250]["BANKN"] == 40702810938000012345 and type(got[250]["SCORE"]) is float


def test_missing_file(tmp_path: Path) -> None:
    got, err = read_all(tmp_path / "nope.json")
    assert got == [] and err is not None and "nope.json" in str(err)


def test_progress_reports_bytes_up_to_the_total(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonfile, "PROGRESS_INTERVAL", 0.0)  # report at every chunk
    p = tmp_path / "export.json"
    write_array(p, [partner(i) for i in range(1500)])
    total = p.stat().st_size
    calls: list[tuple[int, int]] = []
    got = list(iter_json_items(p, progress=lambda done, tot: calls.append((done, tot))))
    assert len(got) == 1500
    assert calls[-1] == (total, total)
    assert all(tot == total for _, tot in calls)
    done = [d for d, _ in calls]
    assert done == sorted(done) and len(done) >= total // jsonfile.CHUNK_SIZE
    assert all(b - a <= jsonfile.CHUNK_SIZE for a, b in zip([0] + done, done))


def test_several_files_read_in_order_with_cumulative_progress(tmp_path: Path) -> None:
    a, b = tmp_path / "2023.json", tmp_path / "2024.jsonl"
    write_array(a, [partner(1), partner(2)])
    b.write_text(json.dumps(partner(3), ensure_ascii=False) + "\n", encoding="utf-8")
    source = JsonFileSource([a, b], item_path="item")
    assert source.total_bytes == a.stat().st_size + b.stat().st_size
    calls: list[tuple[int, int]] = []
    got = list(source.records(progress=lambda done, tot: calls.append((done, tot))))
    assert got == [partner(1), partner(2), partner(3)]
    assert calls[-1] == (source.total_bytes, source.total_bytes)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)

    given_up_front: list[tuple[int, int]] = []
    again = JsonFileSource([a, b], progress=lambda done, tot: given_up_front.append((done, tot)))
    assert list(again.records()) == got and given_up_front[-1] == calls[-1]


def test_several_files_fail_up_front_when_one_is_missing(tmp_path: Path) -> None:
    a = tmp_path / "2023.json"
    write_array(a, [partner(1)])
    with pytest.raises(SourceFileError, match="2024.json"):
        JsonFileSource([a, tmp_path / "2024.json"])


RSS_PROBE = textwrap.dedent("""
    import json, sys
    from extractors.jsonfile import iter_json_items

    def rss_kb():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

    items = iter_json_items(sys.argv[1])
    n, base, peak = 0, rss_kb(), 0
    for item in items:
        n += 1
        if n % 2000 == 0:
            peak = max(peak, rss_kb())
    print(json.dumps({"items": n, "base_kb": base, "peak_kb": max(peak, rss_kb())}))
""")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_memory_stays_flat_while_reading_a_large_file(tmp_path: Path) -> None:
    p = tmp_path / "large.json"
    one = json.dumps(partner(1), ensure_ascii=False).encode("utf-8")
    count = 30_000_000 // len(one)
    with open(p, "wb") as f:
        f.write(b"[" + b",\n".join(one for _ in range(count)) + b"]")
    out = subprocess.run([sys.executable, "-c", RSS_PROBE, str(p)], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    m = json.loads(out.stdout)
    assert m["items"] == count
    growth = (m["peak_kb"] - m["base_kb"]) * 1024
    assert growth < p.stat().st_size * 0.1, m  # a whole-file reader needs several times the file


def test_without_the_c_backend_it_warns_and_still_reads(tmp_path: Path) -> None:
    p = tmp_path / "export.json"
    write_array(p, [partner(1), 5])
    script = textwrap.dedent("""
        import json, logging, sys
        sys.modules["ijson.backends._yajl2"] = None  # as if the C extension were not built
        logging.basicConfig(level=logging.WARNING)
        from extractors.jsonfile import iter_json_items, json_backend
        print(json.dumps({"items": list(iter_json_items(sys.argv[1])),
                          "backend": json_backend().backend_name}, ensure_ascii=False))
    """)
    out = subprocess.run([sys.executable, "-c", script, str(p)], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    result = json.loads(out.stdout)
    assert result["items"] == [partner(1), 5] and result["backend"] != "yajl2_c"
    assert "yajl2_c is not available" in out.stderr
