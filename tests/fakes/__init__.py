"""Stand-ins at the edges qcode cannot reach in a test, and what tests work on:

- `coder.py`: the one scripted coder;
- `openai_server.py`: a local server that speaks the OpenAI wire protocol, driven through the real
  `openai` client (`python tests/fakes/openai_server.py --port 8765` serves it by hand);
- `review_server.py`: the review app served by uvicorn on a loopback port, and a coded store with
  reviewers for it;
- `browser.py`: Debian's Chromium driven by Playwright for the browser tests, and axe-core's verdict;
- `study.py`: the examples and codebooks, a small codebook, writing files (text, and PDFs with pages), the command line, and a
  store coded by the plain run.
"""

from fakes.coder import ScriptedCoder, scripted_coder
from fakes.study import (
    CODEBOOKS,
    EXAMPLES,
    LINKAGES,
    ROOT,
    SMALL_CODEBOOK,
    Answer,
    code_store,
    qcode,
    write,
    write_pdf,
    write_project,
    write_transcripts,
)

__all__ = [
    "CODEBOOKS",
    "EXAMPLES",
    "LINKAGES",
    "ROOT",
    "SMALL_CODEBOOK",
    "Answer",
    "ScriptedCoder",
    "code_store",
    "qcode",
    "scripted_coder",
    "write",
    "write_pdf",
    "write_project",
    "write_transcripts",
]
