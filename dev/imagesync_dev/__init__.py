"""imagesync's development tooling (distribution imagesync-dev, dev/pyproject.toml; never published, never shipped).

The demo (demo.py: `imagesync-dev demo`, `make demo`), the demo of the deploy package on the emulated SCF
(demo_cloud.py: `imagesync-dev demo --cloud`, `make demo-cloud`) and the chaos scenario (chaos.py:
`imagesync-dev chaos`, docs/chaos.md). They start the emulator, which the functions never do; the functions' package
(imagesync) never imports this one (pyproject.toml, [tool.importlinter]).
"""
