"""Shop A's DDL, copied verbatim from the shop's `shop_a.sql` (the shop's format is fixed; we only
read it). Kept as a Python constant so the generator works from an installed wheel too.
"""
from __future__ import annotations

import re

SHOP_A_DDL = """-- Shop A's B2B customer tables, as they exist on the shop's MySQL (read replica).
-- Created long ago with the server default charset latin1 (see README.md for what
-- the text columns really hold).

CREATE TABLE b2b_company (
  id            INT UNSIGNED NOT NULL AUTO_INCREMENT,
  name          VARCHAR(255) NOT NULL,
  legal_form    VARCHAR(64)  NULL,
  inn           VARCHAR(32)  NULL,
  kpp           VARCHAR(32)  NULL,
  ogrn          VARCHAR(32)  NULL,
  phone         VARCHAR(255) NULL,
  email         VARCHAR(255) NULL,
  legal_address TEXT         NULL,
  bank_name     VARCHAR(255) NULL,
  bik           VARCHAR(32)  NULL,
  account       VARCHAR(32)  NULL,
  corr_account  VARCHAR(32)  NULL,
  is_active     TINYINT(1)   NOT NULL DEFAULT 1,
  created_at    DATETIME     NOT NULL,
  updated_at    DATETIME     NOT NULL,
  PRIMARY KEY (id),
  KEY ix_company_updated (updated_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE b2b_contact (
  id          INT UNSIGNED NOT NULL AUTO_INCREMENT,
  company_id  INT UNSIGNED NOT NULL,
  full_name   VARCHAR(255) NULL,
  position    VARCHAR(255) NULL,
  phone       VARCHAR(255) NULL,
  mobile      VARCHAR(255) NULL,
  email       VARCHAR(255) NULL,
  is_deleted  TINYINT(1)   NOT NULL DEFAULT 0,
  created_at  DATETIME     NOT NULL,
  updated_at  DATETIME     NOT NULL,
  PRIMARY KEY (id),
  KEY ix_contact_company (company_id),
  KEY ix_contact_updated (updated_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;
"""


def ddl_statements(ddl: str = SHOP_A_DDL) -> list[str]:
    """The DDL as single statements (comments dropped), for a DB-API `execute` each."""
    body = re.sub(r"^\s*--.*$", "", ddl, flags=re.M)
    return [s.strip() for s in body.split(";") if s.strip()]
