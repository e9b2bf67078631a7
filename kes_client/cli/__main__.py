"""``python -m kes_client.cli``: the ``kes`` command without the console script."""

from kes_client.cli import main

main()
