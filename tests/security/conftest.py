import sys
from pathlib import Path

# The attacks live as scripts in examples/security; import them from there.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "security"))
