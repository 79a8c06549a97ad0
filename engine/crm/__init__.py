"""Customer Relationship Management: one customer, one timeline, across every channel.

- engine.crm.identifiers  typed identifiers and their normal forms;
- engine.crm.customers    identity resolution (verified-only auto-linking, merge suggestions);
- engine.crm.merge        merge / unmerge with a full audit trail;
- engine.crm.timeline     recording interactions and the customer view.
"""
