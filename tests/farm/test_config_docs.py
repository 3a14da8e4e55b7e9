"""docs/configuration.md's table of settings is the one the code prints (farm.config.reference_table), so a
setting added to Settings without its line in the docs fails here."""

from __future__ import annotations

from farm.config import REPO_ROOT, Settings, env_name, file_key, reference_table


def test_the_docs_table_is_the_generated_one() -> None:
    text = (REPO_ROOT / "docs" / "configuration.md").read_text()
    table = reference_table()
    assert table in text, (
        "docs/configuration.md is out of date: paste the output of\n"
        "python -c 'from farm.config import reference_table; print(reference_table())'"
    )
    for name in Settings.model_fields:
        assert f"| `{file_key(name)}` | `{env_name(name)}` |" in table
