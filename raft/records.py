"""Reading the files the commands write and read: JSON and JSONL with one-line errors naming the file
and line (``read_json``, ``read_jsonl``, ``iter_jsonl``), the split of a ``raft.generate`` output folder
(``read_split``: its ``dataset/``, else ``SPLIT.jsonl``, or a JSONL file) and the test rows an lm-eval
task is configured with (``task_test_rows``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from raft.config import ConfigError, first_line


def read_json(path: Path, error: type[ConfigError] = ConfigError, of: type = dict, what: str = "a JSON object") -> Any:
    """The JSON value of a file, which must be ``of`` (``what``, named in the error); a missing, unreadable
    or invalid file is a one-line ``error`` naming it (FileNotFoundError is raised as it is)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot read ({e})") from None
    except json.JSONDecodeError as e:
        raise error(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(data, of):
        raise error(f"{path}: not {what}")
    return data


def iter_jsonl(path: Path, error: type[ConfigError] = ConfigError) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSONL file, streamed (blank lines skipped); a bad line is a one-line ``error``
    naming the file and line."""
    try:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise error(f"{path} line {n}: not valid JSON ({e.msg})") from None
                if not isinstance(row, dict):
                    raise error(f"{path} line {n}: not a JSON object")
                yield row
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot read ({first_line(e)})") from None


def read_jsonl(path: Path, error: type[ConfigError] = ConfigError) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file (``iter_jsonl``), as a list."""
    return list(iter_jsonl(path, error))


def task_test_rows(task: str, origin: str, where: str) -> tuple[Path, list[dict[str, Any]]]:
    """(what was read, rows) of the test split an lm-eval task is configured with (``origin``: where the
    setting came from, named in the one-line errors); an empty split is an error too."""
    try:
        read, rows = read_split(Path(where))
    except FileNotFoundError:
        raise ConfigError(
            f"{task} data ({origin}={where}): not a raft.generate output folder (no dataset/ or test.jsonl) "
            f"nor a JSONL file; check {origin}"
        ) from None
    except OSError as e:
        raise ConfigError(f"{task} data ({origin}={where}): cannot read ({e}); check {origin}") from None
    if not rows:
        raise ConfigError(f"{read}: the test split is empty")
    return read, rows


def read_split(path: Path, split: str = "test") -> tuple[Path, list[dict[str, Any]]]:
    """(what was read, the rows of ``split``) of a raft.generate output folder (its ``dataset/``, else
    ``SPLIT.jsonl``) or of a JSONL file; FileNotFoundError when the path is neither."""
    if path.is_file():
        return path, read_jsonl(path)
    if (path / "dataset").is_dir():
        import datasets

        try:
            data = datasets.load_from_disk(str(path / "dataset"))
        except Exception as e:  # a half-written or foreign folder
            raise ConfigError(f"{path / 'dataset'}: cannot load ({type(e).__name__}: {e})") from None
        if not isinstance(data, datasets.DatasetDict) or split not in data:
            raise ConfigError(f"{path / 'dataset'}: no '{split}' split")
        return path / "dataset", data[split].to_list()
    if (path / f"{split}.jsonl").is_file():
        return path / f"{split}.jsonl", read_jsonl(path / f"{split}.jsonl")
    raise FileNotFoundError(path)
