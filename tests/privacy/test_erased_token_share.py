"""Found by the outside review of #26: an erased person's app token, still inside its TTL (nothing server-side is
revoked), mints a NEW share link to their blocked trip, and the public page of that link serves the trip's position.

docs/operations.md "Personal data": every share link to a trip of theirs is revoked; trips are kept blocked
(open only for legal claims and investigations, or the handler of a live case). A new public link after the
erasure reopens the position to anyone holding it, with no purpose."""

from __future__ import annotations

from tests.privacy.test_erasure import PERSON, erase, link_path, ok, seed, serving
from tripguard.core.settings import Settings
from tripguard.security.permissions import Role


def test_an_erased_persons_token_cannot_share_their_trip_again(cli_site: Settings) -> None:
    with serving(cli_site) as (app, client, act_as):
        seed(app, client, act_as)
        erase(client, act_as)
        act_as(Role.PASSENGER, kind="subject", id=PERSON)  # the app token minted before the erasure, still valid
        created = client.post("/api/v1/trips/T1/shares")
        assert created.status_code in (403, 404, 410), created.text  # today: 201, a fresh public link
        if created.status_code == 201:  # what the link then gives to anyone holding it
            act_as()
            client.cookies.clear()
            page = client.get(link_path(ok(created)["url"]) + "/position")
            assert page.status_code == 410, page.text  # today: 200 with the trip's position
