"""Uni-O4: one on-policy objective offline (ensemble BC, multi-step PPO gated by OPE) and online (PPO)."""
