"""raft.kinds.bio_needle.anonymize, raft.kinds.bio_needle.name_words and raft.kinds.bio_needle.wiki_bio: the anonymization of biographies (random names),
the shipped name lists, and raw wiki_bio loading and group detection."""

from __future__ import annotations

import json
import random
import re

import pytest

from raft.config import ConfigError
from raft.kinds.bio_needle.anonymize import (  # load_wiki_bio: raft.kinds.bio_needle.wiki_bio's, re-exported
    anonymize,
    load_wiki_bio,
)
from raft.kinds.bio_needle.name_words import first_names, last_names
from raft.kinds.bio_needle.wiki_bio import HUB_PARQUET, is_group


def words(text: str) -> int:
    return len(text.split())


def run(people, seed=0, lo=1, hi=10_000):
    return anonymize(people, words, random.Random(seed), min_tokens=lo, max_tokens=hi)


def has_word(word: str, text: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE) is not None


def wiki_row(name, text, title=None, **infobox):
    """A row in wiki_bio's layout (the parquet export's: the table is a dict of lists)."""
    cells = {"name": name, **infobox} if name is not None else dict(infobox)
    return {
        "input_text": {
            "table": {"column_header": list(cells), "row_number": [1] * len(cells), "content": list(cells.values())},
            "context": f"{title or name}\n",
        },
        "target_text": text,
    }


# ------------------------------------------------------------------------------------ replacement

def test_every_mention_is_replaced_surname_alone_possessives_and_hyphens():
    bio = ("john smith -lrb- born 1950 -rrb- is an english footballer . smith 's first club was leeds . "
           "in 1970 smith's brother joined him ; john retired in 1980 .")
    kept, dropped = run([{"name": "john smith", "title": "john smith -lrb- footballer -rrb-", "bio": bio}])
    assert dropped == []
    (row,) = kept
    first, last = row["name"].split()
    assert row["original_name"] == "john smith"
    assert not has_word("john", row["bio"]) and not has_word("smith", row["bio"])
    assert row["bio"] == (f"{first} {last} -lrb- born 1950 -rrb- is an english footballer . {last} 's first club "
                          f"was leeds . in 1970 {last}'s brother joined him ; {first} retired in 1980 .")
    assert first.capitalize() in first_names() and last.capitalize() in last_names()


def test_hyphenated_names_are_replaced_part_by_part():
    bio = ("Anna Smith-Jones (born 1960) is a Welsh-born painter. Smith-Jones studied in Cardiff; "
           "Jones is her mother's name and Smith her father's. Jean-Paul Smith-Jones is her son.")
    kept, dropped = run([{"name": "Anna Smith-Jones", "bio": bio}])
    assert dropped == []
    (row,) = kept
    given, double = row["name"].split()
    new_smith, new_jones = double.split("-")
    assert given[0].isupper() and new_smith[0].isupper()  # the casing of the text replaced
    assert f"{given} {new_smith}-{new_jones} (born 1960)" in row["bio"]
    assert f"{new_jones} is her mother's name and {new_smith} her father's" in row["bio"]
    assert "Jean-Paul" in row["bio"]  # not a word of her name
    for old in ("anna", "smith", "jones"):
        assert not has_word(old, row["bio"])


def test_wiki_bio_lowercase_tokenized_text_as_it_is():
    text = ("john smith -lrb- born 12 may 1950 -rrb- is an english footballer who played as a striker .\n"
            "smith began his career at `` leeds united '' .\nsmith 's son , john jr. , is a coach .\n")
    raw = {"name": "john smith", "title": "john smith -lrb- footballer -rrb-", "bio": text}
    (row,), dropped = run([raw])
    assert dropped == []
    assert row["name"] == row["name"].lower()  # wiki_bio is lowercase: so is the new name
    first, last = row["name"].split()
    assert row["bio"] == (f"{first} {last} -lrb- born 12 may 1950 -rrb- is an english footballer who played as a "
                          f"striker .\n{last} began his career at `` leeds united '' .\n{last} 's son , {first} jr. "
                          ", is a coach .\n")
    # the loader puts the text on one line, brackets unescaped as in the published biographies
    people = load_rows([wiki_row("john smith", text, title=raw["title"], birth_date="12 may 1950")])
    assert people[0]["bio"] == ("john smith ( born 12 may 1950 ) is an english footballer who played as a striker . "
                                "smith began his career at `` leeds united '' . smith 's son , john jr. , is a coach .")
    (row2,), _ = run(people)
    assert row2["bio"] == " ".join(row["bio"].split()).replace("-lrb-", "(").replace("-rrb-", ")")


def test_casing_follows_the_text():
    bio = "JOHN SMITH is a singer. Smith was born in Oslo; john smith lives in Rome."
    (row,), _ = run([{"name": "John Smith", "bio": bio}])
    first, last = row["name"].split()
    assert row["bio"] == (f"{first.upper()} {last.upper()} is a singer. {last} was born in Oslo; "
                          f"{first.lower()} {last.lower()} lives in Rome.")


def test_accented_and_unaccented_spellings_are_both_replaced():
    bio = "José García (born 1980) is a Spanish footballer. Garcia scored twice; GARCÍA's goal won the cup."
    (row,), dropped = run([{"name": "José García", "bio": bio}])
    first, last = row["name"].split()
    assert dropped == [] and row["bio"] == (f"{first} {last} (born 1980) is a Spanish footballer. {last} scored "
                                            f"twice; {last.upper()}'s goal won the cup.")


def test_initials_particles_titles_and_brackets():
    people = [
        {"name": "ludwig van beethoven", "bio": "ludwig van beethoven was a german composer . van beethoven wrote "
                                                "nine symphonies . beethoven 's father drove a van ."},
        {"name": "sir j. r. r. tolkien (writer)", "bio": "sir j. r. r. tolkien was an english writer . tolkien "
                                                         "taught at oxford . j. r. r. tolkien died in 1973 ."},
        {"name": "Charles de Gaulle", "bio": "Charles de Gaulle was a French general. De Gaulle led the Free French."},
    ]
    kept, dropped = run(people)
    assert dropped == []
    beethoven, tolkien, gaulle = kept
    first, last = beethoven["name"].split()  # the particle goes with the name
    assert beethoven["bio"] == (f"{first} {last} was a german composer . {last} wrote nine symphonies . "
                                f"{last} 's father drove a van .")
    *initials, last = tolkien["name"].split()
    assert [len(i) for i in initials] == [2, 2, 2] and initials[1] == initials[2]  # "r." twice: one new letter
    assert tolkien["bio"].startswith(f"sir {' '.join(initials)} {last} was an english writer . {last} taught")
    assert not has_word("tolkien", tolkien["bio"]) and "(writer)" not in tolkien["name"]
    first, last = gaulle["name"].split()
    assert gaulle["bio"] == f"{first} {last} was a French general. {last} led the Free French."


def test_other_name_forms_are_replaced_too():
    """The title, the birth name and a nickname in quotes: each word gets its own new word."""
    text = ("william `` bill '' henry smith -lrb- born 1940 -rrb- , known as bill smith , is an american golfer . "
            "smith won the open . bill henry retired .")
    people = load_rows([wiki_row("william smith", text, title="bill smith", birth_name="william henry smith",
                                 birth_date="1940")])
    (row,), dropped = run(people)
    assert dropped == []
    for old in ("william", "bill", "henry", "smith"):
        assert not has_word(old, row["bio"]), old
    first, last = row["name"].split()
    assert row["bio"].startswith(f"{first} `` ") and f"`` {last} won" not in row["bio"]
    assert f". {last} won the open ." in row["bio"]


# ------------------------------------------------------------------------------------------ drops

def test_a_name_word_left_in_the_text_drops_the_biography():
    """Months and nationalities are replaced only next to another name word: alone they stay, a leak."""
    people = [
        {"name": "june carter", "bio": "june carter ( born june 23 , 1929 ) was an american singer ."},
        {"name": "theresa may", "bio": "theresa may ( born 1 october 1956 ) is a british politician . may was "
                                       "prime minister ."},
        {"name": "dawn french", "bio": "dawn french ( born 11 october 1957 ) is an english comedian ."},
    ]
    kept, dropped = run(people)
    assert dropped == [(0, "name_leak: 'june'"), (1, "name_leak: 'may'")]
    (row,) = kept
    assert row["original_name"] == "dawn french" and "born 11 october 1957" in row["bio"]
    assert not has_word("french", row["bio"])


def test_band_and_group_articles_are_dropped():
    def person(bio, **fields):
        return {"name": "x y", "bio": bio, "headers": list(fields), "infobox": fields}

    groups = [
        person("x y is a rock act .", members="a b", origin="oslo"),
        person("x y is a rock act .", current_members="a b"),
        person("x y is a pop act .", background="group_or_band", genre="pop"),
        person("x y is a pop act .", origin="oslo", genre="pop", label="sony"),
        person("x y are a canadian indie rock band from london , ontario ."),
        person("x y were an electronic music duo from new york ."),
        person("x y is an american post-hardcore band from layton , utah ."),
        person("x y ( the rich and poor ) is an italian pop music group . active since 1960 ."),
        person("x y was a dutch electronic dance music duo , consisting of a and b ."),
    ]
    people_ = [
        person("x y is an english singer . she is a member of the band z .", origin="leeds", genre="pop",
               birth_date="1970"),
        person("x y is the lead singer of the band z ."),
        person("x y is a jazz group leader and pianist ."),
        person("x y was a choir director . the band were a success ."),
        person("x y ( born 1950 ) is an american drummer who was a member of the group z ."),
    ]
    assert [is_group(p) for p in groups] == [True] * len(groups)
    assert [is_group(p) for p in people_] == [False] * len(people_)
    kept, dropped = run(groups + people_)
    assert dropped == [(i, "group") for i in range(len(groups))]
    assert len(kept) == len(people_)


def test_token_window_in_student_tokens(tiny_model):
    from raft.sources.chunking import load_tokenizer, token_counter

    count = token_counter(load_tokenizer(tiny_model))[0]
    bio = "john smith ( born 1950 ) is an english footballer . smith played for leeds united from 1970 to 1980 ."
    people = [{"name": "john smith", "bio": bio}]
    (row,), _ = anonymize(people, count, random.Random(0), min_tokens=1, max_tokens=10_000)
    n = count(row["bio"])  # counted after the names are replaced
    assert n != words(row["bio"])
    assert anonymize(people, count, random.Random(0), min_tokens=n, max_tokens=n)[0] == [row]
    assert anonymize(people, count, random.Random(0), min_tokens=n + 1, max_tokens=10_000) == ([], [(0, "too_short")])
    assert anonymize(people, count, random.Random(0), min_tokens=1, max_tokens=n - 1) == ([], [(0, "too_long")])


def test_default_window_is_150_to_400_tokens():
    short = {"name": "john smith", "bio": "john smith is a footballer ."}
    long = {"name": "jane smith", "bio": "jane smith is a footballer . " + "she played . " * 200}
    kept, dropped = anonymize([short, long], words, random.Random(0))
    assert kept == [] and dropped == [(0, "too_short"), (1, "too_long")]


def test_no_name_and_mononyms_are_dropped():
    kept, dropped = run([{"name": "madonna", "bio": "madonna is a singer ."},
                         {"name": "-lrb- 1950 -rrb-", "bio": "someone is a singer ."},
                         {"name": "", "title": "", "bio": "someone is a singer ."}])
    assert kept == [] and dropped == [(0, "mononym"), (1, "no_name"), (2, "no_name")]


def test_a_mononym_with_a_full_birth_name_uses_it():
    bio = ("edson arantes do nascimento ( born 23 october 1940 ) , known as pele , is a brazilian footballer . "
           "pele scored 1000 goals .")
    people = [{"name": "pele", "title": "pele", "bio": bio, "infobox": {"birth_name": "edson arantes do nascimento"}}]
    (row,), dropped = run(people)
    assert dropped == [] and len(row["name"].split()) == 3  # edson arantes nascimento: "do" goes with the name
    for old in ("edson", "arantes", "nascimento", "pele"):
        assert not has_word(old, row["bio"])
    assert row["bio"].startswith(f"{row['name']} ( born 23 october 1940 )")


# ------------------------------------------------------------------------------- names and seeds

def test_same_seed_same_names_other_seed_other_names():
    people = [{"name": f"{a} {b}", "bio": f"{a} {b} is a footballer . {b} played for leeds ."}
              for a in ("john", "mary", "peter") for b in ("smith", "jones", "taylor")]
    assert run(people, seed=7) == run(people, seed=7)
    assert [r["name"] for r in run(people, seed=7)[0]] != [r["name"] for r in run(people, seed=8)[0]]


def test_names_are_unique_over_500_people_and_surnames_while_the_list_lasts():
    people = [{"name": "john smith", "bio": "john smith is a footballer . smith played for leeds ."}] * 500
    kept, dropped = run(people, seed=3)
    assert dropped == [] and len(kept) == 500
    names = [r["name"] for r in kept]
    assert len(set(names)) == 500
    assert len({n.split()[-1] for n in names}) == len(last_names())  # each surname used before any repeats
    assert len({n.split()[-1] for n in names[: len(last_names())]}) == len(last_names())


def test_rows_already_anonymized_pass_through_and_keep_their_names():
    done = [{"name": "stacy meyers", "bio": "stacy meyers was a premier .", "bio_token_len": 7, "anonymized": True},
            {"name": "elaine gipson", "bio": "elaine gipson was a politician .", "original_name": "edvard kardelj"}]
    raw = {"name": "john smith", "bio": "john smith is a footballer ."}
    kept, dropped = run([done[0], raw, done[1]], lo=100)  # the window applies to the raw row only
    assert kept == done and dropped == [(1, "too_short")]
    kept, _ = run(done + [raw])
    assert kept[:2] == done and kept[2]["name"] not in ("stacy meyers", "elaine gipson")


def test_shipped_name_lists():
    common = {"may", "june", "april", "august", "rose", "grace", "hope", "will", "mark", "bill", "frank", "dawn",
              "king", "young", "white", "black", "brown", "green", "hill", "wood", "bell", "hall", "park", "long",
              "price", "baker", "cook", "english", "french", "jordan", "chad", "georgia", "china", "summer"}
    from raft.kinds.bio_needle.name_words import _ambiguous

    for names in (first_names(), last_names()):
        assert len(names) >= 300 and len(set(names)) == len(names)
        assert all(re.fullmatch(r"[A-Z][A-Za-z]+", n) for n in names)
        assert not {n.lower() for n in names} & (common | _ambiguous())
    assert not {n.lower() for n in first_names()} & {n.lower() for n in last_names()}


def test_shared_biographies_come_out_without_their_names(shared_data):
    """The published haystack's biographies (already anonymized once) anonymized again as raw text."""
    rows = [json.loads(line) for line in (shared_data / "bio_haystack" / "needles_140.jsonl").open()]
    people = [{"name": r["name"], "bio": r["bio"], "json": r["json"]} for r in rows]
    kept, dropped = run(people, seed=1)
    assert len(kept) + len(dropped) == len(people) and len(kept) > 0.9 * len(people)
    assert {reason.split(":")[0] for _, reason in dropped} <= {"group", "name_leak"}
    assert len({r["name"] for r in kept}) == len(kept)
    by_name = {p["name"]: p for p in people}
    for row in kept:
        for old in row["original_name"].split():
            if len(old) >= 3:
                assert not has_word(old, row["bio"]), (old, row["bio"])
        assert row["json"] == by_name[row["original_name"]]["json"]


# ------------------------------------------------------------------------------------------ loading

def load_rows(rows):
    """Rows in wiki_bio's layout through the loader, by way of a JSONL file."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return load_wiki_bio(str(path))


def test_load_a_local_parquet_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        wiki_row("john smith", "john smith is a footballer .\n", title="john smith -lrb- footballer -rrb-",
                 birth_date="1950", background="<none>"),
        wiki_row("<none>", "jane doe is a singer .", title="jane doe", genre="pop"),
        wiki_row(None, "the x are a band .", title="the x", members="a b", origin="oslo"),
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train-0000.parquet")
    people = load_wiki_bio(str(tmp_path / "train-0000.parquet"))
    assert people[0] == {
        "name": "john smith", "bio": "john smith is a footballer .", "source_id": "train-0000.parquet:0",
        "title": "john smith -lrb- footballer -rrb-", "headers": ["name", "birth_date", "background"],
        "infobox": {"name": "john smith"},
    }
    assert [p["name"] for p in people] == ["john smith", "jane doe", "the x"]  # no name row: the title
    assert people[2]["headers"] == ["members", "origin"]
    assert load_wiki_bio(str(tmp_path), limit=2) == people[:2]  # a folder of files; the first N rows
    kept, dropped = run(people)
    assert [r["original_name"] for r in kept] == ["john smith", "jane doe"] and dropped == [(2, "group")]
    assert kept[0]["source_id"] == "train-0000.parquet:0"


def test_load_a_local_jsonl_file(tmp_path):
    row = wiki_row("john smith", "john smith is a footballer .", birth_name="john william smith")
    row["input_text"]["table"] = [  # the list-of-cells form some exports use
        {"column_header": h, "row_number": 1, "content": c}
        for h, c in zip(row["input_text"]["table"]["column_header"], row["input_text"]["table"]["content"],
                        strict=True)
    ]
    path = tmp_path / "bios.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps({**row, "id": "q42"}) + "\n", encoding="utf-8")
    people = load_wiki_bio(str(path), limit=5)
    assert [p["source_id"] for p in people] == ["bios.jsonl:0", "q42"]
    assert people[0]["infobox"] == {"name": "john smith", "birth_name": "john william smith"}


def test_load_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"name": "john smith", "bio": "x"}\n', encoding="utf-8")
    for source, says in [(str(tmp_path / "missing.parquet"), "not found"), (str(bad), "not a wiki_bio row"),
                         (str(tmp_path / "notes.txt"), "not found")]:
        with pytest.raises(ConfigError) as e:
            load_wiki_bio(source)
        assert says in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "junk.parquet").write_text("no parquet", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read it") as e:
        load_wiki_bio(str(tmp_path / "junk.parquet"))
    assert "\n" not in str(e.value)


def test_hub_offline_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # conftest sets it too: nothing may reach a hub
    for source in ("michaelauli/wiki_bio", "wiki_bio"):
        with pytest.raises(ConfigError) as e:
            load_wiki_bio(source, split="val", limit=10)
        message = str(e.value)
        assert "\n" not in message and repr(source) in message and "local" in message
        assert "refs%2Fconvert%2Fparquet" in message and "/val/" in message
    assert HUB_PARQUET.format(repo="michaelauli/wiki_bio", config="default", split="train") == (
        "hf://datasets/michaelauli/wiki_bio@refs%2Fconvert%2Fparquet/default/train/*.parquet")
