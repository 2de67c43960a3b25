"""Reasons in words, in English and Vietnamese, for each unit's status (one function per reason code)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReasonFacts:
    """What a reason may mention about a unit."""

    code: str
    difference: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_adjusted: float | None = None
    margin: float = 0.3
    n_units_tested: int = 0
    n_raters: int = 0
    raters_disagree: bool | None = None
    disagreement_p: float | None = None
    consultant_n: int = 0
    cross_n: int = 0
    unadjusted_raters: tuple[str, ...] = ()
    no_leniency_model: bool = False


def _num(value: float | None, lang: str, signed: bool = False) -> str:
    if value is None:
        return "?"
    text = f"{value:+.2f}" if signed else f"{value:.2f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    if text in ("+0", "-0", "0", ""):
        text = "0"
    if lang == "vi":
        text = text.replace(".", ",")
    return text.replace("-", "−")


def _p(value: float | None, lang: str) -> str:
    if value is None:
        return "?"
    if value < 0.001:
        return "< 0,001" if lang == "vi" else "< 0.001"
    text = f"{value:.3f}"
    return "= " + (text.replace(".", ",") if lang == "vi" else text)


def _ci(f: ReasonFacts, lang: str) -> str:
    low, high = _num(f.ci_low, lang, True), _num(f.ci_high, lang, True)
    if lang == "vi":
        return f"khoảng tin cậy 95% từ {low} đến {high}"
    return f"95% CI {low} to {high}"


def _raters(f: ReasonFacts, lang: str) -> str:
    if f.n_raters <= 0:
        return ""
    if f.n_raters == 1:
        return "chỉ một đơn vị chấm chéo" if lang == "vi" else "only one auditing unit scored it"
    if f.raters_disagree is None:
        if lang == "vi":
            return f"chưa so sánh được {f.n_raters} đơn vị chấm chéo với nhau"
        return f"the {f.n_raters} auditing units could not be compared with each other"
    if f.raters_disagree:
        if lang == "vi":
            return f"các đơn vị chấm chéo không thống nhất với nhau (p {_p(f.disagreement_p, lang)})"
        return f"the auditing units disagree with each other (p {_p(f.disagreement_p, lang)})"
    if lang == "vi":
        return f"{f.n_raters} đơn vị chấm chéo thống nhất với nhau"
    return f"the {f.n_raters} auditing units agree"


def _caveats(f: ReasonFacts, lang: str) -> list[str]:
    out = []
    if f.no_leniency_model:
        out.append(
            "chưa hiệu chỉnh độ dễ dãi của đơn vị chấm (không đủ dữ liệu để ước lượng)"
            if lang == "vi"
            else "not adjusted for auditor leniency (too little data to estimate it)"
        )
    if f.unadjusted_raters:
        names = ", ".join(f.unadjusted_raters)
        out.append(
            f"độ dễ dãi của {names} không tách được khỏi đơn vị này"
            if lang == "vi"
            else f"the leniency of {names} cannot be separated from this unit's own data"
        )
    return out


def _direction(f: ReasonFacts, lang: str) -> str:
    d = f.difference or 0.0
    size = _num(abs(d), lang)
    if lang == "vi":
        where = "cao hơn" if d >= 0 else "thấp hơn"
        return f"điểm chấm chéo {where} đơn vị tư vấn {size} điểm (ngoài chênh lệch chung của đợt)"
    where = "above" if d >= 0 else "below"
    return f"cross-scores {size} {where} the consultant beyond the campaign-wide offset"


def reason(f: ReasonFacts, lang: str = "en") -> str:
    """Render the reason for a unit's status as one or two plain sentences."""
    vi = lang == "vi"
    parts: list[str]
    c = f.code
    if c == "no_data":
        parts = ["không có dữ liệu tư vấn và chấm chéo" if vi else "no consultant and no cross data"]
    elif c == "no_consultant_data":
        parts = ["không có dữ liệu của đơn vị tư vấn" if vi else "no consultant data"]
    elif c == "consultant_one_respondent":
        parts = [
            "đơn vị tư vấn chỉ có 1 phiếu, không tính được khoảng tin cậy"
            if vi
            else "the consultant has only one respondent, so its precision is unknown"
        ]
    elif c == "consultant_zero_variance":
        parts = [
            "mọi phiếu của đơn vị tư vấn có cùng một điểm, không ước lượng được độ chính xác"
            if vi
            else "every consultant respondent gave the same index, so its precision cannot be estimated"
        ]
    elif c == "no_cross_data":
        parts = ["không có dữ liệu chấm chéo" if vi else "no cross data"]
    elif c == "cross_one_respondent":
        parts = [
            "chỉ có 1 phiếu chấm chéo, quá ít để kết luận"
            if vi
            else "only one cross interview, too few to decide"
        ]
    elif c == "too_few_units":
        parts = [
            "quá ít đơn vị có cả hai nguồn dữ liệu (cần ít nhất 3) để tách chênh lệch chung của đợt"
            if vi
            else "too few units have both sources (at least 3 needed) to separate the campaign-wide offset"
        ]
    elif c == "model_failed":
        parts = ["không ước lượng được mô hình" if vi else "the model could not be estimated for this unit"]
    elif c == "leniency_unestimable":
        parts = [
            (f"chênh lệch {_num(f.difference, 'vi', True)} điểm ({_ci(f, lang)}) nhưng không kết luận được"
             if vi
             else f"difference {_num(f.difference, 'en', True)} ({_ci(f, lang)}) but no decision")
        ]
    elif c == "inconsistent":
        parts = [_direction(f, lang), _raters(f, lang), f"p hiệu chỉnh {_p(f.p_adjusted, lang)}" if vi else f"adjusted p {_p(f.p_adjusted, lang)}"]
    elif c == "consistent":
        if vi:
            parts = [f"điểm chấm chéo và tư vấn khớp trong phạm vi ±{_num(f.margin, lang)} điểm (chênh lệch {_num(f.difference, lang, True)}, {_ci(f, lang)})", _raters(f, lang)]
        else:
            parts = [f"cross-scores and consultant agree within ±{_num(f.margin, lang)} (difference {_num(f.difference, lang, True)}, {_ci(f, lang)})", _raters(f, lang)]
    elif c == "not_significant":
        if vi:
            parts = [_direction(f, lang) + f", nhưng chưa vượt mức ngẫu nhiên khi xét cùng {f.n_units_tested} đơn vị (p hiệu chỉnh {_p(f.p_adjusted, lang)})", _raters(f, lang)]
        else:
            parts = [_direction(f, lang) + f" but not beyond chance across {f.n_units_tested} units (adjusted p {_p(f.p_adjusted, lang)})", _raters(f, lang)]
    elif c == "within_margin":
        if vi:
            parts = [f"chênh lệch {_num(f.difference, lang, True)} điểm có ý nghĩa thống kê nhưng nhỏ hơn ngưỡng {_num(f.margin, lang)}, và khoảng tin cậy ({_ci(f, lang)}) chưa đủ hẹp để khẳng định khớp", _raters(f, lang)]
        else:
            parts = [f"the difference {_num(f.difference, lang, True)} is real but below the {_num(f.margin, lang)} margin, and the interval ({_ci(f, lang)}) is too wide to confirm agreement", _raters(f, lang)]
    else:  # too_wide
        if vi:
            parts = [f"khoảng tin cậy quá rộng để kết luận (chênh lệch {_num(f.difference, lang, True)}, {_ci(f, lang)}); cần thêm phiếu chấm chéo", _raters(f, lang)]
        else:
            parts = [f"interval too wide to decide (difference {_num(f.difference, lang, True)}, {_ci(f, lang)}); more cross interviews needed", _raters(f, lang)]
    parts = [p for p in parts if p] + _caveats(f, lang)
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."
