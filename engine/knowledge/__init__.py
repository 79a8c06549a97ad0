"""The knowledge base: articles, their lifecycle, search, e-level self-service and the learning loop.

Modules, one job each (docs/knowledge.md is the user guide):

- ``model``       frozen values: ArticleSpec, ArticleStatus + TRANSITIONS, SearchHit, Answer.
- ``files``       Markdown articles with YAML front matter: load and validate like SOPs.
- ``text``        tokens, stop words, Snowball stems (en/nl/de), language detection, query caps.
- ``render``      safe HTML (raw HTML disabled) and plain text of article bodies.
- ``repo``        import, drafts, lifecycle transitions, versions, index upkeep (a Session in).
- ``index_sqlite`` / ``index_postgres``  the full-text index and ranked retrieval per backend.
- ``search``      language choice, category boost, confidence in [0, 1].
- ``elevel``      e-level attempts and their outcomes; reply text; yes/no classification.
- ``learning``    knowledge outcomes, gaps and shift-left (pure maths + case-store reading).
- ``reports``     gaps, shift-left and article usage from the database.
- ``drafting``    a draft article from a resolved case.
- ``assist``      suggestions for a task or case (agent assist).
- ``port``        KnowledgePort: what the runtime passes to actions as ``ports["knowledge"]``.
- ``actions``     kb_answer, kb_outcome, kb_suggest, kb_lookup (entry point ``careflow.actions``).
- ``evaluate``    recall@k / MRR and the e-level threshold table over a labelled question set.
"""
