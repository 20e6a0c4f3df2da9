"""Archived and private conversations: off the public list; archived ones closed, their report still
reachable by link; private ones open to whoever has the link."""

from __future__ import annotations

import re


def _listed(client) -> set[int]:
    return {int(n) for n in re.findall(r'<a href="/c/(\d+)">', client.get("/").text)}


def test_private_is_unlisted_but_open_by_link(owner, visitor):
    public = owner.new_conversation("A public one")
    hidden = owner.new_conversation("A private one", is_private=True)
    owner.seed(hidden, "The AI should say when it is unsure.")
    listed = _listed(owner.client)
    assert public in listed and hidden not in listed
    assert "private" in owner.client.get("/admin").text  # the organiser sees the badge
    guest = visitor(hidden)
    assert "A private one" in guest.page()
    assert guest.vote(1).status_code == 303  # the link works: votes are taken


def test_archived_is_closed_unlisted_and_its_report_stays(app, owner, visitor, count):
    cid = owner.new_conversation("To be archived")
    owner.seed(cid, "The AI should cite its sources.", "The AI should be brief.")
    early = visitor(cid)
    assert early.vote(1).status_code == 303
    waiting = early.current()
    assert waiting is not None
    owner.configure(cid, topic="To be archived", is_archived=True)  # is_open "on" too: archive wins
    assert count("conversations", id=cid, is_open=False) == 1
    assert cid not in _listed(owner.client)
    assert early.vote(1, waiting).status_code == 403  # closed to votes
    newcomer = visitor(cid).page()  # a new participant gets the closed notice and no form
    assert "is closed" in newcomer and 'name="statement"' not in newcomer and "csrf_token" not in newcomer
    assert owner.client.get(f"/c/{cid}/report").status_code == 200
    assert "archived" in owner.client.get("/admin").text
    # un-archiving and opening again brings it back
    owner.configure(cid, topic="To be archived", is_archived=False)
    assert cid in _listed(owner.client) and count("conversations", id=cid, is_open=True) == 1
