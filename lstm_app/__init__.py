"""The application: the ``lstm-pipeline`` command, its runner, the deployments it serves and the demo.

The top layer: it calls the flows; nothing below imports it."""
