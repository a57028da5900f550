"""What the desk gets besides messages: the customer's profile on the FreshChat user (`profiles.py`), the
reminders of closing windows and the OA's package (`reminders.py`), customers left unanswered, and the
failed replies sent again when the customer writes (`returns.py`). They may import the ports, the
store's seams and the deciders; never the store, the clients or the runtime."""
