"""Print lowest.in: every dependency of pyproject.toml (the dev extra included) pinned at the lower
bound of its range, so `make test-lowest` checks the oldest versions the project claims to support.
The build backend keeps its range: torch needs a newer setuptools than the backend's lower bound."""

import re
import sys
import tomllib

with open("pyproject.toml", "rb") as fh:
    pyproject = tomllib.load(fh)
project = pyproject["project"]
print("# The lower bound of each range in pyproject.toml, written by `make lock` (requirements/lowest.py).")
for requirement in project["dependencies"] + project["optional-dependencies"]["dev"]:
    name, spec = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", requirement).groups()
    lower = re.findall(r"(?:>=|==)\s*([^,\s;]+)", spec)
    if len(lower) != 1:
        sys.exit(f"pyproject.toml: {requirement!r} has no single lower bound (>= or ==)")
    print(f"{name}=={lower[0]}")
for requirement in pyproject["build-system"]["requires"]:
    print(requirement)
