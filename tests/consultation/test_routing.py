"""The per-worker routing cache (routing.py) counts exactly what a full recount counts, and routes alike."""

from __future__ import annotations

import numpy as np

from ccai.consultation import routing, service
from ccai.consultation.store import Conversation, Participant, Vote, now_ms


def test_cache_matches_full_recount_through_revotes_and_late_commits(app, owner, visitor, monkeypatch):
    monkeypatch.setattr(routing, "MARGIN", 50)  # small, so the late vote below falls inside it
    monkeypatch.setattr(routing, "RESCAN_S", 0.0)  # re-read the margin at every request
    cid = owner.new_conversation(unlock_threshold=0)
    owner.seed(cid, *[f"Routing statement {i}" for i in range(12)])
    rng = np.random.default_rng(3)
    cache = routing.RoutingCache()
    with app.state.sessions() as db:
        conversation = db.get(Conversation, cid)
        people = [service.join(db, conversation, service.new_token()) for _ in range(9)]
        statements = service.statements(db, cid)
        db.commit()
        for step in range(6):
            for _ in range(40):  # re-votes included: the latest vote per pair counts
                person, statement = people[rng.integers(9)], statements[rng.integers(12)]
                db.add(
                    Vote(
                        conversation_id=cid,
                        participant_id=person.id,
                        statement_id=statement.id,
                        vote=int(rng.choice([-1, 0, 1])),
                        important=False,
                        created_ms=now_ms(),
                    )
                )
            db.commit()
            if step == 3:  # a moderation between two requests reloads the statement list
                service.moderate(db, _user(db), statements[0], "reject", "test")
                db.commit()
            db.refresh(conversation)
            state = cache.get(db, conversation)
            assert state.tallies() == service.tallies(db, cid)
            for person in people[:3]:
                fast = service.progress(db, conversation, person, seed=1, cache=cache)
                slow = service.progress_by_recount(db, conversation, person, seed=1)
                assert (fast.statement and fast.statement.id) == (slow.statement and slow.statement.id)
                assert (fast.remaining, fast.votes_cast) == (slow.remaining, slow.votes_cast)
        # a vote whose id is below the highest counted one (committed late) is still counted, once
        late_id = db.scalar(service.sa.select(service.sa.func.max(Vote.id))) + 5
        db.add(
            Vote(
                id=late_id,
                conversation_id=cid,
                participant_id=people[0].id,
                statement_id=statements[5].id,
                vote=1,
                important=False,
                created_ms=now_ms(),
            )
        )
        db.commit()
        cache.get(db, conversation)
        db.add(
            Vote(
                id=late_id - 2,
                conversation_id=cid,
                participant_id=people[1].id,
                statement_id=statements[6].id,
                vote=-1,
                important=False,
                created_ms=now_ms(),
            )
        )
        db.commit()
        assert cache.get(db, conversation).tallies() == service.tallies(db, cid)
        assert cache.get(db, conversation).tallies() == service.tallies(db, cid)  # counted once
        assert db.get(Participant, people[0].id) is not None
        if db.bind.dialect.name == "postgresql":  # the ids above were set by hand: move the sequence on
            db.execute(
                service.sa.text(
                    "select setval(pg_get_serial_sequence('votes', 'id'), (select max(id) from votes))"
                )
            )
            db.commit()


def _user(db):
    from ccai.consultation.store import User

    return db.scalar(service.sa.select(User).limit(1))
