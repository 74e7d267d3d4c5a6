"""Writing figures: standalone HTML, and PNG rendered by kaleido in a local browser."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from search_space.io import first_line, write_atomic


def write_figures(figures: Mapping[Path, Any], *, png: bool = True) -> list[str]:
    """Write every figure to its ``.html`` path, and beside it a ``.png`` where a browser exists.

    Each HTML file inlines plotly.js (about 4.6 MB), so that one file copied or mailed on its
    own still renders, offline. PNGs are rendered by kaleido in a
    locally installed Chrome/Chromium; kaleido is never allowed to download one. Returns
    warnings (one line each), e.g. when no browser is found; the HTML is written regardless.
    """
    for html, fig in figures.items():
        Path(html).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(html, fig.to_html(include_plotlyjs=True, full_html=True))
    if not png:
        return []
    return export_png({Path(html).with_suffix(".png"): fig for html, fig in figures.items()})


def export_png(figures: Mapping[Path, Any]) -> list[str]:
    """Render figures to PNG files with kaleido; warnings (one line each) instead of errors."""
    try:
        import kaleido
        from kaleido.errors import ChromeNotFoundError
    except ImportError:
        return ["PNG export skipped: kaleido is not installed (pip install 'kaleido>=1')"]
    specs, temporary = [], {}
    for path, fig in figures.items():
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
        temporary[tmp] = path
        specs.append(dict(fig=fig.to_dict(), path=tmp,
                          opts=dict(format="png", width=fig.layout.width or 1000,
                                    height=fig.layout.height or 640, scale=1)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # mathjax=False: kaleido would otherwise load MathJax from a CDN
            kaleido.write_fig_from_object_sync(specs, kopts=dict(mathjax=False))
    except ChromeNotFoundError:
        problem = ("PNG export skipped: no Chrome/Chromium found (Debian: apt-get install -y "
                   "chromium; or set BROWSER_PATH); the HTML plots were written")
    except Exception as e:  # noqa: BLE001  (a browser crash must not lose the report)
        problem = (f"PNG export failed ({type(e).__name__}: {first_line(e)}); the HTML plots "
                   "were written")
    else:
        problem = None
    for tmp, path in temporary.items():
        if problem is None and tmp.exists():
            os.replace(tmp, path)
        else:
            tmp.unlink(missing_ok=True)
    return [problem] if problem else []
