"""The bio needle-in-a-haystack label: what a model must extract about one person, and how it is scored.

    label = BioLabel.model_validate_json(reply)        # pydantic: a reply that breaks the schema raises
    response_format(BioLabel)                           # {"type": "json_schema", ...} for vLLM / OpenAI
    flat = flatten(label.model_dump())                  # the 9 leaf fields the benchmark scores
    compact(label.model_dump())                         # the training target: compact JSON

The fields (from the published benchmark): ``nationality`` (a demonym, or "unknown"),
``date_of_birth`` and ``date_of_death`` as ``{day, month, year}`` with 0 for an unknown part,
``sportsperson`` and ``politician`` (booleans). Scoring is field by field, no judge model: each of the
9 leaves is right when it equals the label's (nationality case-insensitively). Model output is parsed
as JSON only; nothing in it is ever executed.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from raft import prompts

# The nationalities of the published labels (their demonyms, spelled as the reference code's list
# spells them: "Argentinean", "Icelander"), plus "unknown": a teacher in JSON-schema mode chooses among
# them; the scorer compares them case-insensitively.
NATIONALITIES = (
    "unknown", "Afghan", "Albanian", "Algerian", "American", "Andorran", "Angolan", "Antiguans",
    "Argentinean", "Armenian", "Australian", "Austrian", "Azerbaijani", "Bahraini", "Bangladeshi",
    "Belarusian", "Belgian", "Beninese", "Bolivian", "Bosnian", "Brazilian", "British", "Bulgarian",
    "Burkinabe", "Burmese", "Cambodian", "Cameroonian", "Canadian", "Chadian", "Chilean", "Chinese",
    "Colombian", "Comoran", "Congolese", "Costa Rican", "Croatian", "Cuban", "Cypriot", "Czech", "Danish",
    "Dominican", "Dutch", "East Timorese", "Ecuadorean", "Egyptian", "Equatorial Guinean", "Eritrean",
    "Estonian", "Ethiopian", "Fijian", "Filipino", "Finnish", "French", "Gambian", "Georgian", "German",
    "Ghanaian", "Greek", "Guatemalan", "Guinea-Bissauan", "Guinean", "Guyanese", "Haitian", "Honduran",
    "Hungarian", "Icelander", "Indian", "Indonesian", "Iranian", "Iraqi", "Irish", "Israeli", "Italian",
    "Ivorian", "Jamaican", "Japanese", "Jordanian", "Kazakhstani", "Kenyan", "Kuwaiti", "Laotian",
    "Latvian", "Lebanese", "Liberian", "Lithuanian", "Luxembourger", "Macedonian", "Malawian", "Malaysian",
    "Maldivian", "Malian", "Maltese", "Mauritian", "Mexican", "Moldovan", "Monacan", "Mongolian",
    "Moroccan", "Mozambican", "Namibian", "Nepalese", "New Zealander", "Nigerian", "North Korean",
    "Norwegian", "Omani", "Pakistani", "Palauan", "Panamanian", "Papua New Guinean", "Paraguayan",
    "Peruvian", "Polish", "Portuguese", "Qatari", "Romanian", "Russian", "Rwandan", "Salvadoran", "Samoan",
    "Saudi", "Scottish", "Senegalese", "Serbian", "Sierra Leonean", "Singaporean", "Slovakian",
    "Slovenian", "Solomon Islander", "Somali", "South African", "South Korean", "Spanish", "Sri Lankan",
    "Sudanese", "Swedish", "Swiss", "Syrian", "Taiwanese", "Tanzanian", "Thai", "Tongan",
    "Trinidadian or Tobagonian", "Tunisian", "Turkish", "Tuvaluan", "Ugandan", "Ukrainian", "Uruguayan",
    "Uzbekistani", "Venezuelan", "Vietnamese", "Welsh", "Yemenite", "Zambian", "Zimbabwean",
)


class Date(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: int = Field(ge=0, le=31, description="1-31, 0 when unknown")
    month: int = Field(ge=0, le=12, description="1-12, 0 when unknown")
    year: int = Field(ge=0, le=2100, description="0 when unknown")


class BioLabel(BaseModel):
    """What the model must extract about the needle's person."""

    model_config = ConfigDict(extra="forbid")

    nationality: Literal[*NATIONALITIES] = Field(description='a demonym such as "American", or "unknown"')
    date_of_birth: Date
    date_of_death: Date
    sportsperson: bool
    politician: bool


FIELDS = (
    "nationality",
    "date_of_birth.day", "date_of_birth.month", "date_of_birth.year",
    "date_of_death.day", "date_of_death.month", "date_of_death.year",
    "sportsperson", "politician",
)


def response_format(model: type[BaseModel] = BioLabel, name: str = "bio_label") -> dict[str, Any]:
    """The ``response_format`` of the label request (``raft.prompts.response_format`` of ``BioLabel``)."""
    return prompts.response_format(model, name)


def flatten(label: dict[str, Any]) -> dict[str, Any]:
    """The 9 scored leaves of a label (a dict in the BioLabel shape), by dotted name."""
    out = {}
    for field in FIELDS:
        value: Any = label
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out[field] = value
    return out


def compact(label: dict[str, Any]) -> str:
    """The training target: the label as compact JSON, keys in the schema's order."""
    return json.dumps(BioLabel.model_validate(label).model_dump(), separators=(",", ":"), ensure_ascii=False)
