"""``python -m attnlab.train --task dates --device auto`` (see ``loop.py``); also under ``torchrun``."""
from attnlab.train.loop import main

main()
