"""Seed 002's four chaincodes (section 3.2.3, Tables 1-7) as stages with real records.

Per trading period, in the order of the paper's Fig. 2 (record layouts in
:mod:`mgenv.chain.consortium_records`):

1. **Authentication** (Tables 1-2), once at registration: every participant submits a buyer
   (BU) and a seller (SU) identity record signed with its key. The chaincode verifies the
   signature and the rules: real-name information present, clean credit record (no default,
   overdue loan or criminal record), a known customer type; an SU also needs a renewable
   generation type and, when capacities are declared, a positive installed capacity. An
   unqualified participant cannot publish, so it cannot trade.
2. **BU/SU publication** (Tables 3-4): buyers publish their demand, sellers their sale
   information, each record signed by its publisher. A publication can be withdrawn by its
   publisher for ``window_ms`` after release; matching happens when the window has closed.
3. **Matchmaking** (Table 5): the pricing stage's allocation (who sells and buys how much)
   is split into seller-buyer transaction paths (north-west corner rule, at most
   ``n_s + n_b - 1`` paths); each path record is hashed and signed by the chaincode.
4. **Ordering**: the paths become transactions signed by both parties and ordered by the
   scenario's consensus protocol: :meth:`ConsortiumChannel.order` calls
   :meth:`mgenv.chain.Chain.process` (in the env the chain stage does exactly this).
5. **Compensation** (Tables 6-7): supply-demand compensation records (the grid fills a
   buyer's unserved demand at ``p_b`` at the buyer's cost, or buys a seller's unsold surplus
   at ``p_s``) and forecast-error compensation records (a seller that delivers less than the
   agreed volume buys the shortfall at ``p_b``). The money is computed by
   :func:`mgenv.market.settlement.settle`; these records document it.

Every record enters the channel's hash-linked :class:`ChannelLog`. Participants are numbered
``0..n-1`` locally; ``Identities.participant`` maps them to the env's global indices.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import NDArray

from mgenv.chain.consortium_auth import (
    BU,
    SU,
    Identities,
    auth_records,
    check_authentication,
    make_identities,
)
from mgenv.chain.consortium_records import (
    ERROR_DTYPE,
    GRID_ADDRESS,
    GRID_ID,
    MATCH_DTYPE,
    PUBLICATION_DTYPE,
    SUPPLY_DEMAND_DTYPE,
    ChannelLog,
    Keyring,
    Signed,
    sign_records,
)
from mgenv.market.clearing import match_bilateral

if TYPE_CHECKING:
    from mgenv.chain.chain import Chain
    from mgenv.chain.types import ConsensusResult

__all__ = ["ConsortiumChannel", "Identities", "Matching", "make_identities"]


class Matching(NamedTuple):
    """Transaction paths of one period (arrays of shape (T,), local participant indices)."""

    seller: NDArray[np.int64]
    buyer: NDArray[np.int64]
    kwh: NDArray[np.float64]
    price: NDArray[np.float64]
    signed: Signed  # Table 5 records, hashed and signed by the chaincode


class ConsortiumChannel:
    """The four chaincodes over a fixed set of registered participants.

    Args:
        ids: The participants' identities (registered and authenticated here).
        kind: Signature kind, ``"ed25519"`` or ``"modelled"``.
        key_seed: Integer in [0, 2**128) for the keys.
        require_capacity: Whether an SU needs a declared positive installed capacity.
        window_ms: How long after release a publication may be withdrawn, ms.
        log_window: Records kept in the channel log.
    """

    def __init__(
        self,
        ids: Identities,
        kind: str = "modelled",
        key_seed: int = 0,
        require_capacity: bool = False,
        window_ms: int = 300_000,
        log_window: int = 65_536,
    ) -> None:
        self.ids, self.n = ids, int(ids.participant.size)
        self.keys = Keyring(kind, key_seed, self.n)
        self.window_ms = int(window_ms)
        self.log = ChannelLog(log_window)
        self.auth = auth_records(ids, self.keys)
        self.buyer_ok, self.seller_ok = check_authentication(self.auth, self.keys, require_capacity)
        self.log.append("authentication", self.auth)
        self._serial = 0
        self._board: dict[int, tuple[Signed, NDArray[np.bool_]]] = {}  # period -> (pubs, live)

    def _serials(self, k: int) -> NDArray[np.uint64]:
        out = np.arange(self._serial, self._serial + k, dtype=np.uint64)
        self._serial += k
        return out

    def publish(
        self,
        period: int,
        sale_kwh: NDArray[np.float64],
        demand_kwh: NDArray[np.float64],
        ask: float,
        bid: float,
        release_ms: int,
    ) -> Signed:
        """BU/SU chaincode: qualified sellers publish their sale, buyers their demand.

        Args:
            period: Delivery period.
            sale_kwh: Each participant's sale offer, kWh, shape (n,) (0: not selling).
            demand_kwh: Each participant's demand, kWh, shape (n,) (0: not buying).
            ask: Sellers' outside option (the feed-in price), yuan/kWh.
            bid: Buyers' outside option (the grid price), yuan/kWh.
            release_ms: Simulated release time, ms.

        Returns:
            The signed publications (sellers first); kept on the board for ``period``.
        """
        su = np.flatnonzero((sale_kwh > 0) & self.seller_ok)
        bu = np.flatnonzero((demand_kwh > 0) & self.buyer_ok)
        who = np.concatenate((su, bu))
        rec = np.zeros(who.size, dtype=PUBLICATION_DTYPE)
        rec["serial"] = self._serials(who.size)
        rec["side"][: su.size] = SU
        rec["address"] = self.keys.addresses[who]
        rec["id"] = self.ids.participant[who]
        rec["energy_kwh"] = np.concatenate((sale_kwh[su], demand_kwh[bu]))
        rec["delivery_period"] = period
        rec["price"] = np.where(rec["side"] == SU, ask, bid)
        rec["release_ms"] = release_ms
        signed = sign_records(rec, who.tolist(), self.keys)
        self._board = {period: (signed, np.ones(who.size, bool))}  # matched within the period
        self.log.append("publication", signed)
        return signed

    def withdraw(self, period: int, serial: int, participant: int, now_ms: int) -> bool:
        """Withdraw a publication; only its publisher may, and only within the window.

        Returns:
            True if withdrawn; False if the window has closed.

        Raises:
            ValueError: Unknown serial for ``period``, or ``participant`` is not its publisher.
        """
        pubs, live = self._board.get(period, (None, None))
        hit = (
            np.flatnonzero(pubs.records["serial"] == serial)
            if pubs is not None
            else np.zeros(0, np.intp)
        )
        if pubs is None or live is None or hit.size == 0:
            raise ValueError(f"no publication with serial={serial} for period={period}")
        k = int(hit[0])
        if pubs.signers[k] != participant:
            raise ValueError(f"participant {participant} did not publish serial={serial}")
        if now_ms - int(pubs.records["release_ms"][k]) > self.window_ms:
            return False
        live[k] = False
        return True

    def active(self, period: int) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """``(selling, buying)`` masks (n,): live publications whose signatures verify."""
        selling, buying = np.zeros(self.n, bool), np.zeros(self.n, bool)
        if period not in self._board:
            return selling, buying
        pubs, live = self._board[period]
        ok = live & np.array(self.keys.verify(pubs.signers, pubs.raw, pubs.signatures), bool)
        who = np.asarray(pubs.signers, np.int64)
        side = pubs.records["side"]
        selling[who[ok & (side == SU)]] = True
        buying[who[ok & (side == BU)]] = True
        return selling, buying

    def _pub_hash(self, period: int, side: int) -> NDArray[np.bytes_]:
        """Hash of each participant's live publication on ``side`` (zeros if none), (n,)."""
        out = np.zeros(self.n, dtype="S32")
        if period in self._board:
            pubs, live = self._board[period]
            sel = np.flatnonzero(live & (pubs.records["side"] == side))
            out[np.asarray(pubs.signers, np.int64)[sel]] = np.array(pubs.hashes, "S32")[sel]
        return out

    def match(
        self,
        period: int,
        price: float,
        sold_kwh: NDArray[np.float64],
        bought_kwh: NDArray[np.float64],
    ) -> Matching:
        """Matchmaking chaincode: paths between live sellers and buyers, recorded and signed.

        Raises:
            ValueError: If an allocation goes to a participant without a live publication.
        """
        selling, buying = self.active(period)
        if np.any((sold_kwh > 0) & ~selling) or np.any((bought_kwh > 0) & ~buying):
            raise ValueError("allocation to a participant without a live publication")
        s_idx, b_idx = np.flatnonzero(sold_kwh > 0), np.flatnonzero(bought_kwh > 0)
        si, bi, kwh = match_bilateral(sold_kwh[s_idx], bought_kwh[b_idx])
        seller, buyer = s_idx[si].astype(np.int64), b_idx[bi].astype(np.int64)
        rec = np.zeros(kwh.size, dtype=MATCH_DTYPE)
        rec["serial"] = self._serials(kwh.size)
        rec["period"] = period
        self._parties(rec, seller, buyer)
        rec["volume_kwh"], rec["price"] = kwh, price
        rec["su_publication"] = self._pub_hash(period, SU)[seller]
        rec["bu_publication"] = self._pub_hash(period, BU)[buyer]
        signed = sign_records(rec, [self.keys.operator] * kwh.size, self.keys)
        self.log.append("match", signed)
        return Matching(seller, buyer, kwh, np.full(kwh.size, float(price)), signed)

    def _parties(
        self, rec: np.ndarray, seller: NDArray[np.int64], buyer: NDArray[np.int64]
    ) -> None:
        """Fill SU/BU address and ID columns; index -1 stands for the grid."""
        addr = np.append(self.keys.addresses[: self.n], np.array([GRID_ADDRESS], "S20"))
        pid = np.append(self.ids.participant, GRID_ID)
        rec["su_address"], rec["su_id"] = addr[seller], pid[seller]
        rec["bu_address"], rec["bu_id"] = addr[buyer], pid[buyer]

    def order(self, chain: Chain, period: int, matching: Matching) -> ConsensusResult:
        """Ordering service: the paths as transactions through the scenario's consensus."""
        glob = self.ids.participant
        return chain.process(
            period, glob[matching.seller], glob[matching.buyer], matching.kwh, matching.price
        )

    def compensate_supply_demand(
        self,
        period: int,
        prices: tuple[float, float, float],
        supply_kwh: NDArray[np.float64],
        demand_kwh: NDArray[np.float64],
        sold_kwh: NDArray[np.float64],
        bought_kwh: NDArray[np.float64],
    ) -> Signed:
        """Supply-demand compensation chaincode (Table 6).

        One record per buyer with unserved demand (SU = the grid, difference = bought -
        demand < 0, settled at the grid price ``p_b``, the buyer's cost) and one per seller
        with unsold supply (BU = the grid, difference = supply - sold > 0, at ``p_s``).

        Args:
            period: Delivery period.
            prices: ``(microgrid price, p_s, p_b)``, yuan/kWh.
            supply_kwh: Each seller's supply after its eq. 9 response, kWh, (n,).
            demand_kwh: Each buyer's demand, kWh, (n,).
            sold_kwh: Sold inside the microgrid, kWh, (n,).
            bought_kwh: Bought inside the microgrid, kWh, (n,).
        """
        price, p_s, p_b = prices
        tol = 1e-12 * max(1.0, float(demand_kwh.sum() + supply_kwh.sum()))
        b = np.flatnonzero(demand_kwh - bought_kwh > tol)
        s = np.flatnonzero(supply_kwh - sold_kwh > tol)
        grid = np.full(b.size + s.size, self.n, np.int64)
        rec = np.zeros(b.size + s.size, dtype=SUPPLY_DEMAND_DTYPE)
        rec["serial"], rec["period"] = self._serials(rec.size), period
        self._parties(rec, np.concatenate((grid[: b.size], s)), np.concatenate((b, grid[b.size :])))
        rec["agreed_sales_kwh"] = np.concatenate((bought_kwh[b], supply_kwh[s]))
        rec["agreed_purchases_kwh"] = np.concatenate((demand_kwh[b], sold_kwh[s]))
        rec["difference_kwh"] = rec["agreed_sales_kwh"] - rec["agreed_purchases_kwh"]
        rec["compromise_price"] = 0.5 * (p_s + p_b)
        rec["grid_price"] = np.concatenate((np.full(b.size, p_b), np.full(s.size, p_s)))
        rec["microgrid_price"] = price
        signed = sign_records(rec, [self.keys.operator] * rec.size, self.keys)
        self.log.append("supply_demand", signed)
        return signed

    def compensate_errors(
        self,
        period: int,
        matching: Matching,
        shortfall_kwh: NDArray[np.float64],
        tx_records: Sequence[bytes | None],
        p_b: float,
    ) -> Signed:
        """Error compensation chaincode (Table 7): sellers' delivery shortfalls per path.

        A seller's shortfall (realised minus forecast net output, where negative) is spread
        over its paths in proportion to their volume, up to its sold volume; what exceeds it
        concerns its own consumption, not a trade.

        Args:
            period: Delivery period.
            matching: The period's paths.
            shortfall_kwh: Each participant's delivery shortfall, kWh, (n,), >= 0.
            tx_records: Per path, the committed transaction record on the chain (None if the
                path did not commit).
            p_b: Grid price at which the shortfall is bought, yuan/kWh.
        """
        sold = np.bincount(matching.seller, weights=matching.kwh, minlength=self.n)
        share = np.divide(shortfall_kwh, sold, out=np.zeros(self.n), where=sold > 0)
        diff = matching.kwh * np.minimum(share, 1.0)[matching.seller]
        k = np.flatnonzero(diff > 0)
        rec = np.zeros(k.size, dtype=ERROR_DTYPE)
        rec["serial"], rec["period"] = self._serials(k.size), period
        self._parties(rec, matching.seller[k], matching.buyer[k])
        rec["transaction_record"] = [
            hashlib.sha256(r).digest() if (r := tx_records[i]) is not None else bytes(32)
            for i in k.tolist()
        ]
        rec["order_hash"] = np.array(matching.signed.hashes, dtype="S32").reshape(-1)[k]
        rec["agreed_kwh"] = matching.kwh[k]
        rec["actual_kwh"] = matching.kwh[k] - diff[k]
        rec["difference_kwh"] = -diff[k]
        rec["grid_price"], rec["microgrid_price"] = p_b, matching.price[k]
        signed = sign_records(rec, [self.keys.operator] * k.size, self.keys)
        self.log.append("error", signed)
        return signed
