"""The posted-page reader of the survey's POSTs accepts exactly what the page form accepts, with the same answers."""

from __future__ import annotations

import random

from flask import g
from werkzeug.datastructures import MultiDict

from survey.extensions import db
from survey.models import Campaign
from survey.public.forms import NOT_APPLICABLE, PostedPage, make_page_form, read_posted_page
from survey.questionnaire import layout_of

VALUES = ["1", "5", "10", "0", "11", "-1", "07", "5.0", " 5", "", "na", "NA", "n/a", "x"]


def random_post(rng: random.Random, codes: list[str]) -> MultiDict:
    """A posted page as a browser or a meddler sends it: missing, doubled, odd or unknown fields."""
    pairs: list[tuple[str, str]] = [("csrf_token", "token")]
    for code in codes:
        draw = rng.random()
        if draw < 0.15:
            continue  # not answered
        pairs.append((code, rng.choice(VALUES) if rng.random() < 0.3 else str(rng.randint(1, 10))))
        if draw > 0.95:
            pairs.append((code, rng.choice(VALUES)))  # the same item twice
        if 0.6 < draw < 0.7:
            pairs[-1] = (code, NOT_APPLICABLE)
    draw = rng.random()
    if draw < 0.6:
        pairs.append(("_action", "next"))
    elif draw < 0.9:
        pairs.append(("_action", rng.choice(["back", "save", "", "submit", "NEXT"])))
    if rng.random() < 0.05:
        pairs.append((rng.choice(["extra", "item_" + codes[0], codes[0] + "_x"]), "1"))
    if rng.random() < 0.03:
        pairs.append(("_action", "back"))  # a second button value
    rng.shuffle(pairs)
    return MultiDict(pairs)


def test_reader_and_page_form_agree_on_random_posts(app, make_campaign):
    campaign = make_campaign()
    layout = layout_of(db.session.get(Campaign, campaign.id).questionnaire)
    rng = random.Random(2017)
    accepted = refused = 0
    for _ in range(1500):
        dimension = rng.choice(layout.dimensions)
        codes = [item.code for item in dimension.items]
        posted = random_post(rng, codes)
        with app.test_request_context("/", method="POST", data=posted):
            g.csrf_valid = True  # CSRFProtect checked the token before the view (as in a request)
            form = make_page_form(layout, dimension, "vi")()
            valid = form.validate_page()
            read = read_posted_page(layout, dimension, posted)
            if valid:
                assert read == PostedPage(form.answers(), form.chosen_action), posted
                accepted += 1
            else:
                assert read is None, (posted, form.errors, form.form_errors)
                refused += 1
    assert accepted > 200 and refused > 200  # both kinds of posts were drawn
