"""AI Study Circle (seed 004): the models in ``models.py``, the flows in ``app.py``.

Run it from the repository root with ``python -m examples.study_circle``.
"""
