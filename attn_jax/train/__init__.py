"""Training: one pure jitted step over a TrainState, and the loop around it.

Modules (one job each): optim (AdamW, schedules, token budget -> steps),
mesh (device mesh, shardings, multi-host), state (TrainState), step (the
pure train/eval steps, jitted with shardings and donation), checkpoint
(orbax CheckpointManager), metrics (metrics.jsonl, TensorBoard, tqdm, MFU),
record (summary.json), family (what the loop needs from a model family),
loop (`train_and_evaluate(config, workdir)`), flops (analytic counts).

Import `attn_jax.train.loop.train_and_evaluate`; this package imports nothing
heavy by itself.
"""
