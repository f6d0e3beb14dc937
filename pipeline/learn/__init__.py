"""Learning from the team's own codes: the training set (`examples.py`), and training the learned
coder with its model card (`train.py`). The coder itself, which codes with a trained model, is
pipeline/coders/learned.py."""
