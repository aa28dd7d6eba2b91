"""Region codes are checked against the division dataset; a county code covers its townships."""

from __future__ import annotations

import pytest

from service.reference import regions


def test_township_codes_normalise_to_twelve_digits():
    assert regions.normalise_township("420502001") == "420502001000"
    assert regions.normalise_township("420502001000") == "420502001000"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("42050200", "malformed"),
        ("420502000", "not_township"),
        ("420502001201", "not_township"),
        ("429999001", "unknown_county"),
        ("４２０５０２００１", "malformed"),
    ],
)
def test_bad_township_codes_say_why(code, reason):
    with pytest.raises(regions.RegionCodeError) as err:
        regions.normalise_township(code)
    assert err.value.reason == reason
    assert err.value.message_zh


def test_area_codes_cover_what_they_should():
    assert regions.covers("420500", "420527101000")  # the city covers a town in Zigui county
    assert regions.covers("420502", "420502001000")
    assert not regions.covers("420502", "420503001000")
    assert regions.covers("420000", "420527101000")  # the province
    assert regions.covers("420502001", "420502001000") and not regions.covers("420502001", "420502002000")


def test_coordinates_fall_back_to_the_county_and_distances_are_sane():
    lat, lon = regions.coordinates("420527101000")  # a town in 秭归县 → the county's centroid
    assert (round(lat, 1), round(lon, 1)) == (30.8, 111.0)
    wuhan, yichang = regions.coordinates("420100"), regions.coordinates("420500")
    assert 250 < regions.haversine_km(*wuhan, *yichang) < 320
