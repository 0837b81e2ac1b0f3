"""Every row of the design's validation table (seed 002), the extra bad inputs of the core issue and of issue 9
(web addresses, hidden characters, non-ASCII digits, inputs that used to raise), through the form and the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

FUTURE = (datetime.now(UTC) + timedelta(days=20)).strftime("%Y-%m-%d")
TOO_FAR = (datetime.now(UTC) + timedelta(days=32)).strftime("%Y-%m-%d")
PAST_DAY = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
_two_minutes_ago = datetime.now(UTC) - timedelta(minutes=2)
VALID = {"search-query": "Best hd wallpaper", "date": FUTURE, "time": "11:41", "email": "wsq.wee@example.com",
         "images": "145", "timezone": "UTC"}


def with_(**changes):
    data = dict(VALID)
    for key, value in changes.items():
        key = key.replace("_", "-")
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


# (case, data, field with the error, message) — None field: the submission is accepted.
CASES = [
    ("all fields valid", VALID, None, None),
    ("empty search query", with_(search_query=""), "search-query", "search query is required"),
    ("empty date", with_(date=""), "date", "date is required"),
    ("date before today", with_(date=PAST_DAY), "time", "the scheduled time is in the past"),
    ("empty time", with_(time=""), "time", "time is required"),
    ("time two minutes ago",
     with_(date=_two_minutes_ago.strftime("%Y-%m-%d"), time=_two_minutes_ago.strftime("%H:%M")),
     "time", "the scheduled time is in the past"),
    ("empty email", with_(email=""), "email", "email is required"),
    ("invalid email", with_(email="wsq.wee@"), "email", "email is invalid"),
    ("empty number of images", with_(images=""), "images", "number of images is required"),
    ("text in number of images", with_(images="-1a"), "images", "number of images must be a whole number"),
    ("0 images", with_(images="0"), "images", "number of images must be between 1 and 500"),
    ("501 images", with_(images="501"), "images", "number of images must be between 1 and 500"),
    # Extra bad inputs of the core issue
    ("fractional count", with_(images="2.5"), "images", "number of images must be a whole number"),
    ("negative count", with_(images="-3"), "images", "number of images must be between 1 and 500"),
    ("query over 200 characters", with_(search_query="x" * 201), "search-query",
     "search query must be at most 200 characters"),
    ("unknown time zone", with_(timezone="Mars/Olympus"), "timezone", "time zone 'Mars/Olympus' is unknown"),
    ("malformed date", with_(date="20-09-2021"), "date", "date must be a real date written YYYY-MM-DD"),
    ("impossible date", with_(date="2031-02-30"), "date", "date must be a real date written YYYY-MM-DD"),
    ("malformed time", with_(time="25:61"), "time", "time must be written HH:MM (24-hour clock)"),
    ("missing fields", {"search-query": "cats"}, "email", "email is required"),
    ("unknown image format", with_(formats="bmp"), "formats", "image formats must be among jpeg, png, webp, gif"),
    ("negative minimum width", with_(min_width="-5"), "min-width", "minimum width must be between 0 and 10000"),
    # Inputs that raised (a 500) before issue 9
    ("a count of 5000 digits", with_(images="9" * 5000), "images", "number of images must be between 1 and 500"),
    ("time zone of 300 characters", with_(timezone="A" * 300), "timezone", f"time zone {'A' * 60!r} is unknown"),
    ("year 9999 in Etc/GMT+12", with_(date="9999-12-31", time="23:00", timezone="Etc/GMT+12"), "date",
     "the scheduled time must be within 30 days"),
    ("more than 30 days ahead", with_(date=TOO_FAR), "date", "the scheduled time must be within 30 days"),
    ("200 characters exactly", with_(search_query="y" * 200), None, None),
    ("time zone from the browser", with_(timezone="Asia/Kolkata"), None, None),
    ("one image", with_(images="1"), None, None),
    # Several classes, splits and licences (issue 12)
    ("three queries, one a line", with_(search_query="cat\ndog\r\nred panda"), None, None),
    ("eleven queries", with_(search_query="\n".join(f"animal {n}" for n in range(11))), "search-query",
     "at most 10 search queries (classes), one a line"),
    ("repeated and blank lines count once", with_(search_query="\n".join(["cat", "", "CAT"] * 6 + ["dog"])), None,
     None),
    ("a long query among several", with_(search_query="cat\n" + "x" * 201), "search-query",
     f"search query 2 (“{'x' * 40}”) must be at most 200 characters"),
    ("a URL on the second line", with_(search_query="cat\nwww.evil.example"), "search-query",
     "search query 2 (“www.evil.example”) cannot contain a web address"),
    ("a tab within a line", with_(search_query="cat\tdog\nbird"), "search-query",
     "search query cannot contain control or direction-changing characters"),
    ("a split", with_(split="80/10/10"), None, None),
    ("an unknown split", with_(split="70/30"), "split", "split must be one of 80/20, 80/10/10"),
    ("open licences only", with_(licence="commercial"), None, None),
    ("an unknown licence", with_(licence="nc-only"), "licence",
     "licence must be one of any, open, commercial, modification"),
]


# Nothing a stranger types reaches our emails as a link or as hidden text (issue 9).
WEB_ADDRESSES = ["FREE MONEY http://evil.example", "prizes at WWW.evil.example"]
HIDDEN = [  # (field, value): a right-to-left override, isolates, header injection, NUL, a bidi mark, a tab
    ("search-query", "cats\u202egpj.exe"), ("search-query", "cats \u2067dogs\u2069"),
    ("email", "a@example.com\r\nBcc: b@example.com"), ("timezone", "Europe/Paris\x00"),
    ("date", FUTURE + "\u200f"), ("time", "11:41\t"),
]
NON_ASCII_DIGITS = [  # Arabic-Indic and full-width digits
    ("images", "\u0661\u0662", "number of images must be a whole number"),
    ("time", "\uff11\uff11:\uff14\uff11", "time must be written HH:MM (24-hour clock)"),
    ("date", "\u0662\u0660\u0663\u0661-01-01", "date must be a real date written YYYY-MM-DD"),
]
LABELS = {"search-query": "search query", "email": "email", "timezone": "time zone", "date": "date", "time": "time"}
CASES += [(f"web address {query!r}", with_(search_query=query), "search-query",
           "the search query cannot contain a web address") for query in WEB_ADDRESSES]
CASES += [(f"hidden character in {name} {value!r}", with_(**{name.replace("-", "_"): value}), name,
           f"{LABELS[name]} cannot contain control or direction-changing characters") for name, value in HIDDEN]
CASES += [(f"non-ASCII digits in {name}", with_(**{name: value}), name, message)
          for name, value, message in NON_ASCII_DIGITS]

@pytest.mark.parametrize(("case", "data", "field", "message"), CASES, ids=[c[0] for c in CASES])
def test_form(client, case, data, field, message):
    response = client.post("/", data=data)
    page = response.get_data(as_text=True)
    if field is None:
        # Post/redirect/get: the answer is the job's page, so a reload never submits again.
        assert response.status_code == 303, page
        assert response.headers["Location"].startswith("/jobs/")
        assert "Your job has been submitted" in client.get(response.headers["Location"]).get_data(as_text=True)
        return
    assert response.status_code == 400
    # The message stands next to its field, and what the user typed is kept.
    assert f'<p class="error" id="{field}-error">{message}</p>'.replace("'", "&#39;") in page
    for name in ("email", "images"):
        if data.get(name) and len(data[name]) < 100:
            assert f'value="{data[name]}"' in page
    if data.get("search-query") and len(data["search-query"]) < 100:
        assert f'>{data["search-query"]}</textarea>' in page


@pytest.mark.parametrize(("case", "data", "field", "message"), CASES, ids=[c[0] for c in CASES])
def test_api(client, case, data, field, message):
    response = client.post("/api/jobs", json=data)
    body = response.get_json()
    if field is None:
        assert response.status_code == 201, body
        assert body["status"] == "queued"
        assert client.get(body["status_url"]).get_json()["id"] == body["id"]
        return
    assert response.status_code == 400
    assert {"field": field, "message": message} in body["errors"]


def test_api_accepts_json_numbers_and_lists(client):
    data = with_(images=None) | {"images": 12, "formats": ["png", "jpeg"], "min-width": 64}
    response = client.post("/api/jobs", json=data)
    assert response.status_code == 201, response.get_json()
    status = client.get(response.get_json()["status_url"]).get_json()
    assert status["count"] == 12
    assert status["options"] == {"formats": ["jpeg", "png"], "min_width": 64, "min_height": 0, "split": None,
                                 "layout": "imagefolder", "licence": "any"}


def test_api_takes_a_list_of_queries_a_layout_and_a_split(client):
    data = with_(search_query=None) | {"search-query": ["cat", "dog", "Cat", "red panda"], "layout": "webdataset",
                                       "split": "80/20", "licence": "open"}
    response = client.post("/api/jobs", json=data)
    assert response.status_code == 201, response.get_json()
    status = client.get(response.get_json()["status_url"]).get_json()
    assert status["query"] == "cat, dog, red panda"
    assert status["options"]["classes"] == ["cat", "dog", "red panda"]
    assert {k: status["options"][k] for k in ("layout", "split", "licence")} == {
        "layout": "webdataset", "split": "80/20", "licence": "open"}


@pytest.mark.parametrize(("value", "field", "message"), [
    ({"search-query": ["cat", 3]}, "search-query", "search query must be text or a number"),
    ({"search-query": [["cat"]]}, "search-query", "search query must be text or a number"),
    ({"search-query": ["cat", "dog\u202e"]}, "search-query",
     "search query cannot contain control or direction-changing characters"),
    ({"layout": "coco"}, "layout", "layout must be one of imagefolder, webdataset"),
    ({"split": ["80/20"]}, "split", "split must be text or a number"),
])
def test_api_refuses_bad_classes_and_layouts(client, value, field, message):
    response = client.post("/api/jobs", json=with_(search_query=None) | {"search-query": "cat"} | value)
    assert response.status_code == 400
    assert {"field": field, "message": message} in response.get_json()["errors"]


@pytest.mark.parametrize("body", ["not json", "[1, 2]", ""])
def test_api_rejects_a_body_that_is_not_an_object(client, body):
    response = client.post("/api/jobs", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["message"] == "the body must be a JSON object"


def test_api_rejects_true_as_a_count(client):
    response = client.post("/api/jobs", json=with_(images=None) | {"images": True})
    assert response.status_code == 400
    assert {"field": "images", "message": "number of images must be a whole number"} in response.get_json()["errors"]


def test_local_time_is_converted_to_utc(client):
    response = client.post("/api/jobs", json=with_(time="09:30", timezone="Asia/Kolkata"))
    assert response.status_code == 201
    assert response.get_json()["run_at"] == f"{FUTURE}T04:00:00+00:00"


def test_max_images_is_a_setting(make_app):
    client = make_app(WTF_CSRF_ENABLED=False, MAX_IMAGES=1000).test_client()
    assert client.post("/api/jobs", json=with_(images="900")).status_code == 201
    response = client.post("/api/jobs", json=with_(images="1001"))
    error = {"field": "images", "message": "number of images must be between 1 and 1000"}
    assert error in response.get_json()["errors"]


@pytest.mark.parametrize("name", ["search-query", "email", "images", "date", "time", "timezone", "min-width"])
def test_api_refuses_nested_values_naming_the_field(client, name):
    # A list of strings is the search query's other form (one query per class); a list of lists is not.
    for nested in ({"a": "b"}, [["x"]] if name == "search-query" else ["x"]):
        response = client.post("/api/jobs", json=with_(**{name.replace("-", "_"): None}) | {name: nested})
        assert response.status_code == 400
        errors = response.get_json()["errors"]
        assert [e["field"] for e in errors] == [name]
        assert errors[0]["message"].endswith("must be text or a number")


def test_max_schedule_days_is_a_setting(make_app):
    client = make_app(WTF_CSRF_ENABLED=False, MAX_SCHEDULE_DAYS=40).test_client()
    assert client.post("/api/jobs", json=with_(date=TOO_FAR)).status_code == 201
    far = (datetime.now(UTC) + timedelta(days=45)).strftime("%Y-%m-%d")
    response = client.post("/api/jobs", json=with_(date=far))
    assert {"field": "date", "message": "the scheduled time must be within 40 days"} in response.get_json()["errors"]


@pytest.mark.parametrize(("clock", "accepted"), [("10:31", True), ("10:30", True), ("10:29", False)])
def test_the_minute_picked_as_now_is_accepted_after_the_minute_turns(clock, accepted):
    from jobs.validation import validate_submission

    now = datetime(2026, 12, 2, 10, 31, 0, 500_000, tzinfo=UTC)  # half a second after 10:30 turned to 10:31
    data = dict(VALID, date="2026-12-02", time=clock)
    submission, errors = validate_submission(data, now=now)
    expected = (True, {}) if accepted else (False, {"time": "the scheduled time is in the past"})
    assert (submission is not None, errors) == expected
