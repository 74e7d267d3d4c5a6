from __future__ import annotations

import json

from analysis.metrics import COL
from search_space.anchors import get_anchor, list_anchors


class Command:
    """List the paper models (anchors) with their parameter counts and published figures."""

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON list")

    def run(self, args) -> int:
        from search_space.factory import build_model

        rows = []
        for name in list_anchors():
            anchor = get_anchor(name)
            train = build_model(anchor.spec.with_scale(4))
            deploy = build_model(anchor.spec.with_scale(4), deploy=True)
            rows.append({
                "name": name,
                "paper": anchor.paper.get("title", ""),
                COL.arch_id: anchor.spec.arch_id(),
                COL.params: sum(p.numel() for p in deploy.parameters()),
                COL.params_train: sum(p.numel() for p in train.parameters()),
                "official_weights": anchor.has_official_weights,
                "input_range": anchor.spec.input_range,
                "published": anchor.published,
            })
        if args.json:
            print(json.dumps(rows, indent=1, default=str))
            return 0
        print(f"{'name':16s} {'params (x4)':>12s} {'train form':>12s}  weights  paper")
        for r in rows:
            w = "official" if r["official_weights"] else "-"
            print(f"{r['name']:16s} {r[COL.params]:>12,d} {r[COL.params_train]:>12,d}  "
                  f"{w:8s} {r['paper']}")
        return 0
