"""Static files: WhiteNoise's compressed storage with hashed names, strict for our own files.

The vendored U.S. Web Design System stylesheet (static/vendor/uswds-3.14.0/css/uswds.min.css)
names images we do not vendor (img/hero.jpg and other page-template pictures no screen of ours
uses). The strict storage refuses the whole `collectstatic` for that, so `ketaclinic serve`
could not start from a checkout. Under static/vendor/ such a url() is left as written (it would
404, as it would unhashed); anywhere else a missing reference still fails collectstatic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    def url_converter(
        self, name: str, hashed_files: dict[str, Any], template: str | None = None
    ) -> Callable[[re.Match[str]], str]:
        convert = super().url_converter(name, hashed_files, template)
        if not name.replace("\\", "/").startswith("vendor/"):
            return convert

        def tolerant(match: re.Match[str]) -> str:
            try:
                return convert(match)
            except ValueError:  # WhiteNoise's MissingFileError: the vendor ships no such file
                return match.group("matched")

        return tolerant
