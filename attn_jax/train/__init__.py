"""Training: one pure jitted step over a TrainState, and the loop around it.

Modules (one job each): budget (budgets in the family's unit -> steps, no JAX),
optim (AdamW, schedules), mesh (device mesh, shardings, multi-host), state
(TrainState), step (the pure train/eval steps around a family's loss, jitted
with shardings and donation), checkpoint (orbax CheckpointManager), branch
(cooldown branches), metrics (metrics.jsonl, TensorBoard, tqdm, MFU), record
(summary.json), loop (`train_and_evaluate(config, workdir)`). What a model
family provides (model, data, loss, evaluator, counts, unit) is asked of
attn_jax.families; nothing here imports a model config.

Import `attn_jax.train.loop.train_and_evaluate`; this package imports nothing
heavy by itself.
"""
