"""Regenerate the template space shipped with the matcher
(``matcher/template_space_<model tag>.npz``) from labeled templates that
``wajah calibrate --data LABELED_DIR --templates T.npz`` saved::

    python -m tools.fit_template_space T.npz [--source TEXT] [--out FILE]

A tool of the source tree: it writes into the checkout and is not installed with the package.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from wajah.biometric.templates import MODEL_TAG, TEMPLATE_DIM
from wajah.matcher import template_space
from wajah.matcher.photo_calibration import load_labeled_templates
from wajah.matcher.template_space import discriminant_basis, fit_space, resource_name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tools.fit_template_space",
        description="Write the shipped template-space statistics from saved labeled templates "
        "(the .npz of `wajah calibrate --templates`).",
    )
    parser.add_argument("templates", type=Path)
    parser.add_argument("--source", default="", help="what the templates are (for the record)")
    parser.add_argument("--out", type=Path, default=None, help="default: the package's file")
    args = parser.parse_args(argv)
    labeled = load_labeled_templates(args.templates)
    source = args.source or f"{len(labeled.identities)} templates from {args.templates.name}"
    space = fit_space(labeled.vectors, labeled.identities, MODEL_TAG, source)
    target = args.out or Path(template_space.__file__).with_name(resource_name(MODEL_TAG))
    space.save(target)
    _, ratios = discriminant_basis(space.total, space.within, TEMPLATE_DIM)
    print(
        f"wrote {target}: {space.templates} templates, {space.identities} identities with 2+; "
        f"discriminant ratios {np.round(ratios[[0, 7, 31, 63]], 2).tolist()} (dims 1, 8, 32, 64)"
    )


if __name__ == "__main__":
    main()
