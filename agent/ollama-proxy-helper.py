#!/usr/bin/env python3
"""The seed's Option C: python3 /home/agent/scripts/ollama-proxy-helper.py &

SLAPENIR's Ollama helper is the slapenir binary called as
ollama-proxy-helper (a symlink beside this file, in the image and under
slapenir up). This file only hands over to it, so there is one helper, not
a second one in Python: same port ($OLLAMA_PROXY_PORT or PORT, default
8765), same certificates, same log lines. Arguments pass through unchanged.
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
helper = os.path.join(here, "ollama-proxy-helper")
try:
    os.execv(helper, [helper] + sys.argv[1:])
except OSError as e:
    sys.exit("ollama-proxy-helper.py: cannot run %s (SLAPENIR's helper, expected beside this file): %s" % (helper, e))
