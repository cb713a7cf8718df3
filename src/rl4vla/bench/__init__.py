"""The benchmark: its 16 conditions and pinned episodes, the task and its reward, the vectorized env, the
observation/action contract every policy follows (`contract`), the perturbations and the scripted expert."""
