"""Slabs, surface and supercell vacancies, and adatoms of bcc Li and fcc Cu (the paper's recipe, §3.2).

Every structure is an `ase.Atoms` in standard orientation (a along x, b in the xy plane, c along z, normal to the
surface) with per-atom arrays `layer` (atomic plane, 0 = bottom) and `fixed` (bool), and a matching
`ase.constraints.FixAtoms`: only the outer `free_layers` planes on each side move, as in the paper.

Slabs are built by ASE from the *primitive* bulk cell, so the in-plane cell is the smallest 2D cell of the plane
(pymatgen's `SlabGenerator` returns up to 12x larger in-plane cells for high-index planes); the Miller indices
are pymatgen's symmetrically distinct ones of the conventional cubic cell. The base slab is repeated in-plane until
both in-plane lengths reach `min_in_plane`, so a surface vacancy removes one atom, not a whole atomic plane.
"""

from __future__ import annotations

import math
from functools import cache, reduce

import numpy as np
from ase import Atoms
from ase.build import bulk, make_supercell, surface
from ase.constraints import FixAtoms
from ase.neighborlist import neighbor_list

#: Crystal structure and PBE lattice constant (Å) of each element (PBE: Cu 3.63 Å, Li 3.43 Å).
BULK: dict[str, tuple[str, float]] = {"Li": ("bcc", 3.43), "Cu": ("fcc", 3.63)}
#: Coordination cut-off as a fraction of the lattice constant: bcc 1st+2nd shells (CN 14), fcc 1st shell (CN 12).
CN_CUTOFF = {"bcc": (1.0 + math.sqrt(2.0)) / 2.0, "fcc": (1.0 / math.sqrt(2.0) + 1.0) / 2.0}
BULK_CN = {"bcc": 14, "fcc": 12}
LAYER_TOL = 0.05  # Å: atoms within this height belong to one atomic plane


def _check_element(element: str) -> tuple[str, float]:
    if element not in BULK:
        raise ValueError(f"unknown element {element!r}; the Cu-Li recipe knows {', '.join(BULK)}")
    return BULK[element]


def miller_label(hkl: tuple[int, int, int]) -> str:
    """'(110)' for (1, 1, 0): the paper's notation, stored in `atoms.info['miller']`."""
    return "(" + "".join(str(int(i)) for i in hkl) + ")"


@cache
def miller_indices(element: str, max_index: int = 3) -> tuple[tuple[int, int, int], ...]:
    """pymatgen's symmetrically distinct Miller indices of the conventional cubic cell (13 for max_index=3)."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.core.surface import get_symmetrically_distinct_miller_indices

    conv = bulk(element, _check_element(element)[0], a=_check_element(element)[1], cubic=True)
    structure = Structure(Lattice(conv.cell.array), conv.get_chemical_symbols(), conv.get_scaled_positions())
    return tuple(tuple(int(i) for i in hkl) for hkl in get_symmetrically_distinct_miller_indices(structure, max_index))


def _primitive_miller(element: str, hkl: tuple[int, int, int]) -> tuple[int, int, int]:
    """The same plane's Miller indices in the primitive cell's basis (coprime integers)."""
    kind, a = _check_element(element)
    prim, conv = bulk(element, kind, a=a), bulk(element, kind, a=a, cubic=True)
    frac = prim.cell.array @ np.linalg.inv(conv.cell.array)  # primitive vectors in conventional fractions
    hp = np.rint(2 * frac @ np.asarray(hkl, float)).astype(int)  # x2: bcc/fcc fractions are halves
    g = reduce(math.gcd, (abs(int(i)) for i in hp))
    return tuple(int(i) // g for i in hp)  # type: ignore[return-value]


def _reduce_2d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer 2x2 matrix M (det +1) whose rows combine (a, b) into a Lagrange-Gauss reduced 2D basis."""
    m = np.eye(2, dtype=int)
    va, vb = a.copy(), b.copy()
    for _ in range(100):
        if va @ va > vb @ vb:
            va, vb = vb, va
            m = m[::-1].copy()
        mu = round((va @ vb) / (va @ va))
        if mu == 0:
            break
        vb = vb - mu * va
        m[1] -= mu * m[0]
    if round(np.linalg.det(m)) < 0:
        m[1] *= -1
    return m


def _standard(atoms: Atoms) -> Atoms:
    """Rotate into ASE's standard form: a along x, b in xy, c along z (c is normal to the surface here)."""
    cell, op = atoms.cell.standard_form()
    out = atoms.copy()
    out.set_cell(cell, scale_atoms=False)
    out.positions = atoms.positions @ op.T
    return out


def oriented_slab(element: str, hkl: tuple[int, int, int], n_layers: int, vacuum: float) -> Atoms:
    """`n_layers` atomic planes of `element` normal to `hkl`, smallest reduced in-plane cell, `vacuum` Å per side."""
    kind, a = _check_element(element)
    prim = bulk(element, kind, a=a)
    slab = surface(prim, _primitive_miller(element, hkl), n_layers, vacuum=vacuum, periodic=True)
    m = _reduce_2d(slab.cell[0], slab.cell[1])
    transform = np.eye(3, dtype=int)
    transform[:2, :2] = m
    slab = make_supercell(slab, transform, wrap=True)
    slab = _standard(slab)
    slab.wrap()
    return slab


def interlayer_spacing(element: str, hkl: tuple[int, int, int]) -> float:
    """Distance between neighbouring atomic planes (Å) = atomic volume / area of the smallest 2D cell."""
    kind, a = _check_element(element)
    prim = bulk(element, kind, a=a)
    one = surface(prim, _primitive_miller(element, hkl), 1)
    return float(prim.get_volume() / np.linalg.norm(np.cross(one.cell[0], one.cell[1])))


def assign_layers(atoms: Atoms, tol: float = LAYER_TOL) -> np.ndarray:
    """The atomic plane of each atom (0 = lowest z), clustering heights closer than `tol`."""
    z = atoms.positions[:, 2]
    order = np.argsort(z, kind="stable")
    layer = np.empty(len(atoms), dtype=int)
    current, last = 0, None
    for idx in order:
        if last is not None and z[idx] - last > tol:
            current += 1
        layer[idx] = current
        last = z[idx]
    return layer


def set_free_layers(atoms: Atoms, free_layers: int) -> Atoms:
    """Recompute `layer` and `fixed` and the FixAtoms constraint: the outer `free_layers` planes per side move.

    Atoms flagged in `atoms.arrays['adatom']` are always free.
    """
    layer = assign_layers(atoms)
    n = int(layer.max()) + 1
    fixed = (layer >= free_layers) & (layer < n - free_layers)
    if "adatom" in atoms.arrays:
        fixed &= ~atoms.arrays["adatom"].astype(bool)
    atoms.set_array("layer", layer)
    atoms.set_array("fixed", fixed)
    atoms.set_constraint(FixAtoms(mask=fixed) if fixed.any() else None)
    return atoms


def make_slab(element: str, hkl: tuple[int, int, int], thickness: float, vacuum: float = 15.0,
              free_layers: int = 2, min_layers: int = 5, min_in_plane: float = 5.0) -> Atoms:
    """A symmetric slab at least `thickness` Å thick (n_layers x spacing), `vacuum` Å on both sides.

    The smallest in-plane cell is repeated until both in-plane vectors are at least `min_in_plane` Å long.
    """
    d = interlayer_spacing(element, hkl)
    n_layers = max(min_layers, math.ceil(thickness / d - 1e-9))
    slab = oriented_slab(element, hkl, n_layers, vacuum)
    reps = [max(1, math.ceil(min_in_plane / np.linalg.norm(slab.cell[i]) - 1e-9)) for i in range(2)]
    slab = slab.repeat((reps[0], reps[1], 1))
    slab.info.update(category="slab", element=element, miller=miller_label(hkl), n_layers=n_layers,
                     thickness=round(n_layers * d, 3), in_plane_repeat=f"{reps[0]}x{reps[1]}")
    return set_free_layers(slab, free_layers)


def supercell(slab: Atoms, reps: tuple[int, int, int] = (2, 2, 1), free_layers: int = 2) -> Atoms:
    out = slab.copy()
    out.set_constraint()
    out = out.repeat(reps)
    out.info = dict(slab.info)
    out.info["supercell"] = "x".join(str(r) for r in reps)
    return set_free_layers(out, free_layers)


def coordination_numbers(atoms: Atoms, element: str) -> np.ndarray:
    kind, a = _check_element(element)
    i = neighbor_list("i", atoms, CN_CUTOFF[kind] * a)
    return np.bincount(i, minlength=len(atoms))


def surface_vacancies(slab: Atoms, free_layers: int = 2) -> list[Atoms]:
    """One vacancy structure per coordination class of the top surface.

    Surface atoms are the under-coordinated atoms of the top `free_layers` planes; for each distinct coordination
    number among them the outermost such atom (highest z, then lowest index) is removed.
    """
    element = slab.info["element"]
    cn = coordination_numbers(slab, element)
    layer = slab.arrays["layer"]
    top = int(layer.max())
    surface_atoms = np.flatnonzero((layer > top - free_layers) & (cn < BULK_CN[_check_element(element)[0]]))
    out = []
    for value in sorted(set(cn[surface_atoms].tolist())):
        group = [int(i) for i in surface_atoms if cn[i] == value]
        victim = max(group, key=lambda i: (round(float(slab.positions[i, 2]), 6), -i))
        vac = slab.copy()
        vac.set_constraint()
        del vac[victim]
        vac.info = dict(slab.info)
        vac.info.update(category="surface_vacancy", vacancy_cn=int(value))
        out.append(set_free_layers(vac, free_layers))
    return out


def adatom_sites(slab: Atoms, height: float = 2.0) -> list[tuple[str, np.ndarray]]:
    """Symmetrically distinct ontop, bridge and hollow sites `height` Å above the top surface (pymatgen).

    Returns (kind, cartesian position) pairs, in pymatgen's order.
    """
    from pymatgen.core.adsorption import AdsorbateSiteFinder
    from pymatgen.io.ase import AseAtomsAdaptor

    plain = slab.copy()
    plain.set_constraint()
    for name in list(plain.arrays):
        if name not in ("numbers", "positions"):
            del plain.arrays[name]
    structure = AseAtomsAdaptor.get_structure(plain)
    sites = AdsorbateSiteFinder(structure).find_adsorption_sites(distance=height,
                                                                 positions=("ontop", "bridge", "hollow"))
    return [(kind, np.asarray(pos, float)) for kind in ("ontop", "bridge", "hollow") for pos in sites[kind]]


def add_adatom(slab: Atoms, species: str, position: np.ndarray, site: str, free_layers: int = 2) -> Atoms:
    """`slab` with one free `species` atom at `position` (the adatom sits above the top surface)."""
    _check_element(species)
    out = slab.copy()
    out.set_constraint()
    flags = np.zeros(len(out), bool)
    out.set_array("adatom", flags)
    extra = Atoms(species, positions=[position])
    extra.set_array("adatom", np.ones(1, bool))
    for name in ("layer", "fixed"):
        extra.set_array(name, np.zeros(1, out.arrays[name].dtype))
    out += extra
    out.info = dict(slab.info)
    out.info.update(category="adatom", adatom=species, site=site)
    out.wrap()
    return set_free_layers(out, free_layers)


def adatom_height(atoms: Atoms) -> float:
    """Height (Å) of the adatom above the highest slab atom."""
    flag = atoms.arrays["adatom"].astype(bool)
    return float(atoms.positions[flag, 2].max() - atoms.positions[~flag, 2].max())
