"""Stand-ins for the two sides: the Zalo and FreshChat simulators (`zalo.py`, `freshchat.py`, on
loopback HTTP or in-process through `inprocess.py`, with a control API to inject messages and faults), which
play every recorded answer shape, and the in-memory fakes of the sync core's ports (`fakes.py`). They
import the domain, errors, the sides' budget and the sync core's ports; never the store or the runtime."""
