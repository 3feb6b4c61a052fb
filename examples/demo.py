"""The embedded demo: teacher → distill → reconstruct → pretrain → eval on `digits`."""

import sys

print("the pipeline is not complete yet: distill, pretrain and eval land in later issues.")
print("try: .venv/bin/ssdd budget --U 200 --V 200")
sys.exit(0)
