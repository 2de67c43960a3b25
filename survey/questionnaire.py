"""Questionnaire files: parse and validate TOML, store a version, and hand its structure to `scoring`.

A malformed file is rejected with the place and the reason, e.g.
``dimensions[2].items[1].text.vi: missing``, before anything is stored.
"""

from __future__ import annotations

import hashlib
import re
import threading
import tomllib
from collections import OrderedDict
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import scoring

from .extensions import db
from .models import MAX_DIMENSIONS, Dimension, Item, Questionnaire

CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,59}$")
ITEM_CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
#: Columns of the import files; an item may not take one of these names.
RESERVED_COLUMNS = {"unit_code", "respondent_id", "customer_group", "rater_unit", "ratee_unit", "interview_id"}
DEFAULT_QUESTIONNAIRE = "evn-csi-2017.toml"


class QuestionnaireError(ValueError):
    """A questionnaire file that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class ItemSpec:
    code: str
    text_vi: str
    text_en: str

    def text(self, locale: str = "vi") -> str:
        return self.text_en if locale == "en" else self.text_vi


@dataclass(frozen=True)
class DimensionSpec:
    code: str
    weight: float
    title_vi: str
    title_en: str
    items: tuple[ItemSpec, ...]

    def title(self, locale: str = "vi") -> str:
        return self.title_en if locale == "en" else self.title_vi


@dataclass(frozen=True)
class QuestionnaireSpec:
    """A validated questionnaire file."""

    code: str
    version: int | None
    title_vi: str
    title_en: str
    scale_min: int
    scale_max: int
    dimensions: tuple[DimensionSpec, ...]
    source_text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.source_text.encode("utf-8")).hexdigest()


def _check_keys(table: dict[str, Any], where: str, required: set[str], optional: set[str] = frozenset()) -> None:
    for key in sorted(required - table.keys()):
        raise QuestionnaireError(f"{where}{key}: missing")
    for key in sorted(table.keys() - required - optional):
        raise QuestionnaireError(f"{where}{key}: unknown key (allowed: {', '.join(sorted(required | optional))})")


def _text(value: Any, where: str) -> tuple[str, str]:
    if not isinstance(value, dict):
        raise QuestionnaireError(f"{where}: expected a table {{ vi = \"…\", en = \"…\" }}")
    _check_keys(value, f"{where}.", {"vi", "en"})
    texts = []
    for language in ("vi", "en"):
        text = value[language]
        if not isinstance(text, str) or not text.strip():
            raise QuestionnaireError(f"{where}.{language}: must be non-empty text")
        texts.append(text.strip())
    return texts[0], texts[1]


def parse_questionnaire(text: str | bytes) -> QuestionnaireSpec:
    """Parse and validate a questionnaire file's text; raise QuestionnaireError with place and reason."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise QuestionnaireError(f"byte {exc.start}: the file is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise QuestionnaireError(f"not valid TOML: {exc}") from None

    _check_keys(data, "", {"code", "title", "scale", "dimensions"}, {"version"})
    code = data["code"]
    if not isinstance(code, str) or not CODE_PATTERN.match(code):
        raise QuestionnaireError("code: use lower-case letters, digits, '-' or '_', starting with a letter")
    version = data.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        raise QuestionnaireError("version: must be a whole number ≥ 1")
    title_vi, title_en = _text(data["title"], "title")

    scale = data["scale"]
    if not isinstance(scale, dict):
        raise QuestionnaireError("scale: expected a table { min = 1, max = 10 }")
    _check_keys(scale, "scale.", {"min", "max"})
    bounds = []
    for key in ("min", "max"):
        value = scale[key]
        if not isinstance(value, int) or isinstance(value, bool):
            raise QuestionnaireError(f"scale.{key}: must be a whole number")
        bounds.append(value)
    if not 0 <= bounds[0] < bounds[1] <= 100:
        raise QuestionnaireError("scale: need 0 ≤ min < max ≤ 100")

    dimensions_data = data["dimensions"]
    if not isinstance(dimensions_data, list) or not dimensions_data:
        raise QuestionnaireError("dimensions: at least one [[dimensions]] table is needed")
    if len(dimensions_data) > MAX_DIMENSIONS:
        raise QuestionnaireError(
            f"dimensions: {len(dimensions_data)} dimensions, but a questionnaire has at most {MAX_DIMENSIONS}; "
            "merge some criteria or split the questionnaire"
        )
    dimension_codes: set[str] = set()
    item_codes: set[str] = set()
    dimensions = []
    for d_index, dimension in enumerate(dimensions_data):
        where = f"dimensions[{d_index}]"
        if not isinstance(dimension, dict):
            raise QuestionnaireError(f"{where}: expected a table")
        _check_keys(dimension, f"{where}.", {"code", "title", "items"}, {"weight"})
        d_code = dimension["code"]
        if not isinstance(d_code, str) or not CODE_PATTERN.match(d_code):
            raise QuestionnaireError(f"{where}.code: use lower-case letters, digits, '-' or '_'")
        if d_code in dimension_codes:
            raise QuestionnaireError(f"{where}.code: '{d_code}' is used by another dimension")
        dimension_codes.add(d_code)
        weight = dimension.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < 1000:
            raise QuestionnaireError(f"{where}.weight: must be a positive number")
        d_title_vi, d_title_en = _text(dimension["title"], f"{where}.title")
        items_data = dimension["items"]
        if not isinstance(items_data, list) or not items_data:
            raise QuestionnaireError(f"{where}.items: at least one [[dimensions.items]] table is needed")
        items = []
        for i_index, item in enumerate(items_data):
            i_where = f"{where}.items[{i_index}]"
            if not isinstance(item, dict):
                raise QuestionnaireError(f"{i_where}: expected a table")
            _check_keys(item, f"{i_where}.", {"code", "text"})
            i_code = item["code"]
            if not isinstance(i_code, str) or not ITEM_CODE_PATTERN.match(i_code):
                raise QuestionnaireError(
                    f"{i_where}.code: use lower-case letters, digits or '_', starting with a letter "
                    "(it becomes a CSV column name)"
                )
            if i_code in RESERVED_COLUMNS:
                raise QuestionnaireError(f"{i_where}.code: '{i_code}' is reserved for an import column")
            if i_code in item_codes:
                raise QuestionnaireError(f"{i_where}.code: '{i_code}' is used by another item")
            item_codes.add(i_code)
            text_vi, text_en = _text(item["text"], f"{i_where}.text")
            items.append(ItemSpec(i_code, text_vi, text_en))
        dimensions.append(DimensionSpec(d_code, float(weight), d_title_vi, d_title_en, tuple(items)))

    return QuestionnaireSpec(
        code=code,
        version=version,
        title_vi=title_vi,
        title_en=title_en,
        scale_min=bounds[0],
        scale_max=bounds[1],
        dimensions=tuple(dimensions),
        source_text=text,
    )


def load_questionnaire_file(path: str | Path) -> QuestionnaireSpec:
    """Read and validate a questionnaire file; errors name the file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise QuestionnaireError(f"{path}: cannot read the file ({exc.strerror})") from None
    try:
        return parse_questionnaire(raw)
    except QuestionnaireError as exc:
        raise QuestionnaireError(f"{path}: {exc}") from None


def default_questionnaire_text() -> str:
    """The packaged questionnaire with EVN's seven criteria."""
    return resources.files("survey").joinpath("questionnaires", DEFAULT_QUESTIONNAIRE).read_text("utf-8")


def store_questionnaire(spec: QuestionnaireSpec) -> Questionnaire:
    """Return the stored version of this file, adding it (as the next version of its code) if new.

    The caller commits.
    """
    existing = db.session.scalar(
        sa.select(Questionnaire).where(Questionnaire.code == spec.code, Questionnaire.checksum == spec.checksum)
    )
    if existing is not None:
        return existing
    latest = db.session.scalar(
        sa.select(sa.func.max(Questionnaire.version)).where(Questionnaire.code == spec.code)
    )
    if spec.version is not None:
        if latest is not None and spec.version <= latest:
            raise QuestionnaireError(
                f"version: {spec.code} version {spec.version} already exists with different content; "
                f"use version {latest + 1} (a questionnaire is immutable once stored)"
            )
        version = spec.version
    else:
        version = (latest or 0) + 1
    questionnaire = Questionnaire(
        code=spec.code,
        version=version,
        title_vi=spec.title_vi,
        title_en=spec.title_en,
        scale_min=spec.scale_min,
        scale_max=spec.scale_max,
        source_text=spec.source_text,
        checksum=spec.checksum,
    )
    for d_position, d in enumerate(spec.dimensions):
        dimension = Dimension(
            position=d_position, code=d.code, weight=d.weight, title_vi=d.title_vi, title_en=d.title_en
        )
        dimension.items = [
            Item(position=i_position, code=i.code, text_vi=i.text_vi, text_en=i.text_en)
            for i_position, i in enumerate(d.items)
        ]
        questionnaire.dimensions.append(dimension)
    db.session.add(questionnaire)
    return questionnaire


@dataclass(frozen=True)
class QuestionnaireLayout:
    """A stored questionnaire's pages and items as plain values, shared by every request of a process."""

    id: int | None
    checksum: str
    version: int
    scale_min: int
    scale_max: int
    dimensions: tuple[DimensionSpec, ...]
    structure: scoring.Structure
    item_codes: tuple[str, ...]


#: Layouts by (questionnaire id, checksum). A questionnaire is immutable once stored, and a changed
#: text is a new checksum, so an entry is never stale; the bound only keeps memory flat.
LAYOUT_CACHE_SIZE = 32
_layouts: OrderedDict[tuple[int, str], QuestionnaireLayout] = OrderedDict()
_layouts_lock = threading.Lock()


def _build_layout(questionnaire: Questionnaire) -> QuestionnaireLayout:
    dimensions = tuple(
        DimensionSpec(
            d.code,
            d.weight,
            d.title_vi,
            d.title_en,
            tuple(ItemSpec(i.code, i.text_vi, i.text_en) for i in d.items),
        )
        for d in questionnaire.dimensions
    )
    structure = scoring.Structure(
        dimensions=tuple(
            scoring.Dimension(code=d.code, weight=d.weight, items=tuple(i.code for i in d.items)) for d in dimensions
        )
    )
    return QuestionnaireLayout(
        id=questionnaire.id,
        checksum=questionnaire.checksum,
        version=questionnaire.version,
        scale_min=questionnaire.scale_min,
        scale_max=questionnaire.scale_max,
        dimensions=dimensions,
        structure=structure,
        item_codes=tuple(i.code for d in dimensions for i in d.items),
    )


def layout_of(questionnaire: Questionnaire) -> QuestionnaireLayout:
    """The questionnaire's layout, read from the database once per process and questionnaire version.

    A questionnaire not yet stored, or with unsaved changes, is read afresh and not remembered.
    """
    if questionnaire.id is None or questionnaire.checksum is None or sa.inspect(questionnaire).modified:
        return _build_layout(questionnaire)
    key = (questionnaire.id, questionnaire.checksum)
    with _layouts_lock:
        layout = _layouts.get(key)
        if layout is not None:
            _layouts.move_to_end(key)
            return layout
    layout = _build_layout(questionnaire)
    with _layouts_lock:
        _layouts[key] = layout
        while len(_layouts) > LAYOUT_CACHE_SIZE:
            _layouts.popitem(last=False)
    return layout


def layout_for(questionnaire_id: int, checksum: str) -> QuestionnaireLayout:
    """The layout of a stored questionnaire known by id and checksum: no query once the process has it."""
    key = (questionnaire_id, checksum)
    with _layouts_lock:
        layout = _layouts.get(key)
        if layout is not None:
            _layouts.move_to_end(key)
            return layout
    questionnaire = db.session.get(Questionnaire, questionnaire_id)
    if questionnaire is None:
        raise LookupError(f"questionnaire {questionnaire_id} does not exist")
    return layout_of(questionnaire)


def structure_of(questionnaire: Questionnaire) -> scoring.Structure:
    """The questionnaire's dimensions, weights and items, as `scoring` needs them."""
    return layout_of(questionnaire).structure
