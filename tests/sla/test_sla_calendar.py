"""Business calendars: sla-semantics.md 3.7 calendar catalogue, items 1-8, with exact values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sla_helpers import SPAN, WEEKDAYS, local, office

from engine.errors import CalendarError, SourceSpan
from engine.sla.calendar import BusinessCalendar
from engine.sop.model import CalendarSpec, frozen_map

H = 3600


# ---- 1. add/diff inside an interval, across lunch, weekend, holidays, closures -------------


def test_inside_one_interval(office_cal: BusinessCalendar) -> None:
    start = local(2026, 1, 5, 9)  # Monday
    assert office_cal.add(start, H) == local(2026, 1, 5, 10)
    assert office_cal.between(start, local(2026, 1, 5, 10)) == H


def test_across_lunch_break(office_cal: BusinessCalendar) -> None:
    start = local(2026, 1, 5, 11, 30)
    assert office_cal.add(start, H) == local(2026, 1, 5, 13, 30)
    assert office_cal.between(start, local(2026, 1, 5, 13, 30)) == H
    assert office_cal.between(local(2026, 1, 5, 12), local(2026, 1, 5, 13)) == 0


def test_across_weekend(office_cal: BusinessCalendar) -> None:
    friday = local(2026, 1, 9, 17)
    assert office_cal.add(friday, H) == local(2026, 1, 12, 8, 30)
    assert office_cal.between(friday, local(2026, 1, 12, 8, 30)) == H


def test_across_recurring_holiday() -> None:
    cal = office(recurring_holidays=["12-24", "12-25"])
    # Wednesday 2026-12-23 17:00; Thursday 24 and Friday 25 closed; weekend
    assert cal.add(local(2026, 12, 23, 17), H) == local(2026, 12, 28, 8, 30)
    # recurring: the same dates are closed in other years too
    assert not cal.is_open(local(2030, 12, 24, 10))
    assert cal.between(local(2026, 12, 23, 17), local(2026, 12, 28, 8, 30)) == H


def test_across_one_off_closure() -> None:
    cal = office(closures=["2026-01-06"])
    assert cal.add(local(2026, 1, 5, 17), H) == local(2026, 1, 7, 8, 30)
    assert cal.is_open(local(2027, 1, 6, 10))  # one-off: next year's date is open


def test_country_public_holidays() -> None:
    cal = office(country="NL")
    # King's Day, Monday 2026-04-27
    assert cal.add(local(2026, 4, 24, 17), H) == local(2026, 4, 28, 8, 30)
    assert cal.is_closed_date(datetime(2026, 12, 25).date())
    de_by = BusinessCalendar.create(
        "by", "Europe/Berlin", week={"mon": ["08:00-16:00"]}, country="DE", subdivision="BY"
    )
    assert de_by.is_closed_date(datetime(2026, 1, 6).date())  # Epiphany, Bavaria only
    de = BusinessCalendar.create("de", "Europe/Berlin", week={"mon": ["08:00-16:00"]}, country="DE")
    assert not de.is_closed_date(datetime(2026, 1, 6).date())


def test_unknown_country_is_refused() -> None:
    with pytest.raises(CalendarError, match="unknown holiday set country='XX'"):
        office(country="XX")


# ---- 2. start outside hours, exactly at interval end / start ------------------------------


def test_start_outside_hours_counts_from_next_open(office_cal: BusinessCalendar) -> None:
    saturday = local(2026, 1, 10, 14)
    assert office_cal.next_open(saturday) == local(2026, 1, 12, 8)
    assert office_cal.add(saturday, 30 * 60) == local(2026, 1, 12, 8, 30)
    early = local(2026, 1, 5, 6)
    assert office_cal.add(early, H) == local(2026, 1, 5, 9)


def test_start_exactly_at_interval_end_and_start(office_cal: BusinessCalendar) -> None:
    assert not office_cal.is_open(local(2026, 1, 5, 12))  # intervals are half-open
    assert office_cal.is_open(local(2026, 1, 5, 8))
    assert office_cal.add(local(2026, 1, 5, 12), H) == local(2026, 1, 5, 14)
    assert office_cal.add(local(2026, 1, 5, 8), H) == local(2026, 1, 5, 9)
    assert office_cal.next_open(local(2026, 1, 5, 12)) == local(2026, 1, 5, 13)
    assert office_cal.next_open(local(2026, 1, 5, 8)) == local(2026, 1, 5, 8)


def test_result_may_land_exactly_at_an_interval_end(office_cal: BusinessCalendar) -> None:
    assert office_cal.add(local(2026, 1, 5, 11), H) == local(2026, 1, 5, 12)
    assert office_cal.add(local(2026, 1, 5, 8), 4 * H + 4 * H + 30 * 60) == local(
        2026, 1, 5, 17, 30
    )


def test_results_are_utc(office_cal: BusinessCalendar) -> None:
    result = office_cal.add(local(2026, 1, 5, 9), H)
    assert result.utcoffset() == timedelta(0)
    assert office_cal.local(result).isoformat() == "2026-01-05T10:00:00+01:00"


# ---- 3. DST in four zones, 24x7 and 9-5 -----------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "day", "hours"),
    [
        ("Europe/Berlin", (2026, 3, 29), 23),
        ("Europe/Berlin", (2026, 10, 25), 25),
        ("America/Sao_Paulo", (2018, 11, 4), 23),  # midnight itself was skipped
        ("America/Sao_Paulo", (2019, 2, 16), 25),  # 23:00-24:00 repeated
        ("Asia/Tehran", (2021, 3, 22), 23),  # midnight skipped
        ("Asia/Tehran", (2021, 9, 21), 25),
        ("Australia/Sydney", (2026, 10, 4), 23),
        ("Australia/Sydney", (2026, 4, 5), 25),
        ("Europe/Berlin", (2026, 6, 1), 24),
    ],
)
def test_24x7_day_across_dst_has_real_length(
    tz: str, day: tuple[int, int, int], hours: int
) -> None:
    cal = BusinessCalendar.always(tz)
    zone = ZoneInfo(tz)
    nxt = datetime(*day) + timedelta(days=1)
    # a skipped midnight (Sao Paulo 2018, Tehran 2021) maps to the transition instant
    start = datetime(*day, tzinfo=zone)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)
    assert cal.between(start, end) == hours * H
    assert cal.add(start, hours * H) == end
    assert len(cal.open_intervals(start - timedelta(days=2), end + timedelta(days=2))) == 1


def test_24x7_wall_add_across_berlin_spring_forward() -> None:
    cal = BusinessCalendar.always("Europe/Berlin")
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 3, 29, 0, 0, tzinfo=berlin)
    assert cal.local(cal.add(start, 24 * H)).isoformat() == "2026-03-30T01:00:00+02:00"
    assert cal.local(cal.add(start, 3 * H)).isoformat() == "2026-03-29T04:00:00+02:00"


@pytest.mark.parametrize(
    ("tz", "friday", "monday"),
    [
        ("Europe/Berlin", (2026, 3, 27), (2026, 3, 30)),
        ("Europe/Berlin", (2026, 10, 23), (2026, 10, 26)),
        ("America/Sao_Paulo", (2018, 11, 2), (2018, 11, 5)),
        ("Asia/Tehran", (2021, 3, 19), (2021, 3, 22)),  # Friday..Monday around the change
        ("Australia/Sydney", (2026, 10, 2), (2026, 10, 5)),
        ("Australia/Sydney", (2026, 4, 3), (2026, 4, 6)),
    ],
)
def test_nine_to_five_across_dst_weekend(
    tz: str, friday: tuple[int, int, int], monday: tuple[int, int, int]
) -> None:
    zone = ZoneInfo(tz)
    cal = BusinessCalendar.create("nf", tz, week={d: ["09:00-17:00"] for d in WEEKDAYS})
    start = datetime(*friday, 16, tzinfo=zone)
    due = cal.add(start, 2 * H)
    assert cal.local(due).replace(tzinfo=None) == datetime(*monday, 10)
    assert cal.between(start, due) == 2 * H


def test_overnight_shift_across_dst_counts_real_time() -> None:
    night = BusinessCalendar.create(
        "night", "Europe/Berlin", week={"sat": ["22:00-06:00"], "sun": ["22:00-06:00"]}
    )
    berlin = ZoneInfo("Europe/Berlin")
    spring = datetime(2026, 3, 28, 22, tzinfo=berlin)
    assert night.between(spring, datetime(2026, 3, 29, 6, tzinfo=berlin)) == 7 * H
    autumn = datetime(2026, 10, 24, 22, tzinfo=berlin)
    assert night.between(autumn, datetime(2026, 10, 25, 6, tzinfo=berlin)) == 9 * H


def test_interval_inside_skipped_hour_is_empty_and_repeated_hour_counts_once_per_occurrence() -> (
    None
):
    cal = BusinessCalendar.create("odd", "Europe/Berlin", week={"sun": ["02:00-03:00"]})
    berlin = ZoneInfo("Europe/Berlin")
    day = lambda y, m, d: (datetime(y, m, d, tzinfo=berlin), datetime(y, m, d, 12, tzinfo=berlin))  # noqa: E731
    assert cal.between(*day(2026, 3, 29)) == 0  # 02:00-03:00 never happened
    assert cal.between(*day(2026, 10, 25)) == 2 * H  # it happened twice: 2 real hours
    assert cal.between(*day(2026, 6, 7)) == H


# ---- 4. calendar tz != case tz != server tz ------------------------------------------------


def test_instants_in_any_zone_mean_the_same(office_cal: BusinessCalendar) -> None:
    new_york = ZoneInfo("America/New_York")
    start_ny = datetime(2026, 1, 5, 3, tzinfo=new_york)  # 09:00 in Amsterdam
    assert office_cal.add(start_ny, H) == local(2026, 1, 5, 10)
    assert office_cal.add(start_ny.astimezone(UTC), H) == local(2026, 1, 5, 10)


_PROBE = """
import json, time
from datetime import datetime, timezone
from engine.sla.calendar import BusinessCalendar
cal = BusinessCalendar.create("o", "Europe/Amsterdam",
    week={d: ["08:00-12:00", "13:00-17:30"] for d in ("mon", "tue", "wed", "thu", "fri")})
start = datetime(2026, 3, 27, 15, tzinfo=timezone.utc)
print(json.dumps([cal.add(start, 7 * 3600).isoformat(), cal.between(start,
    datetime(2026, 4, 2, tzinfo=timezone.utc)), time.strftime("%Z")]))
"""


def test_server_time_zone_does_not_matter() -> None:
    results = {}
    for tz in ("UTC", "Pacific/Kiritimati", "America/Los_Angeles", "Asia/Kathmandu"):
        env = {**os.environ, "TZ": tz}
        out = subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
        )
        results[tz] = json.loads(out.stdout)
    answers = {tuple(v[:2]) for v in results.values()}
    assert len(answers) == 1, results
    assert len({v[2] for v in results.values()}) > 1  # the processes really had other zones


def test_server_time_zone_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is POSIX only")
    start = datetime(2026, 3, 27, 15, tzinfo=UTC)
    seen = set()
    try:
        for tz in ("UTC", "Australia/Sydney", "America/Sao_Paulo"):
            monkeypatch.setenv("TZ", tz)
            time.tzset()
            cal = office()
            seen.add((cal.add(start, 7 * H), cal.between(start, start + timedelta(days=5))))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert len(seen) == 1


# ---- 5. overnight shifts, 24x7, no open hours ---------------------------------------------


@pytest.fixture(scope="module")
def night() -> BusinessCalendar:
    return BusinessCalendar.create(
        "night",
        "Europe/Amsterdam",
        week={d: ["22:00-06:00"] for d in WEEKDAYS},
        closures=["2026-01-07"],
    )


def test_overnight_shift_add(night: BusinessCalendar) -> None:
    assert night.add(local(2026, 1, 5, 23), 3 * H) == local(2026, 1, 6, 2)
    assert night.add(local(2026, 1, 6, 5), 2 * H) == local(2026, 1, 6, 23)
    assert night.add(local(2026, 1, 5, 12), 0) == local(2026, 1, 5, 22)
    assert night.is_open(local(2026, 1, 6, 0, 30))
    assert not night.is_open(local(2026, 1, 6, 6))


def test_overnight_shift_between(night: BusinessCalendar) -> None:
    assert night.between(local(2026, 1, 5, 21), local(2026, 1, 6, 7)) == 8 * H
    assert night.between(local(2026, 1, 5, 0), local(2026, 1, 6, 0)) == 2 * H


def test_holiday_closes_the_shift_that_starts_on_it(night: BusinessCalendar) -> None:
    # Wednesday 2026-01-07 is closed: Tuesday's shift still runs into Wednesday morning,
    # Wednesday's 22:00 shift does not happen.
    assert night.is_open(local(2026, 1, 7, 3))
    assert not night.is_open(local(2026, 1, 7, 23))
    assert night.add(local(2026, 1, 7, 5), 2 * H) == local(2026, 1, 8, 23)


def test_24x7_is_wall_time() -> None:
    cal = BusinessCalendar.always()
    start = datetime(2026, 1, 5, 10, 17, 3, tzinfo=UTC)
    assert cal.add(start, 100_000) == start + timedelta(seconds=100_000)
    assert cal.between(start, start + timedelta(days=400)) == 400 * 86_400
    assert cal.is_open(start)


def test_calendar_with_no_open_intervals_is_refused() -> None:
    with pytest.raises(CalendarError, match="no open hours"):
        BusinessCalendar.create("empty", "UTC", week={})
    with pytest.raises(CalendarError, match="no open hours"):
        BusinessCalendar.create("empty", "UTC", week={"mon": []})


def test_every_date_a_holiday_is_refused() -> None:
    every = [f"{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 32) if _valid(m, d)]
    with pytest.raises(CalendarError, match="no open hours"):
        BusinessCalendar.create(
            "never", "UTC", week={"mon": ["09:00-17:00"]}, recurring_holidays=every
        )


def _valid(m: int, d: int) -> bool:
    try:
        datetime(2000, m, d)
    except ValueError:
        return False
    return True


def test_open_only_in_decades_apart_fails_with_clear_error() -> None:
    # open only on Monday 29 February: 2016 and then 2044
    dates = [
        f"{m:02d}-{d:02d}"
        for m in range(1, 13)
        for d in range(1, 32)
        if _valid(m, d) and (m, d) != (2, 29)
    ]
    cal = BusinessCalendar.create(
        "rare", "UTC", week={"mon": ["09:00-17:00"]}, recurring_holidays=dates
    )
    with pytest.raises(CalendarError, match="no open hours within 3660 days"):
        cal.add(datetime(2016, 3, 1, tzinfo=UTC), H)


@pytest.mark.parametrize(
    ("week", "message"),
    [
        ({"monday": ["09:00-17:00"]}, "unknown day 'monday'"),
        ({"mon": ["25:00-26:00"]}, "not a time of day"),
        ({"mon": ["9am-5pm"]}, "not a time; write HH:MM"),
        ({"mon": [["09:00"]]}, "is not an interval"),
        ({"mon": ["09:00-12:60"]}, "not a time of day"),
    ],
)
def test_bad_week_entries_are_refused(week: dict[str, list[object]], message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        BusinessCalendar.create("bad", "UTC", week=week)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"recurring_holidays": ["13-01"]}, "recurring holiday '13-01'"),
        ({"recurring_holidays": ["2026-12-25"]}, "write MM-DD"),
        ({"closures": ["2026-02-30"]}, "closure '2026-02-30'"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_bad_dates_and_zones_are_refused(kwargs: dict[str, object], message: str) -> None:
    args = {"timezone": "UTC", **kwargs}
    with pytest.raises(CalendarError, match=message):
        BusinessCalendar.create("bad", week={"mon": ["09:00-17:00"]}, **args)  # type: ignore[arg-type]


def test_overlapping_intervals_merge_and_24h_interval() -> None:
    cal = BusinessCalendar.create(
        "m", "UTC", week={"mon": ["09:00-12:00", "11:00-13:00"], "tue": ["08:00-08:00"]}
    )
    monday = datetime(2026, 1, 5, tzinfo=UTC)
    assert cal.between(monday, monday + timedelta(days=1)) == 4 * H
    assert cal.between(monday + timedelta(days=1), monday + timedelta(days=3)) == 24 * H


# ---- 6. invalid durations, diff with end before start --------------------------------------


def test_negative_and_non_integer_business_time_refused(office_cal: BusinessCalendar) -> None:
    with pytest.raises(CalendarError, match="must not be negative"):
        office_cal.add(local(2026, 1, 5, 9), -1)
    with pytest.raises(CalendarError, match="whole seconds"):
        office_cal.add(local(2026, 1, 5, 9), 1.5)  # type: ignore[arg-type]
    with pytest.raises(CalendarError, match="whole number >= 0"):
        office_cal.add_days(local(2026, 1, 5, 9), -1)


def test_naive_instants_refused(office_cal: BusinessCalendar) -> None:
    with pytest.raises(CalendarError, match="has no time zone"):
        office_cal.add(datetime(2026, 1, 5, 9), H)


def test_between_end_before_start_is_zero(office_cal: BusinessCalendar) -> None:
    assert office_cal.between(local(2026, 1, 6, 9), local(2026, 1, 5, 9)) == 0
    assert office_cal.between(local(2026, 1, 6, 9), local(2026, 1, 6, 9)) == 0


# ---- 7. business days vs business hours ----------------------------------------------------


def test_business_days_are_not_24_business_hours(office_cal: BusinessCalendar) -> None:
    monday = local(2026, 1, 5, 10)
    assert office_cal.add_days(monday, 1) == local(2026, 1, 6, 10)
    assert office_cal.add(monday, 24 * H) == local(2026, 1, 8, 8, 30)


def test_business_days_skip_weekends_and_holidays() -> None:
    cal = office(closures=["2026-01-12"])
    assert cal.add_days(local(2026, 1, 9, 10), 1) == local(2026, 1, 13, 10)
    assert cal.add_days(local(2026, 1, 9, 10), 0) == local(2026, 1, 9, 10)
    assert cal.add_days(local(2026, 1, 10, 10), 0) == local(2026, 1, 13, 8)  # Saturday -> next open


def test_end_of_working_day_option(office_cal: BusinessCalendar) -> None:
    assert office_cal.add_days(local(2026, 1, 5, 10), 1, end_of_day=True) == local(
        2026, 1, 6, 17, 30
    )
    assert office_cal.add_days(local(2026, 1, 5, 10), 0, end_of_day=True) == local(
        2026, 1, 5, 17, 30
    )


def test_business_day_result_clamped_to_that_days_hours() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    cal = BusinessCalendar.create(
        "de",
        "Europe/Berlin",
        week={**{d: ["08:00-18:00"] for d in WEEKDAYS}, "sat": ["09:00-13:00"]},
    )
    friday = datetime(2026, 1, 9, 15, tzinfo=berlin)
    assert cal.add_days(friday, 1) == datetime(2026, 1, 10, 13, tzinfo=berlin)  # closes at 13:00
    early = datetime(2026, 1, 9, 8, tzinfo=berlin)
    assert cal.add_days(early, 1) == datetime(2026, 1, 10, 9, tzinfo=berlin)  # opens at 09:00


def test_night_desk_business_day_is_the_shift_start_date(night: BusinessCalendar) -> None:
    # Tuesday 01:00 belongs to Monday's shift; one business day later: Tuesday's shift, 01:00
    assert night.add_days(local(2026, 1, 6, 1), 1) == local(2026, 1, 7, 1)
    # end of day of Monday's shift is Tuesday 06:00
    assert night.add_days(local(2026, 1, 5, 23), 0, end_of_day=True) == local(2026, 1, 6, 6)


# ---- 8. second precision ---------------------------------------------------------------


def test_second_precision(office_cal: BusinessCalendar) -> None:
    assert office_cal.add(local(2026, 1, 5, 9), 1) == local(2026, 1, 5, 9, 0, 1)
    assert office_cal.add(local(2026, 1, 5, 11, 59, 59), 2) == local(2026, 1, 5, 13, 0, 1)
    assert office_cal.between(local(2026, 1, 5, 11, 59, 59), local(2026, 1, 5, 13, 0, 1)) == 2


def test_sub_second_part_is_dropped(office_cal: BusinessCalendar) -> None:
    start = local(2026, 1, 5, 9).replace(microsecond=999_999)
    assert office_cal.add(start, 1) == local(2026, 1, 5, 9, 0, 1)


# ---- iCalendar import ----------------------------------------------------------------------

_ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//careflow//test//EN
BEGIN:VEVENT
UID:1
DTSTART;VALUE=DATE:20260106
DTEND;VALUE=DATE:20260108
SUMMARY:Company days (two)
END:VEVENT
BEGIN:VEVENT
UID:2
DTSTART;TZID=Europe/Amsterdam:20260108T100000
DTEND;TZID=Europe/Amsterdam:20260108T110000
SUMMARY:All-hands meeting
END:VEVENT
BEGIN:VEVENT
UID:3
DTSTART:20260109T090000Z
DTEND:20260109T100000Z
SUMMARY:Shown as free: ignored
TRANSP:TRANSPARENT
END:VEVENT
BEGIN:VEVENT
UID:4
DTSTART;TZID=Europe/Amsterdam:20260112T140000
DTEND;TZID=Europe/Amsterdam:20260112T150000
RRULE:FREQ=WEEKLY;COUNT=3
EXDATE;TZID=Europe/Amsterdam:20260119T140000
SUMMARY:Weekly training
END:VEVENT
END:VCALENDAR
"""


def test_ical_closures(tmp_path: Path) -> None:
    (tmp_path / "closed.ics").write_text(_ICS)
    spec = CalendarSpec(
        id="office_nl",
        timezone="Europe/Amsterdam",
        span=SPAN,
        week=frozen_map({d: (("08:00", "12:00"), ("13:00", "17:30")) for d in WEEKDAYS}),
        ical="closed.ics",
        source=str(tmp_path / "calendar.yaml"),
    )
    cal = BusinessCalendar.from_spec(spec)
    assert not cal.is_open(local(2026, 1, 6, 10))  # all-day events close whole days
    assert not cal.is_open(local(2026, 1, 7, 10))
    assert cal.between(local(2026, 1, 8, 8), local(2026, 1, 8, 12)) == 3 * H  # 10-11 closed
    assert cal.add(local(2026, 1, 8, 9, 30), H) == local(2026, 1, 8, 11, 30)
    assert cal.is_open(local(2026, 1, 9, 10, 30))  # transparent event ignored
    assert not cal.is_open(local(2026, 1, 12, 14, 30))  # RRULE occurrence 1
    assert cal.is_open(local(2026, 1, 19, 14, 30))  # EXDATE
    assert not cal.is_open(local(2026, 1, 26, 14, 30))  # occurrence 3
    assert cal.is_open(local(2026, 2, 2, 14, 30))  # COUNT=3 ended


def test_ical_missing_or_broken(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match="cannot read it"):
        office(ical="nope.ics", base_dir=tmp_path)
    (tmp_path / "bad.ics").write_text("this is not ical")
    with pytest.raises(CalendarError, match="not a valid iCalendar"):
        office(ical="bad.ics", base_dir=tmp_path)


def test_from_spec_prefixes_errors_with_position() -> None:
    spec = CalendarSpec(
        id="x", timezone="UTC", span=SourceSpan("org/cal.yaml", 3, 1), week=frozen_map({})
    )
    with pytest.raises(CalendarError, match=r"^org/cal.yaml:3:1: calendar 'x': no open hours"):
        BusinessCalendar.from_spec(spec)


# ---- efficiency (behaviour, not timing: a year of business time is one call) --------------


def test_a_year_of_business_time_round_trips(office_cal: BusinessCalendar) -> None:
    start = local(2026, 1, 5, 9)
    year = 52 * 5 * 8 * H
    due = office_cal.add(start, year)
    assert office_cal.between(start, due) == year
    assert office_cal.open_intervals(due - timedelta(hours=1), due)[-1][1] == due


def test_calendars_pickle_and_copy_by_value(office_cal: BusinessCalendar) -> None:
    import copy
    import pickle

    cal = office(country="NL", closures=["2026-01-06"])
    cal.add(local(2026, 1, 5, 9), 100 * H)  # fill the caches
    for twin in (pickle.loads(pickle.dumps(cal)), copy.deepcopy(cal)):
        assert twin == cal
        assert twin.add(local(2026, 1, 5, 17), H) == local(2026, 1, 7, 8, 30)
    assert hash(office_cal) == hash(office())


def test_same_hours_in_the_customers_zone(office_cal: BusinessCalendar) -> None:
    ny = office_cal.in_zone("America/New_York")
    assert ny.id == "office_nl@America/New_York"
    assert ny.in_zone("Europe/Amsterdam").id == "office_nl@Europe/Amsterdam"
    assert office_cal.in_zone("Europe/Amsterdam") is office_cal
    new_york = ZoneInfo("America/New_York")
    start = datetime(2026, 1, 9, 16, tzinfo=new_york)  # Friday 16:00 in New York
    assert ny.add(start, 2 * H) == datetime(2026, 1, 12, 8, 30, tzinfo=new_york)
