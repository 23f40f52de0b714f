"""SB3 callbacks for mgenv training runs."""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback

__all__ = ["EpisodeKpiCallback"]


class EpisodeKpiCallback(BaseCallback):
    """Log the env's episode KPIs (``infos[i]["episode_kpis"]``) as ``kpi/<name>`` means.

    ``MarketVecEnv`` puts the KPIs of an ended episode into the info of every slot of that
    copy; only the first slot of each copy is read, so each episode counts once.

    Args:
        n_agents: Slots per env copy.
    """

    def __init__(self, n_agents: int) -> None:
        super().__init__()
        self.n_agents = n_agents

    def _on_step(self) -> bool:
        infos = self.locals.get("infos", ())
        for info in infos[:: self.n_agents]:
            for name, value in info.get("episode_kpis", {}).items():
                self.logger.record_mean(f"kpi/{name}", float(value))
        return True
