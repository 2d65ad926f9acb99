"""The whole fitlens stack on one machine: the API and workers as processes (launch), and the
demo that drives them over HTTP (``python -m stack.demo``, behind ./scripts/demo.sh)."""
