"""Training, evaluation and demos for mgenv (Stable-Baselines3 based).

Modules import Stable-Baselines3 and torch lazily where they can, so that the command line
answers ``--help`` and user errors quickly.
"""
