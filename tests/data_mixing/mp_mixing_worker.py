"""Test helper, launched by test_multiprocess_mixing.py under `accelerate launch`: runs `cpt run RECIPE`
on this rank and dumps what this rank's mixing callback held into OUT/rank<R>.json (test-only
instrumentation, patched in here; the product code writes the trajectory on rank 0 only).

    accelerate launch --multi_gpu --num_processes 2 tests/data_mixing/mp_mixing_worker.py RECIPE OUT
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from data_mixing import callback, held_out

out = Path(sys.argv[2])
local_token_counts = []  # this rank's share of held-out tokens per domain, before the all-reduce
reduce_for_all = held_out.all_reduce_sum


def recording_reduce(totals):
    if totals.shape[0] == 3:  # score()'s (loss sums, token counts, excess sums), not token_losses()'s table
        local_token_counts.append(totals[1].tolist())
    return reduce_for_all(totals)


original_train_end = callback.MixingCallback.on_train_end


def dump_on_train_end(self, args, state, control, **kwargs):
    original_train_end(self, args, state, control, **kwargs)
    record = {"trajectory": self.trajectory, "learner": self.learner.state_dict(),
              "local_token_counts": local_token_counts, "stream_position": self.stream.position}
    (out / f"rank{os.environ['RANK']}.json").write_text(json.dumps(record))


held_out.all_reduce_sum = recording_reduce
callback.MixingCallback.on_train_end = dump_on_train_end

if __name__ == "__main__":
    from cpt.cli import main

    sys.exit(main(["run", sys.argv[1]]))
