from nearid_data.sample import check_key, make_key, slug


def test_slug_keeps_safe_names_and_disambiguates_others() -> None:
    assert slug("mug-0003") == "mug-0003"
    assert slug("bjørn mug") != slug("bj-rn mug")
    assert "." not in slug("a.b.c")
    check_key(make_key("Bjørn's mug (2).jpg", 3))
