"""``python -m kes_server`` is ``kes-server`` (used by ``kes server ...``)."""

from kes_server.cli import main

main()
