"""What answering the benchmark's prompts costs per 1,000 queries at each context length, per priced model.

    write_cost_table({4096: prompts_4k, 8192: prompts_8k}, [
        {"model": "gpt-4o-mini", "tokenizer": "Xenova/gpt-4o", "input_per_mtok": 0.15, "output_per_mtok": 0.60},
        {"model": "Llama-3.1-8B (hosted)", "tokenizer": "/models/Llama-3.1-8B-Instruct", "input_per_mtok": 0.05, "output_per_mtok": 0.08},
    ], output_tokens=60, folder=Path("outputs/report"))

Each model's prompts are counted in its own tokenizer (``raft.sources.chunking.load_tokenizer``: a local folder
or a hub id, from the cache when offline); the cost per 1,000 queries at a length is
1000 x (mean input tokens x input_per_mtok + output_tokens x output_per_mtok) / 1e6, prices in
dollars per million tokens. Prompts are counted as given, without special tokens (a chat template's
few tokens are not added). A tokenizer that cannot be loaded is reported, never guessed: "tokenizer not
available offline" for a hub id (or a path that is not there), else "tokenizer not loadable" with the reason.

Writes ``cost.md`` (model, its prices, then one column per length) and ``cost.json`` (the same with
the mean input tokens per length); returns the path of cost.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from raft.config import ConfigError
from raft.evaluate.report_parts import length_label, markdown
from raft.sources.chunking import (  # token_counter: the token counter chunking uses
    load_tokenizer,
    token_counter,
)
from raft.sources.documents import DocumentError

OFFLINE = "tokenizer not available offline"
PRICE_KEYS = ("model", "tokenizer", "input_per_mtok", "output_per_mtok")


def cost_per_1000(
    mean_input_tokens: float, output_tokens: int, input_per_mtok: float, output_per_mtok: float
) -> float:
    """Dollars for 1,000 queries of that many input and output tokens at those prices per million tokens."""
    return 1000 * (mean_input_tokens * input_per_mtok + output_tokens * output_per_mtok) / 1e6


def money(dollars: float) -> str:
    """$1,234.50 from a dollar up, else 4 decimals ($0.0420): cheap models stay visible."""
    return f"${dollars:,.2f}" if dollars >= 1 else f"${dollars:.4f}"


def _model_row(
    prompts_by_length: dict[int, list[str]], price: dict[str, Any], output_tokens: int
) -> dict[str, Any]:
    missing = [k for k in PRICE_KEYS if k not in price]
    if missing:
        raise ConfigError(f"price entry {price!r} lacks {', '.join(missing)}")
    row: dict[str, Any] = {k: price[k] for k in PRICE_KEYS}
    try:
        tokenizer = load_tokenizer(price["tokenizer"])
    except DocumentError as e:
        local = Path(str(price["tokenizer"])).expanduser().exists()
        row["error"] = f"tokenizer not loadable ({e})" if local else OFFLINE
        row["detail"] = str(e)
        return row
    _, count = token_counter(tokenizer)
    row["mean_input_tokens"], row["cost_per_1000"] = {}, {}
    for length, prompts in sorted(prompts_by_length.items()):
        counts = count(list(prompts))
        mean = sum(counts) / len(counts) if counts else None
        row["mean_input_tokens"][length] = mean
        row["cost_per_1000"][length] = (
            None
            if mean is None
            else cost_per_1000(
                mean, output_tokens, float(price["input_per_mtok"]), float(price["output_per_mtok"])
            )
        )
    return row


def write_cost_table(
    prompts_by_length: dict[int, list[str]], prices: list[dict], output_tokens: int, folder: Path
) -> Path:
    """cost.md and cost.json in ``folder``: per priced model, dollars per 1,000 queries at each length."""
    if not prompts_by_length:
        raise ConfigError("no prompts to price: prompts_by_length is empty")
    rows = [_model_row(prompts_by_length, price, output_tokens) for price in prices]
    lengths = sorted(prompts_by_length)
    heads = ["model", "tokenizer", "$ / Mtok in", "$ / Mtok out", *(length_label(t) for t in lengths)]
    cells = []
    for r in rows:
        costs = r.get("cost_per_1000") or {}
        values = (
            [r["error"]] + [""] * (len(lengths) - 1)
            if "error" in r
            else ["—" if costs.get(t) is None else money(costs[t]) for t in lengths]
        )
        cells.append(
            [
                str(r["model"]),
                str(r["tokenizer"]),
                f"{float(r['input_per_mtok']):g}",
                f"{float(r['output_per_mtok']):g}",
                *values,
            ]
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    md = folder / "cost.md"
    md.write_text(
        "# Cost per 1,000 queries (USD)\n\n"
        f"Mean prompt tokens per length in each model's tokenizer, plus {output_tokens} output tokens per query.\n\n"
        + markdown(heads, cells),
        encoding="utf-8",
    )
    (folder / "cost.json").write_text(
        json.dumps({"output_tokens": output_tokens, "lengths": lengths, "models": rows}, indent=2) + "\n",
        encoding="utf-8",
    )
    return md
