"""The proxy-fidelity figure of ``nas fidelity``: proxy PSNR and predicted PSNR against the
references' converged PSNR, one labelled point per network."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analysis.metrics import COL

__all__ = ["fidelity_figure"]


def fidelity_figure(doc: Mapping[str, Any]):
    """Proxy PSNR and predicted PSNR against reference PSNR, one labelled point per network."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    refs = doc["refs"]
    s = doc["scores"]

    def stats(name: str) -> str:
        tau, acc = s[name]["kendall_tau"], s[name]["pairwise_accuracy"]
        return (f"tau {'-' if tau is None else f'{tau:+.2f}'}, "
                f"pairwise {'-' if acc is None else f'{acc:.2f}'}")

    titles = [f"raw proxy PSNR ({stats('proxy')})"]
    if "predictor" in s:
        titles.append(f"predicted PSNR, {doc['predictor_mode'].replace('_', '-')} "
                      f"({stats('predictor')})")
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles)
    x = [r["psnr_ref"] for r in refs]
    names = [r["name"] for r in refs]
    for col, key in enumerate((COL.psnr_proxy, "psnr_pred")[:len(titles)], 1):
        fig.add_trace(go.Scatter(
            x=x, y=[r[key] for r in refs], mode="markers+text", text=names,
            textposition="top center", textfont=dict(size=9), showlegend=False,
            hovertemplate="%{text}<br>reference %{x:.2f} dB<br>%{y:.3f} dB<extra></extra>"),
            row=1, col=col)
        fig.update_xaxes(title_text=f"reference (converged) Set5 x{doc['scale']} PSNR-Y "
                         "[dB]", row=1, col=col)
    fig.update_yaxes(title_text="proxy PSNR-Y [dB]", row=1, col=1)
    if len(titles) > 1:
        fig.update_yaxes(title_text="predicted PSNR-Y [dB]", row=1, col=2)
    fig.update_layout(title=f"Proxy fidelity ({doc['preset']} preset, {doc['n']} references, "
                            f"{doc['pairs']} pairs >= {doc['min_gap_db']:.2f} dB apart)",
                      width=1400, height=640, template="plotly_white")
    return fig
