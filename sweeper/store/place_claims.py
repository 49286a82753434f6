"""Places of a study's target in the store: ``sweeper_places``, one row per place a worker claimed
for a new configuration (what a place means, and who may claim one: :mod:`sweeper.search.places`).

A place is claimed by inserting its row, unique per (study, place), so of two workers claiming
the same place one wins; the winner then binds it to the configuration it started (the number of
its first trial). Only the claim's own token binds or releases it. A claim left unbound by a
process that died is taken over, once, by a worker that finds it older than a cut-off; a bound
place is never given up. No Keras, no Optuna.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from sweeper.errors import StorageError
from sweeper.store.store import Store
from sweeper.store.tables import PlaceRow, utcnow


@dataclass(frozen=True)
class PlaceClaim:
    """One row of ``sweeper_places``: a place, the configuration holding it (None: claimed, its
    trial not taken yet), the claim's token, and when it was claimed or taken over."""

    place: int
    config: int | None
    token: str
    claimed_at: datetime


def place_claims(store: Store, study_name: str) -> list[PlaceClaim]:
    """Every place claimed in the study, by place (read whole: a new :class:`PlaceReader`)."""
    return PlaceReader(store, study_name).read()


class PlaceReader:
    """A worker's reads of a study's places, by what changed: places ``0 .. len(prefix) - 1``
    are bound (workers claim the lowest free place, so the bound places are a prefix but for a
    few), and a bound place never changes, so each read asks the database only for the places
    from the first one not known bound on: as many rows as claims are in flight, not one per
    configuration of the study. :func:`place_claims` reads them all."""

    def __init__(self, store: Store, study_name: str) -> None:
        self.store = store
        self.study_name = study_name
        self._prefix: list[PlaceClaim] = []  # bound, places 0 .. len - 1

    def read(self) -> list[PlaceClaim]:
        """Every place claimed in the study, by place (as :func:`place_claims`)."""
        with self.store.session() as s:
            rows = s.execute(
                sa.select(PlaceRow.place, PlaceRow.config, PlaceRow.token, PlaceRow.created_at)
                .where(PlaceRow.study_name == self.study_name, PlaceRow.place >= len(self._prefix))
                .order_by(PlaceRow.place)
            )
            rest = [
                PlaceClaim(int(p), None if c is None else int(c), str(t), at)
                for p, c, t, at in rows
            ]
        bound = 0  # the rows that extend the prefix
        while (
            bound < len(rest)
            and rest[bound].place == len(self._prefix) + bound
            and rest[bound].config is not None
        ):
            bound += 1
        self._prefix += rest[:bound]
        return self._prefix + rest[bound:]


def claim_place(store: Store, study_name: str, place: int, token: str, worker: str) -> bool:
    """Claim ``place`` under ``token``; False when another process holds it."""
    try:
        with store.session() as s:
            s.add(PlaceRow(study_name=study_name, place=place, token=token, worker=worker))
    except StorageError as exc:
        if isinstance(exc.__cause__, sa.exc.IntegrityError):
            return False
        raise
    return True


def take_over_place(
    store: Store,
    study_name: str,
    place: int,
    *,
    stale_token: str,
    token: str,
    worker: str,
    claimed_before: datetime,
) -> bool:
    """Take over the claim ``stale_token`` of ``place`` when it is still unbound and older than
    ``claimed_before`` (its process died between claiming and taking its trial): one taker wins."""
    with store.session() as s:
        result = s.execute(
            sa.update(PlaceRow)
            .where(
                PlaceRow.study_name == study_name,
                PlaceRow.place == place,
                PlaceRow.token == stale_token,
                PlaceRow.config.is_(None),
                PlaceRow.created_at < claimed_before,
            )
            .values(token=token, worker=worker, created_at=utcnow())
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1


def bind_place(store: Store, study_name: str, place: int, token: str, config: int) -> bool:
    """Give the claimed ``place`` to configuration ``config``; False when the claim is no longer
    ``token``'s (taken over as stale) or the place is bound already."""
    with store.session() as s:
        result = s.execute(
            sa.update(PlaceRow)
            .where(
                PlaceRow.study_name == study_name,
                PlaceRow.place == place,
                PlaceRow.token == token,
                PlaceRow.config.is_(None),
            )
            .values(config=config)
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1


def release_place(store: Store, study_name: str, place: int, token: str) -> bool:
    """Give up the unbound claim ``token`` of ``place`` (no trial was taken with it)."""
    with store.session() as s:
        result = s.execute(
            sa.delete(PlaceRow).where(
                PlaceRow.study_name == study_name,
                PlaceRow.place == place,
                PlaceRow.token == token,
                PlaceRow.config.is_(None),
            )
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1


def forget_bound_places(store: Store, study_name: str) -> int:
    """Delete the bound places of ``study_name``: called for a study that has no trial, whose
    bound places can only be those of a deleted study of the same name. How many went."""
    with store.session() as s:
        result = s.execute(
            sa.delete(PlaceRow).where(
                PlaceRow.study_name == study_name, PlaceRow.config.is_not(None)
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
