import sys
from pathlib import Path

# Test helpers (manifests.py, istio_schema.py, stack_fixture.py) are imported as plain modules.
sys.path.insert(0, str(Path(__file__).parent))
