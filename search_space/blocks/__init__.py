"""The block catalogue. One file per block family; importing a module registers its blocks.

Explicit imports (no folder scan) so that a broken module fails loudly and import order is clear.
"""

# grouped by paper family, not sorted
from search_space.blocks import basic, esa  # noqa: F401, I001
from search_space.blocks import rrrb, hfab  # noqa: F401  (FMEN)
from search_space.blocks import nrb, rlfb  # noqa: F401  (SRN, RLFN)
from search_space.blocks import cca, imdb, rfdb  # noqa: F401  (IMDN's CCA, IMDN, RFDN)
# MAFFSRN; EDSR/RCAN; the ICLR'19 efficient units
from search_space.blocks import mab, residual, mobile, shuffle  # noqa: F401
from search_space.blocks import fsrcnn, carn  # noqa: F401  (FSRCNN, CARN)
# SPAN (Conv3XC, SPAB) and the NTIRE 2026 derivatives SPANV2, DISP
from search_space.blocks import span, spanv2, disp  # noqa: F401
# SAFMN's attention block (NTIRE 2024 EGFMN, NTIRE 2026 SAFMN-Deep15)
from search_space.blocks import safm  # noqa: F401
# SMFANet's feature modulation block (NTIRE 2024 SMFAN)
from search_space.blocks import smfa  # noqa: F401
# MVFMNet's feature modulation module (NTIRE 2025 MVFMNet)
from search_space.blocks import mvfm  # noqa: F401
# AMCANet's multi-head convolutional block (NTIRE 2026 AMCANet)
from search_space.blocks import amca  # noqa: F401
# SGSDN's gated large-kernel block (NTIRE 2025 SGSDN)
from search_space.blocks import lpf  # noqa: F401
# BSConv-U (conv unit) and LKFN's large-kernel distillation block (NTIRE 2024 LKFN)
from search_space.blocks import bsconv, lkfb  # noqa: F401
# SAFMNv3's simplified modulation block (NTIRE 2025 SAFMNv3)
from search_space.blocks import simple_safm  # noqa: F401
# MSN's distillation block with a multi-scale ESA and ECCA (NTIRE 2024 MSN)
from search_space.blocks import eadb  # noqa: F401
# FMDN's distillation block with multi-range units, a two-branch ESA, FRB / RCCA (NTIRE 2025 FMDN)
from search_space.blocks import fmdb  # noqa: F401
# pre-upsampling networks of the benchmark tables: MemNet's memory blocks (VDSR and SRCNN need none)
from search_space.blocks import memnet  # noqa: F401
# IDN's distillation block; LatticeNet's lattice blocks with their backward fusion
from search_space.blocks import idn, lattice  # noqa: F401
