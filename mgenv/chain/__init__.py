"""Chain stage: trades become signed transactions that settle only if consensus commits them.

Public API::

    from mgenv.chain import ChainParams, Chain, ConsensusResult, Ledger, Block, REJECT_REASONS

    params = ChainParams(protocol="pbft", n_nodes=4, message_loss=0.05, availability=0.98)
    chain = Chain(params, n_participants=8, network_rng=net, adversary_rng=adv, key_seed=7)
    res = chain.process(period=t, seller=s, buyer=b, quantity_kwh=q, price=p)
    res.committed, res.reason, res.latency_ms, res.online_share, res.view_changes, res.block
    chain.ledger.verify()

See :mod:`mgenv.chain.chain` for the per-period pipeline and the random streams,
:mod:`mgenv.chain.pbft` for the consensus and latency model.
"""

from mgenv.chain.chain import Chain, TamperHook
from mgenv.chain.ledger import Block, Ledger, LedgerError, merkle_root
from mgenv.chain.params import ChainParams
from mgenv.chain.protocols import PROTOCOLS
from mgenv.chain.types import REJECT_REASONS, ConsensusResult, RoundOutcome, TxOutcome

__all__ = [
    "PROTOCOLS",
    "REJECT_REASONS",
    "Block",
    "Chain",
    "ChainParams",
    "ConsensusResult",
    "Ledger",
    "LedgerError",
    "RoundOutcome",
    "TamperHook",
    "TxOutcome",
    "merkle_root",
]
