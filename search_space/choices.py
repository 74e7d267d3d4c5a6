"""Names of the global architecture choices, kept free of torch so the search space can use them.

Block- and conv-unit-specific choices live with their registrations (``registry.py``).
"""

from __future__ import annotations

SCALES = (2, 3, 4)
# "lreluS" is LeakyReLU with negative slope S; papers differ (RFDN/IMDN/RLFN 0.05, FMEN/SRN 0.1).
ACTIVATIONS = ("relu", "lrelu0.05", "lrelu0.1", "lrelu0.2", "gelu", "silu")
# How block outputs are combined (see search_space/fusion.py); "span" = SPAN's concat of the
# head output, the last and first block outputs (and the last SPAB's first-conv output) + 1x1;
# "sum" = MSN's 1x1 conv + GELU on the sum of all block outputs.
FUSIONS = ("sequential", "aggregate", "hff", "bff", "mbff", "cascade", "span", "sum")
# Tail: "pixelshuffle" = 3x3 conv C->3s^2 + PixelShuffle; "pixelshuffle_multi" = MAFFSRN's 3x3 and
# 5x5 branches scaled by learnable scalars; "pixelshuffle_staged" = EDSR/RCAN (x2 stages + conv);
# "deconv" = FSRCNN's 9x9 transposed conv with stride s; "pixelshuffle_carn" / "_carn_m" = CARN's
# multi-scale tail (x2, x3 and x4 branches, the spec's scale runs; CARN-M's with 4 groups);
# "erum" / "erum_unit" = the ICLR'19 study's recursive upsampling modules, of plain convs / of the
# spec's conv unit; "pre_bicubic" = a pre-upsampling network (SRCNN, VDSR): the network runs on the
# bicubic-upsampled input and its tail is a conv to the image.
UPSAMPLERS = ("pixelshuffle", "pixelshuffle_multi", "pixelshuffle_staged", "deconv",
              "pixelshuffle_carn", "pixelshuffle_carn_m", "erum", "erum_unit", "pre_bicubic")
# Input normalisation before the head: "span" = (x / input_range - DIV2K mean) * 255, the mean
# not added back (SPAN, DSCF; mean_shift is EDSR's subtract-and-add-back).
INPUT_NORMS = ("none", "span")
# How the input skip upsamples the image (bicubic: MAFFSRN; bilinear: SAFMN-Deep15).
SKIP_MODES = ("bicubic", "bilinear")
