"""Intake: channel events in, deduplicated, tied to a customer and a case, never lost.

- engine.intake.pipeline     ``ingest`` / ``process_inbox`` and ``IntakeResult``;
- engine.intake.inbox        the inbox (dedup on channel + external id) and dead letters;
- engine.intake.correlate    case token -> thread references -> customer's waiting case;
- engine.intake.routing      which SOP an uncorrelated contact starts;
- engine.intake.deadletters  list / show / retry dead letters.
"""
