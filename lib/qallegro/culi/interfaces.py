"""Coherent Li/Cu interfaces (Zur & McGill lattice matching, pymatgen's `ZSLGenerator`; stacking with ASE).

The paper builds them with pymatgen's coherent interface builder: Li and Cu slabs with the *same* Miller indices,
supercells whose areas match within 9% (`ZSLGenerator(max_area_ratio_tol=0.09)`, pymatgen's default), the
smallest such combination, a 3 Å gap. We feed `ZSLGenerator` the smallest 2D cells of the planes (see
`structures.oriented_slab`), which finds a match for all 13 planes (pymatgen's own builder, starting from larger
conventional cells, finds none for four of them within the same 400 Å^2 search), and stack with ASE: Cu is the
substrate, the Li film is strained onto the Cu supercell (Li is the softer metal), `vacuum` Å above the film.
"""

from __future__ import annotations

import math

import numpy as np
from ase import Atoms
from ase.build import make_supercell

from qallegro.culi.structures import assign_layers, interlayer_spacing, miller_label, oriented_slab


def _area(vectors: np.ndarray) -> float:
    return float(np.linalg.norm(np.cross(vectors[0], vectors[1])))


def smallest_match(film: Atoms, substrate: Atoms, area_tol: float = 0.09, max_area: float = 400.0):
    """pymatgen's ZSL match of the two in-plane cells with the smallest area (None when there is none)."""
    from pymatgen.analysis.interfaces.zsl import ZSLGenerator

    zsl = ZSLGenerator(max_area_ratio_tol=area_tol, max_area=max_area)
    matches = list(zsl(film.cell.array[:2], substrate.cell.array[:2], lowest=True))
    return min(matches, key=lambda m: m.match_area) if matches else None


def _integer_transform(base: np.ndarray, target: np.ndarray) -> np.ndarray:
    """3x3 integer matrix whose top-left 2x2 block maps the in-plane `base` rows to the `target` rows."""
    m2 = target @ np.linalg.pinv(base)
    m2i = np.rint(m2).astype(int)
    if not np.allclose(m2, m2i, atol=1e-6):
        raise ValueError("ZSL supercell vectors are not integer combinations of the slab cell")
    out = np.eye(3, dtype=int)
    out[:2, :2] = m2i
    return out


def build_interface(hkl: tuple[int, int, int], li_thickness: float, cu_thickness: float, gap: float = 3.0,
                    vacuum: float = 15.0, area_tol: float = 0.09, max_area: float = 400.0,
                    min_layers: int = 3) -> Atoms | None:
    """Li(hkl) film on a Cu(hkl) substrate, `gap` Å apart, or None when no supercells match within `area_tol`.

    `info`: category 'interface', miller, composition, `area_mismatch` (Li/Cu supercell areas before straining,
    minus 1), `li_strain` (largest in-plane strain applied to Li), `gap`. Arrays `region` (0 Cu, 1 Li), `layer`.
    """
    slabs = {}
    for element, thickness in (("Li", li_thickness), ("Cu", cu_thickness)):
        d = interlayer_spacing(element, hkl)
        slabs[element] = oriented_slab(element, hkl, max(min_layers, math.ceil(thickness / d - 1e-9)), vacuum=5.0)
    li, cu = slabs["Li"], slabs["Cu"]
    match = smallest_match(li, cu, area_tol, max_area)
    if match is None:
        return None
    t_li = _integer_transform(li.cell.array[:2], np.asarray(match.film_sl_vectors))
    t_cu = _integer_transform(cu.cell.array[:2], np.asarray(match.substrate_sl_vectors))
    if np.linalg.det(t_li) < 0:  # keep both supercells right-handed (flip b of both: the match is unchanged)
        t_li[1] *= -1
        t_cu[1] *= -1
    li_sc = make_supercell(li, t_li, wrap=True)
    cu_sc = make_supercell(cu, t_cu, wrap=True)
    a_li, a_cu = _area(li_sc.cell.array[:2]), _area(cu_sc.cell.array[:2])

    # Li in-plane fractions onto the Cu supercell (rotation + strain), heights kept; z measured from each bottom
    cu_ab = cu_sc.cell.array[:2, :2] if np.allclose(cu_sc.cell.array[:2, 2], 0) else None
    if cu_ab is None:
        raise ValueError("substrate cell is not in standard orientation")
    li_ab = li_sc.cell.array[:2]
    frac_li = li_sc.positions[:, :2] @ np.linalg.inv(np.stack([li_ab[0, :2], li_ab[1, :2]]))
    frac_li -= np.floor(frac_li)
    deformation = np.linalg.solve(np.stack([li_ab[0, :2], li_ab[1, :2]]), cu_ab)  # rotation x strain
    z_cu = cu_sc.positions[:, 2] - cu_sc.positions[:, 2].min()
    z_li = li_sc.positions[:, 2] - li_sc.positions[:, 2].min()
    cu_top = z_cu.max()
    height = cu_top + gap + z_li.max()
    offset = vacuum / 2.0
    li_xy = frac_li @ cu_ab
    positions = np.vstack([
        np.column_stack([cu_sc.positions[:, :2], z_cu + offset]),
        np.column_stack([li_xy, z_li + cu_top + gap + offset]),
    ])
    cell = np.zeros((3, 3))
    cell[:2, :2] = cu_ab
    cell[2, 2] = height + vacuum
    atoms = Atoms(numbers=np.concatenate([cu_sc.numbers, li_sc.numbers]), positions=positions, cell=cell,
                  pbc=True)
    atoms.wrap()
    atoms.set_array("region", np.concatenate([np.zeros(len(cu_sc), int), np.ones(len(li_sc), int)]))
    atoms.set_array("layer", assign_layers(atoms))
    atoms.info.update(category="interface", miller=miller_label(hkl),
                      composition=atoms.get_chemical_formula(mode="metal"),
                      area_mismatch=round(a_li / a_cu - 1.0, 5),
                      li_strain=round(float(np.abs(np.linalg.svd(deformation, compute_uv=False) - 1.0).max()), 5),
                      gap=gap, area=round(a_cu, 3))
    return atoms


def interface_gap(atoms: Atoms) -> float:
    """Vertical distance (Å) from the highest Cu atom to the lowest Li atom above it."""
    region = atoms.arrays["region"]
    return float(atoms.positions[region == 1, 2].min() - atoms.positions[region == 0, 2].max())
