"""Who "the person" of `wajira export`/`forget` is: every spelling of a number names one person,
a BSUID names them too, and garbage is refused before anything is opened."""

from __future__ import annotations

import pytest

from bot import cli
from bot.rules.person import NotAPerson, Person, number_spellings, person_from_argument
from bot.rules.phones import conversation_key_for_phone
from storage.erasure import NOT_PERSONAL, PERSONAL_TABLES

MEXICO = ("+52 1 55 1234 5678", "5215512345678", "525512345678", "+52 55 1234 5678", "+52-55-1234-5678")
ARGENTINA = ("+54 9 11 1234 5678", "5491112345678", "541112345678")
BRAZIL = ("+55 11 98765 4321", "5511987654321", "551187654321")


@pytest.mark.parametrize("forms", [MEXICO, ARGENTINA, BRAZIL], ids=["mexico", "argentina", "brazil"])
def test_every_spelling_of_a_number_is_one_person(forms):
    people = {person_from_argument(form) for form in forms}
    assert len(people) == 1
    (person,) = people
    assert len(person.conversation_keys) == 1
    # Both of Meta's spellings, with and without `+`, each folding to the one key.
    digits = {w for w in person.wa_ids if not w.startswith("+")}
    assert len(digits) == 2
    assert {conversation_key_for_phone(w) for w in person.wa_ids} == set(person.conversation_keys)


def test_mexico_in_full():
    assert person_from_argument("+52 1 55 1234 5678") == Person(
        ("+525512345678",), ("+5215512345678", "+525512345678", "5215512345678", "525512345678"), ()
    )


def test_a_number_with_one_spelling_has_one():
    assert number_spellings("+16505551234") == ("+16505551234", "16505551234")


def test_a_brazilian_landline_never_gains_a_ninth_digit():
    # 55 11 3xxx-xxxx is a landline: a `9` in front would be someone else's mobile.
    assert number_spellings("+551132345678") == ("+551132345678", "551132345678")


@pytest.mark.parametrize("arg", ["US.13491208655302741918", "user:US.13491208655302741918"])
def test_a_business_scoped_user_id_is_a_person(arg):
    person = person_from_argument(arg)
    assert person == Person(("user:US.13491208655302741918",), (), ("US.13491208655302741918",))


def test_storage_links_a_phone_to_its_user_id_and_back():
    person = person_from_argument("525512345678").widened(user_ids=("US.1",), wa_ids=("not a number",))
    assert person.conversation_keys == ("+525512345678", "user:US.1")
    assert person.user_ids == ("US.1",)
    assert person_from_argument("US.1").widened(wa_ids=("5215512345678",)).conversation_keys == (
        "+525512345678",
        "user:US.1",
    )


@pytest.mark.parametrize("arg", ["", "   ", "hello", "12", "+52 55 abcd", "user:", "user:a b", "55%", "US."])
def test_garbage_is_refused_with_a_sentence(arg):
    with pytest.raises(NotAPerson) as caught:
        person_from_argument(arg)
    assert str(caught.value)


@pytest.mark.parametrize("command", ["export", "forget"])
def test_the_cli_refuses_garbage_with_exit_1_before_reading_any_config(command, capsys, tmp_path):
    missing = str(tmp_path / "nowhere.toml")
    assert cli.main([command, "not-a-phone", "--config", missing]) == cli.EXIT_FAILED
    assert "neither a phone number" in capsys.readouterr().err


def test_the_cli_usage_error_is_argparse_s_2():
    with pytest.raises(SystemExit) as caught:
        cli.main(["forget"])
    assert caught.value.code == 2


def test_every_personal_table_says_how_its_rows_are_found():
    kinds = {"conversation", "lease", "number", "user", "ticket", "json", "wamid_in", "wamid_out"}
    for table, specs in PERSONAL_TABLES.items():
        assert specs, table
        assert {s.split(":", 1)[0] for s in specs} <= kinds, table
    assert not set(PERSONAL_TABLES) & set(NOT_PERSONAL)
    # Rows found through other tables' wamids go before those tables' rows.
    order = list(PERSONAL_TABLES)
    assert order.index("media_task") < order.index("inbound_message")
    assert order.index("message_status") < order.index("outbound_message")
