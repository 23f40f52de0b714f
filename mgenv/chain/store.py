"""A persistent, tamper-evident ledger: committed blocks in SQLite, for audits after a run.

With ``ledger_path="run.sqlite"`` (an env override, :class:`~mgenv.chain.ChainParams` field)
every committed block is also written to an SQLite database (standard library, WAL journal,
one SQL transaction per block), so that runs can be audited and queried afterwards by
serial, agent or period. A process killed while writing leaves a database that reopens and
verifies up to its last complete block: SQLite commits a block's rows atomically.

Schema (one database may hold many episodes; ``episode`` numbers them in order of creation)::

    blocks(episode, height, period, hash, prev_hash, merkle_root, n_tx, timestamp_ms,
           header, txs)                                   -- primary key (episode, height)
    transactions(episode, height, serial, period, seller, buyer, quantity_kwh, price, record)
    episodes(episode, created, note)

>>> store = LedgerStore("run.sqlite")            # doctest: +SKIP
>>> store.verify()                                # raises LedgerError naming a bad block
>>> store.query(agent=3, period=12)               # decoded transactions as dicts
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from mgenv.chain.ledger import Block, LedgerError, check_block

_SCHEMA = """
CREATE TABLE IF NOT EXISTS episodes (
    episode INTEGER PRIMARY KEY, created REAL NOT NULL, note TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS blocks (
    episode INTEGER NOT NULL, height INTEGER NOT NULL, period INTEGER NOT NULL,
    hash BLOB NOT NULL, prev_hash BLOB NOT NULL, merkle_root BLOB NOT NULL,
    n_tx INTEGER NOT NULL, timestamp_ms INTEGER NOT NULL, header BLOB NOT NULL,
    txs BLOB NOT NULL, PRIMARY KEY (episode, height));
CREATE TABLE IF NOT EXISTS transactions (
    episode INTEGER NOT NULL, height INTEGER NOT NULL, serial INTEGER NOT NULL,
    period INTEGER NOT NULL, seller INTEGER NOT NULL, buyer INTEGER NOT NULL,
    quantity_kwh REAL NOT NULL, price REAL NOT NULL, record BLOB NOT NULL,
    PRIMARY KEY (episode, serial));
CREATE INDEX IF NOT EXISTS tx_seller ON transactions (seller);
CREATE INDEX IF NOT EXISTS tx_buyer ON transactions (buyer);
CREATE INDEX IF NOT EXISTS tx_period ON transactions (period);
"""


class LedgerStore:
    """SQLite store of committed blocks (see the module docstring).

    The connection is opened lazily and not pickled: a copied or unpickled store reconnects
    to the same file and writes a new episode from its next block on (a fork is its own
    episode, noted with the episode and height it forked from).

    Args:
        path: Database file; created with its schema if missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._episode: int | None = None
        self._note = ""

    # ------------------------------------------------------------------ connection
    @property
    def conn(self) -> sqlite3.Connection:
        """The open connection (WAL journal, created on first use)."""
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
        return self._conn

    def close(self) -> None:
        """Close the connection (reopened on next use)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __getstate__(self) -> dict[str, Any]:
        fork = "" if self._episode is None else f"fork of episode {self._episode}"
        return {"path": self.path, "note": fork or self._note}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self._note = state["path"], state["note"]
        self._conn, self._episode = None, None

    def __deepcopy__(self, memo: dict[int, Any]) -> LedgerStore:
        new = LedgerStore.__new__(LedgerStore)
        new.__setstate__(self.__getstate__())
        return new

    # ------------------------------------------------------------------ writing
    def new_episode(self, note: str = "") -> int:
        """Start a new episode; the next appended blocks belong to it."""
        cur = self.conn.execute(
            "INSERT INTO episodes (created, note) VALUES (?, ?)", (time.time(), note)
        )
        self._episode = int(cur.lastrowid or 0)
        return self._episode

    def append(self, block: Block) -> None:
        """Write ``block`` and its transactions in one SQL transaction."""
        if self._episode is None:
            self.new_episode(self._note)
        ep = self._episode
        rows = [
            (
                ep,
                block.height,
                int(t["serial"]),
                int(t["period"]),
                int(t["seller"]),
                int(t["buyer"]),
                float(t["quantity_kwh"]),
                float(t["price"]),
                rec,
            )
            for t, rec in zip(block.transactions(), block.records(), strict=True)
        ]
        conn = self.conn
        conn.execute("BEGIN")
        try:
            conn.execute(
                "INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ep,
                    block.height,
                    block.period,
                    block.hash,
                    block.prev_hash,
                    block.merkle_root,
                    block.n_tx,
                    block.timestamp_ms,
                    block.header,
                    block.txs,
                ),
            )
            conn.executemany("INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # ------------------------------------------------------------------ reading
    def episodes(self) -> list[int]:
        """Episode numbers that have at least one block, ascending."""
        rows = self.conn.execute("SELECT DISTINCT episode FROM blocks ORDER BY episode")
        return [int(r[0]) for r in rows]

    def blocks(self, episode: int) -> list[Block]:
        """The stored blocks of ``episode`` in height order."""
        rows = self.conn.execute(
            "SELECT header, txs, hash FROM blocks WHERE episode = ? ORDER BY height", (episode,)
        )
        return [Block(bytes(h), bytes(t), bytes(x)) for h, t, x in rows]

    def verify(self) -> int:
        """Check every stored block and its rows.

        Per block: header hash, height, link to the previous block, Merkle root, and that the
        transactions table holds exactly the block's records.

        Returns:
            The number of blocks verified.

        Raises:
            LedgerError: Naming the episode and height of the first broken block.
        """
        count = 0
        for ep in self.episodes():
            blocks = self.blocks(ep)
            prev = blocks[0].prev_hash if blocks else b""
            start = blocks[0].height if blocks else 0
            for k, block in enumerate(blocks):
                try:
                    check_block(block, start + k, prev)
                    self._check_rows(ep, block)
                except LedgerError as err:
                    raise LedgerError(err.height, f"episode {ep}: {err.problem}") from None
                prev = block.hash
                count += 1
        return count

    def _check_rows(self, episode: int, block: Block) -> None:
        rows = self.conn.execute(
            "SELECT record FROM transactions WHERE episode = ? AND height = ? ORDER BY serial",
            (episode, block.height),
        ).fetchall()
        if [bytes(r[0]) for r in rows] != block.records():
            raise LedgerError(block.height, "transactions table differs from the block")

    def query(
        self,
        serial: int | None = None,
        agent: int | None = None,
        period: int | None = None,
        episode: int | None = None,
    ) -> list[dict[str, Any]]:
        """Committed transactions matching every given filter (``agent``: seller or buyer)."""
        where, args = [], []
        for column, value in (("serial", serial), ("period", period), ("episode", episode)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if agent is not None:
            where.append("(seller = ? OR buyer = ?)")
            args += [agent, agent]
        sql = (
            "SELECT episode, height, serial, period, seller, buyer, quantity_kwh, price "
            "FROM transactions"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        cur = self.conn.execute(sql + " ORDER BY episode, serial", args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur]
