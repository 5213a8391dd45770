"""Data mixing: domains -> a packed, weighted, resumable stream; weights learned from per-domain losses.

    domains.py   tokenise each domain once, split off its held-out sequences
    stream.py    MixtureStream: the IterableDataset, exact state_dict/load_state_dict
    learners.py  static, doremi, odm (as their papers' Algorithm 1): per-domain held-out signals -> weights
    held_out.py  per-domain held-out loss (and per-token clipped excess) of a model, summed over ranks (sync.py)
    callback.py  MixingCallback: updates, logging, mixture_state.json in every checkpoint
    replay.py    old rows added to a row dataset (SFT) at an exact share

It knows nothing of stages or recipes: cpt/stages/cpt.py wires it into a Trainer.
"""
