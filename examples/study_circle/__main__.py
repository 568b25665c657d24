"""``python -m examples.study_circle``: run the AI Study Circle flows (see app.py)."""

import asyncio

from .app import main

asyncio.run(main())
