"""What the desk gets besides messages: the customer's profile on the FreshChat user (`profiles.py`), the
reminders of closing windows and the OA's package (`reminders.py`), and customers left unanswered."""
