"""Loading transformers by module path, and the promise that a new shop is one module plus one
config section."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from etl.config import ConfigError, ShopSettings, load_settings
from etl.dto import Company, Contact, Reject
from transformers.base import Transformer, load_transformer
from transformers.shop_a import ShopATransformer
from transformers.shop_b import ShopBTransformer

SHOP_C_MODULE = '''
"""Shop C: a CSV-like feed of flat rows, one per contact, company fields repeated."""
from etl import rejects
from etl.dto import Company, Contact, Reject
from transformers.cleaning import clean_emails, clean_phones, split_full_name, text_of
from validators.inn import compact


class ShopC:
    def __init__(self, source, options):
        self.source = source
        self.prefix = options.get("id_prefix", "")

    def transform(self, records):
        seen = set()
        for row in records:
            inn = compact(text_of(row.get("tax_id")))
            if not inn:
                org = self.prefix + str(row.get("org"))
                yield Reject(self.source, org, "company", rejects.NO_INN, "tax_id empty")
                continue
            org = self.prefix + str(row["org"])
            if org not in seen:
                seen.add(org)
                yield Company(self.source, org, inn, text_of(row["org_name"]), phones=clean_phones(row.get("tel")))
            name = split_full_name(text_of(row["person"]))
            yield Contact(self.source, self.prefix + str(row["id"]), org, company_inn=inn, last_name=name.last,
                          first_name=name.first, middle_name=name.middle, emails=clean_emails(row.get("mail")))


def create(shop):
    return ShopC(shop.name, shop.options)
'''


def test_the_built_in_shops_load_from_default_settings() -> None:
    settings = load_settings(None, env={})
    a = load_transformer(settings.shop("shop-a"))
    b = load_transformer(settings.shop("shop-b"))
    assert isinstance(a, ShopATransformer) and a.source == "shop-a"
    assert isinstance(b, ShopBTransformer) and b.source == "shop-b"
    assert isinstance(a, Transformer) and isinstance(b, Transformer)


def test_a_third_shop_is_one_module_and_one_config_section(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shop_c_feed.py").write_text(SHOP_C_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "crm-etl.toml"
    config.write_text(textwrap.dedent("""
        [shops.shop-c]
        transformer = "shop_c_feed"
        extractor = "jsonfile"
        id_prefix = "C-"
    """), encoding="utf-8")
    settings = load_settings(config, env={})
    transformer = load_transformer(settings.shop("shop-c"))
    assert transformer.source == "shop-c"
    out = list(transformer.transform([
        {"id": 1, "org": 10, "org_name": "ООО  «Вектор»".encode("cp1251"), "tax_id": "7707-083-893",
         "tel": "8 (495) 123-45-67", "person": "ПЕТРОВ П.П.", "mail": "P.Petrov@Vector.ru"},
        {"id": 2, "org": 10, "org_name": "ООО «Вектор»", "tax_id": "7707083893", "tel": "",
         "person": "Анна Смирнова", "mail": "a@vector.ru"},
        {"id": 3, "org": 11, "org_name": "ИП", "tax_id": None, "person": "x"},
    ]))
    assert [type(o) for o in out] == [Company, Contact, Contact, Reject]
    company, petrov, smirnova, _ = out
    assert (company.source_id, company.inn, company.name) == ("C-10", "7707083893", "ООО «Вектор»")
    assert company.phones[0].e164 == "+74951234567"
    assert (petrov.last_name, petrov.first_name, petrov.company_source_id) == ("Петров", "П.", "C-10")
    assert (smirnova.last_name, smirnova.first_name) == ("Смирнова", "Анна")
    assert petrov.emails == ("p.petrov@vector.ru",)


def shop(transformer: str) -> ShopSettings:
    return ShopSettings(name="shop-x", transformer=transformer)


def test_missing_module_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"\[shops.shop-x\].*no module named 'no_such_shop_module'"):
        load_transformer(shop("no_such_shop_module"))
    with pytest.raises(ConfigError, match="no module named 'transformers.shop_z'"):
        load_transformer(shop("transformers.shop_z"))


def test_module_without_create_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"has no create\(shop\) function"):
        load_transformer(shop("transformers.cleaning"))


def test_module_that_fails_to_import_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_shop.py").write_text("import no_such_dependency_xyz\n", encoding="utf-8")
    (tmp_path / "raising_shop.py").write_text("raise RuntimeError('boom')\n", encoding="utf-8")
    (tmp_path / "odd_shop.py").write_text("def create(shop):\n    return 42\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="failed to import.*no_such_dependency_xyz"):
        load_transformer(shop("broken_shop"))
    with pytest.raises(ConfigError, match="failed to import: RuntimeError: boom"):
        load_transformer(shop("raising_shop"))
    with pytest.raises(ConfigError, match=r"returned int, which has no transform\(records\) method"):
        load_transformer(shop("odd_shop"))
