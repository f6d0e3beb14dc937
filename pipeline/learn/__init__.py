"""Learning from the team's own codes: the training set (`examples.py`), the learners (`learners.py`,
and `finetune.py` for the fine-tuned encoder), training the learned coder on the units the runs will
code (`train.py`) and its model card (`card.py`). The coder itself, which codes with a trained model,
is pipeline/coders/learned.py; the encoder both read is pipeline/coders/encoder.py."""
