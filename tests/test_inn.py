"""Offline identifier checks and `crm-etl check-inn` (reason codes per the truth rules)."""
import pytest
from click.testing import CliRunner

from etl import rejects
from etl.cli import main
from validators.inn import check_inn, check_kpp, check_ogrn


@pytest.mark.parametrize("value, expected", [
    ("7707083893", ("7707083893", None)),
    (" 7707 083-893 ", ("7707083893", None)),          # separators people type
    ("123456789047", ("123456789047", None)),          # 12 digits: sole proprietor
    (7707083893, ("7707083893", None)),                # a number from JSON
    ("7707083894", (None, rejects.INN_CHECKSUM)),
    ("1234567890", (None, rejects.INN_CHECKSUM)),
    ("123456789037", (None, rejects.INN_CHECKSUM)),
    ("77070838931", (None, rejects.INN_FORMAT)),       # 11 digits
    ("770708389", (None, rejects.INN_FORMAT)),
    ("7707O83893", (None, rejects.INN_FORMAT)),        # letter O
    ("７７０７０８３８９３", (None, rejects.INN_FORMAT)),  # full-width digits are not ASCII
    ("5555555555", (None, rejects.INN_FORMAT)),        # all one digit (fails the checksum too)
    ("0000000000", (None, rejects.INN_FORMAT)),        # all one digit (passes the checksum)
    ("", (None, rejects.NO_INN)),
    ("   ", (None, rejects.NO_INN)),
    (None, (None, rejects.NO_INN)),
    (["7707083893"], (None, rejects.INN_FORMAT)),
])
def test_check_inn(value, expected):
    assert check_inn(value) == expected


def test_kpp_and_ogrn():
    assert check_kpp("7736 01 001") == ("773601001", None)
    assert check_kpp("7736AB001") == ("7736AB001", None)
    assert check_kpp("77360100") == (None, "kpp_format")
    assert check_ogrn("1027700132195") == ("1027700132195", None)
    assert check_ogrn("1027700132196") == (None, "ogrn_checksum")
    # OGRNIP remainder 10 -> check digit 0 (python-stdnum 2.2 gets this case wrong)
    assert check_ogrn("304500100000040") == ("304500100000040", None)
    assert check_ogrn("304500100000041") == (None, "ogrn_checksum")


def test_check_inn_command_reports_each_and_exits_by_result():
    r = CliRunner().invoke(main, ["check-inn", "7707083893", "123456789047"])
    assert r.exit_code == 0, r.output
    assert r.output.count("\tvalid\t") == 2
    r = CliRunner().invoke(main, ["check-inn", "7707083893", "7707083894", "abc"])
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert [line.split("\t")[1] for line in lines] == ["valid", "inn_checksum", "inn_format"]
